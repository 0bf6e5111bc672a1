"""Annotations in the generic JSON-lines format that every dataset converts to.

One line per video (or per clip of a longer video)::

    {"video_id": "video7010", "video": "videos/video7010.mp4", "captions": ["a man ...", "..."]}
    {"video_id": "v_abc#3", "video": "v_abc.mp4", "captions": ["..."], "start": 12.5, "end": 30.0}

``video`` is a path relative to the video root (absolute paths are kept as they are);
``captions`` is a non-empty list of strings (a single string is accepted too); ``start`` and
``end`` (seconds, optional) restrict the clip to a part of the file. Any other keys are kept in
``meta``. :func:`write_jsonl` writes the same format (what ``pig-lightning convert`` outputs).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pig_lightning.atomic import atomic_path
from pig_lightning.file_checks import DuplicateKeyError, refuse_lfs_pointer, unique_keys, visible

RESERVED_KEYS = ("video_id", "video", "captions", "start", "end")


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    video_id: str
    video: str
    captions: tuple[str, ...]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    start: float | None = None
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"video_id": self.video_id, "video": self.video, "captions": list(self.captions)}
        if self.start is not None:
            row["start"] = self.start
        if self.end is not None:
            row["end"] = self.end
        row.update({k: v for k, v in self.meta.items() if k not in RESERVED_KEYS})
        return row


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and line."""


def _seconds(row: dict, key: str, where: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise AnnotationError(f"{where}: {key!r} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def parse_record(row: Any, where: str) -> VideoRecord:
    """One annotation object -> :class:`VideoRecord`; errors name ``where`` (file:line)."""
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
    blank = [c for c in captions if not visible(c)]
    if blank:
        raise AnnotationError(f"{where}: empty caption" + (" (only invisible characters)" if any(c.strip() for c in blank)
                                                           else ""))
    if not isinstance(row["video"], str) or not row["video"].strip():
        raise AnnotationError(f"{where}: 'video' must be a non-empty path")
    start, end = _seconds(row, "start", where), _seconds(row, "end", where)
    if start is not None and end is not None and end <= start:
        raise AnnotationError(f"{where}: clip end {end} is not after its start {start}")
    meta = {k: v for k, v in row.items() if k not in RESERVED_KEYS}
    return VideoRecord(str(row["video_id"]), row["video"], tuple(captions), meta, start, end)


def check_unique_ids(records: Iterable[VideoRecord], source: str) -> None:
    seen: set[str] = set()
    for i, record in enumerate(records):
        if record.video_id in seen:
            raise AnnotationError(f"{source}: video_id {record.video_id!r} appears twice (record {i + 1})")
        seen.add(record.video_id)


def iter_json_lines(path: str | Path) -> Iterator[tuple[str, dict]]:
    """``(where, object)`` for every non-blank line of a JSON-lines file; ``where`` is ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    refuse_lfs_pointer(path)
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line, object_pairs_hook=unique_keys)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{where}: not valid JSON ({exc.msg})") from exc
            except DuplicateKeyError as exc:
                raise AnnotationError(f"{where}: the key {exc.key!r} appears twice in the line's object") from exc
            if not isinstance(row, dict):
                raise AnnotationError(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, row


def read_jsonl(path: str | Path) -> list[VideoRecord]:
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for where, row in iter_json_lines(path):
        record = parse_record(row, where)
        if record.video_id in seen:
            raise AnnotationError(f"{where}: video_id {record.video_id!r} already used on line "
                                  f"{seen[record.video_id].rsplit(':', 1)[1]}")
        seen[record.video_id] = where
        records.append(record)
    if not records:
        raise AnnotationError(f"{path}: no annotation records")
    return records


def write_jsonl(records: Iterable[VideoRecord], path: str | Path) -> Path:
    """Write records in the generic format, atomically (a temp file renamed into place)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    return Path(path)
