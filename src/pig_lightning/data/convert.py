"""``pig-lightning convert``: a benchmark's annotation file -> our generic JSON lines.

Example (MSR-VTT 9k training split from CLIP4Clip's files)::

    pig-lightning convert --format msrvtt_csv --input msrvtt_data/MSRVTT_train.9k.csv \\
        --captions_file msrvtt_data/MSRVTT_data.json --output data/msrvtt/train9k.jsonl \\
        --video_root data/msrvtt/videos

The formats and their files are described in ``docs/datasets.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pig_lightning.data.annotations import VideoRecord
from pig_lightning.data.formats import FORMATS, describe_formats


def missing_videos(records: Sequence[VideoRecord], video_root: str | Path) -> list[Path]:
    """The video files of ``records`` that do not exist under ``video_root``."""
    root = Path(video_root)
    paths = (Path(r.video) if Path(r.video).is_absolute() else root / r.video for r in records)
    return [p for p in paths if not p.is_file()]


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
