"""Annotations in the generic JSON-lines format that every dataset converts to.

One line per video::

    {"video_id": "video7010", "video": "videos/video7010.mp4", "captions": ["a man ...", "..."]}

``video`` is a path relative to the video root (absolute paths are kept as they are);
``captions`` is a non-empty list of strings (a single string is accepted too). Any other
keys are kept in ``meta``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    video_id: str
    video: str
    captions: tuple[str, ...]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and line."""


def read_jsonl(path: str | Path) -> list[VideoRecord]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise AnnotationError(f"{where}: expected a JSON object, got {type(row).__name__}")
            for key in ("video_id", "video", "captions"):
                if key not in row:
                    raise AnnotationError(f"{where}: missing key {key!r}")
            captions = row["captions"]
            if isinstance(captions, str):
                captions = [captions]
            if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
                raise AnnotationError(f"{where}: 'captions' must be a non-empty list of strings")
            if any(not c.strip() for c in captions):
                raise AnnotationError(f"{where}: empty caption")
            video_id = str(row["video_id"])
            if video_id in seen:
                raise AnnotationError(f"{where}: video_id {video_id!r} already used on line {seen[video_id]}")
            seen[video_id] = line_no
            meta = {k: v for k, v in row.items() if k not in ("video_id", "video", "captions")}
            records.append(VideoRecord(video_id, str(row["video"]), tuple(captions), meta))
    if not records:
        raise AnnotationError(f"{path}: no annotation records")
    return records
