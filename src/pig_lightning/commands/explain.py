"""``pig-lightning explain``: the command line of :mod:`pig_lightning.explain`."""

from __future__ import annotations

import argparse
import json
import sys
import torch
from pathlib import Path

from pig_lightning.atomic import check_output_file
from pig_lightning.explain import caption_bank, describe, explain, find_video
from pig_lightning.plotting import pyplot


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning explain``: the frames a model samples from one video and what it makes of them
    (PIG: the patches token selection chose and the pseudo-query's nearest captions; X-Pool: the
    attention of a query over the frames; two-tower: the nearest captions of the video vector)."""
    from pig_lightning.data.sources.formats import FORMATS

    parser = argparse.ArgumentParser(prog="pig-lightning explain", description=main.__doc__)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint (or an exported model folder)")
    parser.add_argument("--video", default=None, help="a video file or frame folder")
    parser.add_argument("--video_id", default=None, help="a video of --annotations (its captions are shown too)")
    parser.add_argument("--annotations", default=None, help="annotation file of --video_id (see --format)")
    parser.add_argument("--video_root", default=None, help="root of the annotation paths (default: its folder)")
    parser.add_argument("--format", default="jsonl", choices=list(FORMATS), metavar="FORMAT",
                        help="annotation format (default: jsonl)")
    parser.add_argument("--captions", default=None, help="caption bank: a text file, one caption per line")
    parser.add_argument("--caption_bank", default=None,
                        help="caption bank: every caption of this annotation file (e.g. the training set)")
    parser.add_argument("--query", default=None, help="a text query (X-Pool: needed; its attention over the frames)")
    parser.add_argument("--top", type=int, default=5, help="nearest captions shown (default 5)")
    parser.add_argument("--output", default="explain.png", help="the PNG to write (default explain.png)")
    parser.add_argument("--display_size", type=int, default=160, help="pixels per frame in the PNG (default 160)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if (args.video is None) == (args.video_id is None):
        parser.error("give either --video or --video_id (with --annotations)")
    if args.video_id is not None and args.annotations is None:
        parser.error("--video_id needs --annotations")
    if args.top < 1:
        parser.error(f"--top must be >= 1, got {args.top}")
    if args.display_size < 8:
        parser.error(f"--display_size must be >= 8, got {args.display_size}")
    if args.query is not None and not args.query.strip():
        parser.error("--query is empty")
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        parser.error(f"--output must be a .png file, got {output}")
    check_output_file(output)
    pyplot()  # missing matplotlib is said before any work
    video = find_video(args.video, args.video_id, args.annotations, args.video_root, args.format)
    bank, source = caption_bank(args.captions, args.caption_bank, args.annotations, args.format)
    result = explain(args.ckpt_path, video, bank, source, output, args.query, args.top, args.display_size, args.device)
    result["output"] = str(output)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(describe(result)))
        print(f"wrote {output}", file=sys.stderr)
