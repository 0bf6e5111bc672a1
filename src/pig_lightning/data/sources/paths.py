"""Where an annotation's videos are: paths resolved against the video root, and paths that leave it
(warned about, refused or allowed)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pig_lightning.data.sources.annotations import VideoRecord

log = logging.getLogger(__name__)


def resolve_video_path(video_root: Path, record: VideoRecord) -> Path:
    """The record's video under ``video_root``; when it is missing and the annotation named the video
    under other file names too (``meta["alternative_videos"]``, e.g. DiDeMo's ``X.mov`` / ``X.mp4``),
    the first of those that exists."""
    path = _under(video_root, record.video)
    if not path.exists():
        for name in (record.meta or {}).get("alternative_videos", ()):
            candidate = _under(video_root, name)
            if candidate.exists():
                return candidate
    return path


def _under(video_root: Path, video: str) -> Path:
    path = Path(video)
    return path if path.is_absolute() else Path(video_root) / path


OUTSIDE_ROOT_POLICIES = ("warn", "refuse", "allow")


def outside_root(records: Sequence[VideoRecord], video_root: str | Path) -> list[VideoRecord]:
    """The records whose video path leaves ``video_root`` (``../..``, absolute paths elsewhere),
    judged on the path as written (a symlink inside the root is inside)."""
    root = os.path.normpath(os.path.abspath(video_root))
    out = []
    for record in records:
        path = os.path.normpath(os.path.join(root, record.video))
        if os.path.commonpath([root, path]) != root:
            out.append(record)
    return out


def check_video_paths(records: Sequence[VideoRecord], video_root: str | Path, policy: str = "warn",
                      source: str = "", option: str = "outside_root") -> list[VideoRecord]:
    """Warn about (``"warn"``), refuse (``"refuse"``: ``ValueError``) or accept (``"allow"``) video
    paths outside ``video_root``; returns those records."""
    if policy not in OUTSIDE_ROOT_POLICIES:
        raise ValueError(f"{option} must be one of {OUTSIDE_ROOT_POLICIES}, got {policy!r}")
    outside = outside_root(records, video_root) if policy != "allow" else []
    if outside:
        examples = ", ".join(f"{r.video_id}: {r.video}" for r in outside[:3])
        message = (f"{source + ': ' if source else ''}{len(outside)} of {len(records)} video paths lie outside the "
                   f"video root {video_root} ({examples}{', ...' if len(outside) > 3 else ''})")
        if policy == "refuse":
            raise ValueError(f"{message}; refused ({option}=refuse)")
        log.warning("%s; they are read anyway (set %s to refuse or allow them)", message, option)
    return outside
