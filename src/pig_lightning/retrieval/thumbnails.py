"""Thumbnails of a gallery's videos: a few small JPEG frames per video, made once at index time
(``pig-lightning index --thumbnails N``) in a sidecar file beside the gallery, so that a results
page (``pig-lightning search --html``) never decodes a video.

The sidecar ``<gallery>.thumbs.json`` maps each video id to its frames as base64 JPEG strings
(about 1-2 kB a frame at 96 px): fine for galleries up to some 100k videos.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pig_lightning.atomic import atomic_path

FORMAT = "pig-lightning-thumbnails/1"


def thumbnails_path(gallery: str | Path) -> Path:
    gallery = Path(gallery)
    return gallery.with_name(gallery.name + ".thumbs.json")


def jpeg_base64(frame: np.ndarray, quality: int = 80) -> str:
    """``uint8 [H, W, 3]`` -> base64 JPEG."""
    try:
        from PIL import Image
    except ImportError as exc:  # Pillow comes with tensorboard (a dependency) and matplotlib
        raise ImportError("thumbnails need Pillow: pip install pillow") from exc
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="JPEG", quality=quality)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_thumbnails(items, gallery: str | Path, per_video: int = 4, size: int = 96,
                     progress: bool = True) -> Path:
    """Decode ``per_video`` uniformly spaced frames of every item (``GalleryItem``s of
    :func:`~pig_lightning.retrieval.indexer.list_videos`) at ``size`` px and write the sidecar."""
    from pig_lightning.data.video.readers import ClipReader
    from pig_lightning.data.video.sampling import uniform_indices

    if per_video < 1:
        raise ValueError(f"--thumbnails must be >= 1, got {per_video}")
    if size < 8:
        raise ValueError(f"--thumbnail_size must be >= 8, got {size}")
    reader = ClipReader(size, resize="squash")
    videos = {}
    for item in tqdm(items, desc="thumbnails", disable=not progress):
        frames, _ = reader.read(item.path, lambda n: uniform_indices(n, per_video), item.start, item.end)
        videos[item.video_id] = [jpeg_base64(frame) for frame in frames]
    path = thumbnails_path(gallery)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"format": FORMAT, "per_video": per_video, "size": size, "videos": videos}))
    return path


def load_thumbnails(path: str | Path) -> dict[str, list[str]]:
    """``{video_id: [base64 JPEG, ...]}`` of a sidecar file; a file of another kind is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"thumbnails file not found: {path} (made by `pig-lightning index --thumbnails N`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is not a thumbnails file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("videos"), dict):
        raise ValueError(f"{path} is not a pig-lightning thumbnails file (made by `pig-lightning index --thumbnails N`)")
    return data["videos"]
