"""``pig-lightning convert``: a benchmark's annotation file -> our generic JSON lines.

Example (MSR-VTT 9k training split from CLIP4Clip's files)::

    pig-lightning convert --format msrvtt_csv --input msrvtt_data/MSRVTT_train.9k.csv \\
        --captions_file msrvtt_data/MSRVTT_data.json --output data/msrvtt/train9k.jsonl \\
        --video_root data/msrvtt/videos

The formats and their files are described in ``docs/datasets.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pig_lightning.data.sources.annotations import VideoRecord


def missing_videos(records: Sequence[VideoRecord], video_root: str | Path) -> list[Path]:
    """The video files of ``records`` that do not exist under ``video_root``."""
    root = Path(video_root)
    paths = (Path(r.video) if Path(r.video).is_absolute() else root / r.video for r in records)
    return [p for p in paths if not p.is_file()]
