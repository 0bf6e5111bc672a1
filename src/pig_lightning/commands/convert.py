"""``pig-lightning convert``: the command line of :mod:`pig_lightning.data.sources.convert`."""

from __future__ import annotations

import argparse
import sys

from pig_lightning.atomic import check_output_file
from pig_lightning.data.sources.annotations import write_jsonl
from pig_lightning.data.sources.formats import FORMATS, describe_formats, read_annotations
from pig_lightning.data.sources.convert import missing_videos

MISSING_SHOWN = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pig-lightning convert",
        description="Convert a benchmark annotation file to generic JSON lines (one video per line).",
        epilog="formats:\n" + describe_formats(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--format", required=True, choices=list(FORMATS), metavar="FORMAT",
                        help="input format (list below)")
    parser.add_argument("--input", required=True, help="the downloaded annotation file")
    parser.add_argument("--output", required=True, help="the .jsonl to write (atomically)")
    parser.add_argument("--captions_file", default=None,
                        help="msrvtt_csv id lists: MSRVTT_data.json; msvd: raw-captions.pkl")
    parser.add_argument("--split", default=None,
                        help="msrvtt_json: train / validate / test; vatex: optional file of video ids to keep")
    parser.add_argument("--video_pattern", default=None,
                        help="path of a video relative to the video root, e.g. '{video_id}.mp4' "
                             "(default: the format's own, e.g. '{movie}/{video_id}.avi' for lsmdc)")
    parser.add_argument("--use_span", action="store_true",
                        help="didemo / activitynet: clip each video to the union of its annotated moments")
    parser.add_argument("--video_root", default=None,
                        help="if given, warn about videos missing under this folder (conversion still succeeds)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning convert``: read one annotation file, write generic JSON lines."""
    parser = _parser()
    args = parser.parse_args(argv)
    check_output_file(args.output)
    records = read_annotations(args.input, args.format, captions_file=args.captions_file, split=args.split,
                               video_pattern=args.video_pattern, use_span=args.use_span)
    output = write_jsonl(records, args.output)
    num_captions = sum(len(r.captions) for r in records)
    print(f"wrote {len(records)} videos, {num_captions} captions to {output}")
    if args.video_root is not None:
        missing = missing_videos(records, args.video_root)
        if missing:
            shown = ", ".join(str(p) for p in missing[:MISSING_SHOWN])
            more = f" (and {len(missing) - MISSING_SHOWN} more)" if len(missing) > MISSING_SHOWN else ""
            print(f"warning: {len(missing)} of {len(records)} videos not found under {args.video_root}: "
                  f"{shown}{more}", file=sys.stderr)
