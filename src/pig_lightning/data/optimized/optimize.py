"""``pig-lightning optimize``: decode every video once into an optimized streaming dataset.

The videos of one annotation file are decoded (PyAV, the same reader as training), sampled to
``frames_per_video`` uniform frames of ``image_size`` squared, JPEG-encoded and written as a
`litdata` dataset (see :mod:`pig_lightning.data.optimized.optimized_format`). Training then reads a few
large chunk files instead of decoding mp4 files: the loader's cost per clip is a dozen small
JPEG decodes.

The work is split in parts of ``part_size`` videos, each a litdata dataset of its own
(``part-00000/``...) marked complete when written; an interrupted run leaves
``pig_optimized.json`` with ``complete: false`` (readers refuse it) and the same command
continues after the last complete part. When all parts are written, a top-level ``index.json``
lists their chunks in order (no copy) and the manifest becomes ``complete: true``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from pig_lightning.atomic import write_json_atomic
from pig_lightning.data.sources.annotations import AnnotationError, VideoRecord, write_jsonl
from pig_lightning.data.sources.paths import check_video_paths, resolve_video_path
from pig_lightning.data.video.decoding import VideoDecodeError
from pig_lightning.data.sources.formats import read_annotations
from pig_lightning.data.optimized.optimized_format import (
    FORMAT,
    FRAME_SETTINGS,
    MANIFEST,
    RECORDS,
    OptimizedDatasetError,
    annotations_digest,
    encode_frames,
    litdata_module,
    settings_differences,
)
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import FRAME_POSITIONS, uniform_indices

log = logging.getLogger(__name__)

PART_DONE = ".complete"
ERRORS_DIR = "errors"


class RecordEncoder:
    """``record index -> litdata item``; runs in litdata's worker processes (picklable).

    A video that cannot be decoded is written as an item without frames and its error is
    written to ``errors/<index>.txt`` of the part, so the parent can name it and stop."""

    def __init__(self, records: list[VideoRecord], video_root: str, settings: dict[str, Any], errors_dir: str,
                 seek_threshold: float | None, frame_folder_fps: float | None):
        self.records = records
        self.video_root = Path(video_root)
        self.settings = settings
        self.errors_dir = errors_dir
        self.seek_threshold = seek_threshold
        self.frame_folder_fps = frame_folder_fps
        self._reader: ClipReader | None = None

    def __call__(self, index: int) -> dict[str, Any]:
        if self._reader is None:
            s = self.settings
            self._reader = ClipReader(s["image_size"], resize=s["resize"], interpolation=s["interpolation"],
                                      seek_threshold=self.seek_threshold, frame_folder_fps=self.frame_folder_fps)
        record = self.records[index]
        count, positions = self.settings["frames_per_video"], self.settings["frame_positions"]
        try:
            frames, _ = self._reader.read(resolve_video_path(self.video_root, record),
                                          lambda n: uniform_indices(n, count, positions), record.start, record.end)
            blob, lengths = encode_frames(frames, self.settings["quality"])
        except VideoDecodeError as exc:
            Path(self.errors_dir, f"{index}.txt").write_text(f"{record.video_id}\t{exc.path}\t{exc.reason}\n")
            blob, lengths = b"", np.zeros(0, dtype=np.int64)
        return {"record_index": index, "video_id": record.video_id, "frames": blob, "frame_bytes": lengths}


def _check_resumable(output: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest already in ``output`` (same settings and annotations) or ``None`` for a new one."""
    path = output / MANIFEST
    if not path.exists():
        if output.exists() and any(output.iterdir()):
            raise OptimizedDatasetError(f"--output {output} exists and is not an optimized dataset; "
                                        f"give an empty or new folder")
        return None
    old = json.loads(path.read_text())
    if old.get("format") != FORMAT:
        raise OptimizedDatasetError(f"{path}: format {old.get('format')!r}, this version writes {FORMAT!r}")
    keys = (*FRAME_SETTINGS, "part_size")
    different = settings_differences(old, manifest, keys)
    if different:
        raise OptimizedDatasetError(
            f"{output} was started with " + ", ".join(f"{k}={old.get(k)!r}" for k in different)
            + "; this run asks for " + ", ".join(f"{k}={manifest[k]!r}" for k in different)
            + ". Use the same settings to finish it, or another --output.")
    if old.get("annotations_sha256") != manifest["annotations_sha256"]:
        raise OptimizedDatasetError(f"{output} was started from other annotations ({old.get('annotations')}, "
                                    f"other videos or captions than {manifest['annotations']}); use another --output")
    return old


def _merged_index(output: Path, parts: list[str]) -> dict[str, Any]:
    """One litdata ``index.json`` over the parts' chunks (file names relative to ``output``)."""
    indexes = [json.loads((output / part / "index.json").read_text()) for part in parts]
    chunks = [dict(chunk, filename=f"{part}/{chunk['filename']}") for part, index in zip(parts, indexes)
              for chunk in index["chunks"]]
    return {**indexes[0], "chunks": chunks}


def _write_part(litdata, encoder: RecordEncoder, part_dir: Path, indices: list[int], num_workers: int,
                chunk_bytes: str) -> None:
    if part_dir.exists():
        shutil.rmtree(part_dir)  # an unfinished part of an interrupted run: written again from its start
    errors = part_dir / ERRORS_DIR
    errors.mkdir(parents=True)
    encoder.errors_dir = str(errors)
    litdata.optimize(fn=encoder, inputs=indices, output_dir=str(part_dir), num_workers=min(num_workers, len(indices)),
                     chunk_bytes=chunk_bytes, reorder_files=False, keep_data_ordered=True, verbose=False,
                     start_method="fork")
    failures = sorted(errors.glob("*.txt"), key=lambda p: int(p.stem))
    if failures:
        lines = [f.read_text().strip().split("\t") for f in failures]
        shown = "; ".join(f"{vid} ({path}): {reason}" for vid, path, reason in lines[:5])
        raise VideoDecodeError(lines[0][1], f"{len(lines)} videos could not be decoded: {shown}"
                               f"{' ...' if len(lines) > 5 else ''}. Fix or remove them from the annotations "
                               f"(`pig-lightning data-check` lists them all), then run the same command again; "
                               f"the parts already written are kept.")
    shutil.rmtree(errors)
    (part_dir / PART_DONE).write_text(f"{len(indices)}\n")


def optimize_dataset(annotations: str, video_root: str, output: str, *, format: str = "jsonl",
                     format_options: dict | None = None, frames_per_video: int = 32, image_size: int = 224,
                     resize: str = "squash", interpolation: str = "BICUBIC", frame_positions: str = "truncate",
                     quality: int = 90, part_size: int = 1000, num_workers: int | None = None,
                     chunk_bytes: str = "64MB", seek_threshold: float | None = 30.0,
                     frame_folder_fps: float | None = None, outside_root: str = "warn") -> dict[str, Any]:
    """Write (or finish) the optimized dataset of ``annotations`` in ``output``; returns a summary."""
    for name, value in (("frames_per_video", frames_per_video), ("image_size", image_size),
                        ("part_size", part_size)):
        if value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}")
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality must be in 1..100, got {quality}")
    if frame_positions not in FRAME_POSITIONS:
        raise ValueError(f"--frame_positions must be one of {FRAME_POSITIONS}, got {frame_positions!r}")
    ClipReader(image_size, resize=resize, interpolation=interpolation)  # validates resize / interpolation now
    litdata = litdata_module()
    root = Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root} (--video_root)")
    records = read_annotations(annotations, format, **(format_options or {}))
    if not records:
        raise AnnotationError(f"{annotations}: no videos")
    check_video_paths(records, root, outside_root, source=str(annotations), option="--outside_root")
    out = Path(output)
    parts = [f"part-{p:05d}" for p in range((len(records) + part_size - 1) // part_size)]
    manifest = {
        "format": FORMAT, "frames_per_video": frames_per_video, "image_size": image_size, "resize": resize,
        "interpolation": interpolation, "frame_positions": frame_positions, "quality": quality,
        "part_size": part_size, "parts": len(parts), "num_videos": len(records),
        "annotations": str(annotations), "annotations_sha256": annotations_digest(records), "complete": False,
    }
    old = _check_resumable(out, manifest)
    if old is not None and old.get("complete"):
        log.info("%s is already complete (%d videos)", out, old["num_videos"])
        return {**old, "written_now": 0}
    out.mkdir(parents=True, exist_ok=True)
    finished = sum((out / part / PART_DONE).exists() for part in parts)
    write_json_atomic(out / MANIFEST, {**manifest, "parts_done": finished}, indent=2)
    settings = {k: manifest[k] for k in FRAME_SETTINGS}
    encoder = RecordEncoder(records, str(root), settings, "", seek_threshold, frame_folder_fps)
    workers = num_workers or min(os.cpu_count() or 1, 8)
    started, written = time.perf_counter(), 0
    for p, part in enumerate(parts):
        part_dir = out / part
        indices = list(range(p * part_size, min((p + 1) * part_size, len(records))))
        if (part_dir / PART_DONE).exists():
            continue
        _write_part(litdata, encoder, part_dir, indices, workers, chunk_bytes)
        written += len(indices)
        finished += 1
        write_json_atomic(out / MANIFEST, {**manifest, "parts_done": finished}, indent=2)
        log.info("part %d/%d written (%d videos, %.1f videos/s)", p + 1, len(parts), indices[-1] + 1,
                 written / (time.perf_counter() - started))
    write_jsonl(records, out / RECORDS)
    write_json_atomic(out / "index.json", _merged_index(out, parts))
    size = sum(f.stat().st_size for part in parts for f in (out / part).glob("*.bin"))
    final = {**manifest, "parts_done": len(parts), "bytes": size, "bytes_per_video": round(size / len(records)),
             "complete": True}
    write_json_atomic(out / MANIFEST, final, indent=2)
    return {**final, "written_now": written}
