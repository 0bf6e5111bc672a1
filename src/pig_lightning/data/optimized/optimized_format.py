"""The decode-once dataset format written by ``pig-lightning optimize`` and read for training.

An optimized dataset is a `litdata <https://github.com/Lightning-AI/litData>`_ streaming
dataset (chunked ``.bin`` files and ``index.json``: node- and rank-aware sharding, a local
cache, readable from a folder or object storage) plus two files of ours:

- ``pig_optimized.json``: the settings the frames were written with (``frames_per_video``,
  ``image_size``, ``resize``, ``interpolation``, ``frame_positions``, JPEG ``quality``), the
  digest of the annotations, and ``complete`` (``false`` until the last part is written);
- ``records.jsonl``: the videos in dataset order (generic annotation format: id, original
  path, every caption), so evaluation knows every caption before it reads a chunk.

Each item is one video: ``record_index`` (its line in ``records.jsonl``), ``video_id``,
``frames`` (``frames_per_video`` JPEG frames of ``image_size`` squared, uniformly sampled from
the clip, JPEG without chroma subsampling, concatenated) and ``frame_bytes`` (the length of
each JPEG). Only the frames a run
samples are decoded (simplejpeg, libjpeg-turbo: ~0.4 ms a 224-px frame on our 2-core VM).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pig_lightning.data.sources.annotations import VideoRecord

FORMAT = "pig-lightning-optimized/1"
MANIFEST = "pig_optimized.json"
RECORDS = "records.jsonl"
# Settings that decide the stored pixels: a run asking for other values cannot use the dataset.
FRAME_SETTINGS = ("frames_per_video", "image_size", "resize", "interpolation", "frame_positions", "quality")


class OptimizedDatasetError(ValueError):
    """An optimized dataset that is incomplete, of another format, or written with other settings."""


def _simplejpeg():
    try:
        import simplejpeg
    except ImportError as exc:  # pragma: no cover - simplejpeg comes with the `stream` extra
        raise ImportError("optimized datasets need simplejpeg: pip install 'pig-lightning[stream]'") from exc
    return simplejpeg


def encode_frames(frames: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """``uint8 [K, H, W, 3]`` -> (concatenated JPEGs, ``int64 [K]`` byte length of each)."""
    codec = _simplejpeg()
    parts = [codec.encode_jpeg(np.ascontiguousarray(frame), quality=quality, colorspace="RGB",
                               colorsubsampling="444") for frame in frames]
    return b"".join(parts), np.array([len(p) for p in parts], dtype=np.int64)


def decode_frames(blob: bytes, frame_bytes: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The frames at ``indices`` (repeats allowed) of an item: ``uint8 [len(indices), H, W, 3]``.

    Each distinct frame is decoded once."""
    codec = _simplejpeg()
    ends = np.cumsum(frame_bytes)
    starts = ends - frame_bytes
    view = memoryview(blob)
    decoded: dict[int, np.ndarray] = {}
    out = []
    for i in (int(i) for i in indices):
        if i not in decoded:
            decoded[i] = codec.decode_jpeg(view[starts[i]:ends[i]], colorspace="RGB")
        out.append(decoded[i])
    return np.stack(out)


def annotations_digest(records: list[VideoRecord]) -> str:
    """Identifies the videos and captions an optimized dataset was written from."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record.to_json(), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def describe_settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={settings.get(key)!r}" for key in FRAME_SETTINGS)


def settings_differences(stored: dict[str, Any], wanted: dict[str, Any], keys=FRAME_SETTINGS) -> list[str]:
    return [key for key in keys if key in wanted and stored.get(key) != wanted[key]]


def litdata_module():
    """litdata (the ``stream`` extra), with a clear error when it is missing."""
    try:
        import litdata
    except ImportError as exc:
        raise ImportError("optimized datasets need litdata: pip install 'pig-lightning[stream]'") from exc
    return litdata


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest file (``pig_optimized.json``) of an optimized dataset; refuses other formats."""
    path = Path(path)
    if not path.is_file():
        raise OptimizedDatasetError(f"{path.parent} is not an optimized dataset: {MANIFEST} not found "
                                    f"(write one with `pig-lightning optimize`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise OptimizedDatasetError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise OptimizedDatasetError(f"{path}: format {manifest.get('format')!r}, this version reads {FORMAT!r}")
    return manifest


def require_complete(manifest: dict[str, Any], folder: str) -> None:
    if not manifest.get("complete"):
        done = manifest.get("parts_done", 0)
        raise OptimizedDatasetError(
            f"{folder} is a partly written optimized dataset ({done} of {manifest.get('parts')} parts): "
            f"`pig-lightning optimize` was interrupted. Run the same command again to finish it.")


def check_run_settings(manifest: dict[str, Any], folder: str, *, num_frames: int, image_size: int, resize: str,
                       interpolation: str, frame_positions: str, option: str) -> None:
    """Refuse a dataset whose stored frames are not what the run asks for, naming both."""
    wanted = {"image_size": image_size, "resize": resize, "interpolation": interpolation,
              "frame_positions": frame_positions}
    different = settings_differences(manifest, wanted)
    if different:
        raise OptimizedDatasetError(
            f"{option}: the optimized dataset {folder} was written with "
            + ", ".join(f"{k}={manifest.get(k)!r}" for k in different)
            + "; this run asks for " + ", ".join(f"data.{k}={wanted[k]!r}" for k in different)
            + ". Write it again with `pig-lightning optimize` and these settings, or change the run's.")
    if num_frames > manifest["frames_per_video"]:
        raise OptimizedDatasetError(
            f"{option}: the optimized dataset {folder} stores {manifest['frames_per_video']} frames per video; "
            f"this run samples data.num_frames={num_frames}. Write it again with --frames_per_video >= {num_frames}.")
