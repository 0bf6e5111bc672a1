"""``pig-lightning data-check``: find the videos and captions that would break or bias a run.

Before a long training run, scan an annotation file and its video root once::

    pig-lightning data-check --annotations data/msrvtt/train9k.jsonl --video_root data/msrvtt/videos \\
        --tokenizer openai/clip-vit-base-patch32 --max_text_length 50 --output check.json

Each video is opened and the frames a run would sample are decoded with the same reader as
training (so a file that passes here decodes in training). Problems found:

* ``missing``: the file (or frame folder) does not exist;
* ``zero-length``: an empty file, or a stream with no decodable frame;
* ``audio-only``: the file has no video stream;
* ``unreadable``: anything else FFmpeg refuses (corrupt, truncated, unknown codec);
* ``clip-out-of-range``: the record's start lies after the end of the video;
* ``too-short``: fewer frames than ``--min_frames`` (a run would repeat frames to pad);
* ``empty-caption`` (generic JSONL only: other readers refuse the file at the first one) and
  ``caption-too-long``: more tokens than ``--max_text_length`` (truncated in training; needs
  ``--tokenizer``);
* ``duplicate-id``: a video id used by an earlier line (generic JSONL; ``convert``, ``index`` and
  ``fit`` refuse such a file, other formats are refused here too);
* ``outside-root``: with ``--outside_root refuse``, a video path that leaves ``--video_root``
  (``../``, an absolute path elsewhere); by default such paths are only warned about.

The JSON report lists every problem with the video id, file and reason. Exit codes: 0 no problem
found, 1 problems found, 2 the check could not run (unreadable annotation file, missing video
root, bad option).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pig_lightning.atomic import check_output_file, write_json_atomic
from pig_lightning.data.sources.paths import OUTSIDE_ROOT_POLICIES
from pig_lightning.commands.options import add_format_arguments, format_options


DESCRIPTION = __doc__


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning data-check``: scan annotations and videos; exit 1 when problems are found."""
    parser = argparse.ArgumentParser(prog="pig-lightning data-check", description=DESCRIPTION,
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
    from pig_lightning.data.check import check_dataset, summary  # the decoding stack: after the options

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
