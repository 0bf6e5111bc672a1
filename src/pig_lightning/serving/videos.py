"""Which file a gallery video id may be played from: never a path from the client.

An id is looked up in the gallery's recorded sources; its path is joined to the video root,
resolved (symlinks followed) and served only when the result is a file inside the resolved root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pig_lightning.retrieval.gallery import Gallery


class VideoUnavailable(Exception):
    """A video that cannot be played; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class VideoFiles:
    """Playback lookup of a gallery: ``clip(id)`` (start/end) and ``path(id)`` (a checked file)."""

    def __init__(self, gallery: Gallery, video_root: str | Path | None = None):
        root = video_root if video_root is not None else gallery.video_root
        self.root = Path(root).resolve() if root is not None else None
        self.sources: dict[str, dict[str, Any]] = dict(zip(gallery.video_ids, gallery.sources or []))
        self.known = set(gallery.video_ids)

    @property
    def available(self) -> bool:
        return self.root is not None and bool(self.sources)

    def why_unavailable(self) -> str | None:
        if not self.sources:
            return ("this gallery does not record its video files (built before `index` recorded them): "
                    "rebuild it with `pig-lightning index` for playback")
        if self.root is None:
            return "no video root: start `serve` with --video_root for playback"
        return None

    def clip(self, video_id: str) -> tuple[float | None, float | None]:
        source = self.sources.get(video_id, {})
        return source.get("start"), source.get("end")

    def path(self, video_id: str) -> Path:
        """The file of ``video_id``, or :class:`VideoUnavailable` (404 unknown or missing, 403 outside the root)."""
        if video_id not in self.known:
            raise VideoUnavailable(404, "no video with this id in the gallery")
        reason = self.why_unavailable()
        if reason:
            raise VideoUnavailable(404, f"playback unavailable: {reason}")
        try:
            resolved = (self.root / self.sources[video_id]["path"]).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            raise VideoUnavailable(404, "the video file of this id is missing under the video root") from None
        if not resolved.is_relative_to(self.root):
            raise VideoUnavailable(403, "the video file of this id lies outside the video root; it is not served")
        if not resolved.is_file():
            raise VideoUnavailable(404, "the video of this id is not a file (a frame folder?); it cannot be played")
        return resolved
