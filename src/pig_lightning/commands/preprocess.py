"""``pig-lightning preprocess``: the command line of :mod:`pig_lightning.data.video.preprocess`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pig_lightning.data.video.preprocess import FAILURES_FILE, PreprocessError, PreprocessSettings, preprocess_folder


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning preprocess``: re-encode a folder of videos to a low frame rate and size."""
    d = PreprocessSettings()
    parser = argparse.ArgumentParser(prog="pig-lightning preprocess", description=main.__doc__)
    parser.add_argument("input_dir", help="folder searched recursively for videos")
    parser.add_argument("output_dir", help="mirror of input_dir with one .mp4 per video (resumable)")
    parser.add_argument("--fps", type=float, default=d.fps, help="frames per second kept (0: the source rate)")
    parser.add_argument("--short_side", type=int, default=d.short_side, help="short side in pixels (0: keep)")
    parser.add_argument("--crf", type=int, default=d.crf, help="H.264 quality (lower is better and larger)")
    parser.add_argument("--preset", default=d.preset, help="x264 speed preset")
    parser.add_argument("--gop", type=int, default=d.gop, help="keyframe interval in output frames")
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: min(4, cores))")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-encode every video, also when the output folder has other settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = PreprocessSettings(fps=args.fps, short_side=args.short_side, crf=args.crf,
                                      preset=args.preset, gop=args.gop)
        summary = preprocess_folder(args.input_dir, args.output_dir, settings, workers=args.workers,
                                    overwrite=args.overwrite)
    except (PreprocessError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
    if summary["failed"]:
        print(f"{summary['failed']} videos failed, listed in {Path(args.output_dir) / FAILURES_FILE}", file=sys.stderr)
        raise SystemExit(1)
