"""``pig-lightning data-check``: the command line of :mod:`pig_lightning.data.check`."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pig_lightning.data import check as _library
from pig_lightning.atomic import check_output_file, write_json_atomic
from pig_lightning.data.datasets import OUTSIDE_ROOT_POLICIES
from pig_lightning.commands.options import add_format_arguments, format_options
from pig_lightning.data.check import check_dataset, summary


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning data-check``: scan annotations and videos; exit 1 when problems are found."""
    parser = argparse.ArgumentParser(prog="pig-lightning data-check", description=_library.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, help="annotation file")
    parser.add_argument("--video_root", required=True, help="folder the video paths are relative to")
    add_format_arguments(parser)
    parser.add_argument("--num_frames", type=int, default=12, help="frames a run samples (decoded here)")
    parser.add_argument("--min_frames", type=int, default=None, help="report shorter videos (default: num_frames)")
    parser.add_argument("--tokenizer", default=None, help="check caption lengths with this tokenizer")
    parser.add_argument("--max_text_length", type=int, default=32)
    parser.add_argument("--frame_folder_fps", type=float, default=None)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--outside_root", default="warn", choices=OUTSIDE_ROOT_POLICIES,
                        help="video paths outside --video_root: warn (default), refuse (report as problems) or allow")
    parser.add_argument("--output", default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = format_options(args)
    if args.output:
        check_output_file(Path(args.output))
    report = check_dataset(args.annotations, args.video_root, args.format, options, args.num_frames,
                           args.min_frames, args.tokenizer, args.max_text_length, args.workers,
                           args.frame_folder_fps, outside_root=args.outside_root)
    if args.output:
        write_json_atomic(args.output, report, indent=2)
    print(summary(report))
    if args.output:
        print(f"report written to {args.output}")
    if report["num_problems"]:
        raise SystemExit(1)
