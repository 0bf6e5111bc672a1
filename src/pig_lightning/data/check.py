"""The checks behind ``pig-lightning data-check`` (:mod:`pig_lightning.commands.data_check`): each video
opened and decoded as training reads it, each caption measured; every problem listed with its video."""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pig_lightning.data.sources.annotations import AnnotationError, VideoRecord, iter_json_lines, parse_record
from pig_lightning.data.sources.paths import check_video_paths, resolve_video_path
from pig_lightning.data.video.decoding import VideoDecodeError
from pig_lightning.data.sources.formats import read_annotations
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import uniform_indices

log = logging.getLogger(__name__)

NO_CAPTION = "(no caption: only its video is checked)"

VIDEO_PROBLEMS = ("missing", "zero-length", "audio-only", "unreadable", "clip-out-of-range", "too-short",
                  "outside-root")
CAPTION_PROBLEMS = ("empty-caption", "caption-too-long")
RECORD_PROBLEMS = ("duplicate-id",)


def read_records_leniently(path: str | Path, format: str, **options: Any) -> tuple[list[VideoRecord], list[dict]]:
    """Records plus the caption problems a strict reader would stop at (generic JSONL only).

    For ``jsonl``, empty captions and duplicate video ids are reported instead of failing the
    whole file (a record without a caption is checked for its video only: it gets the caption
    :data:`NO_CAPTION`, which is not counted); other formats are read strictly.
    """
    if format != "jsonl":
        return read_annotations(path, format, **options), []
    records, problems = [], []
    seen: dict[str, str] = {}
    for where, row in iter_json_lines(path):
        captions = row.get("captions")
        if isinstance(captions, list) and any(isinstance(c, str) and not c.strip() for c in captions):
            kept = [c for c in captions if not (isinstance(c, str) and not c.strip())]
            problems.append({"kind": "empty-caption", "video_id": str(row.get("video_id")), "path": where,
                             "detail": f"{len(captions) - len(kept)} empty caption(s)"})
            row = {**row, "captions": kept or [NO_CAPTION]}
        record = parse_record(row, where)
        if record.video_id in seen:
            problems.append({"kind": "duplicate-id", "video_id": record.video_id, "path": where,
                             "detail": f"video_id {record.video_id!r} already used on line "
                                       f"{seen[record.video_id].rsplit(':', 1)[1]}"})
        else:
            seen[record.video_id] = where
        records.append(record)
    if not records:
        raise AnnotationError(f"{path}: no annotation records")
    return records, problems


class _VideoProbe:
    """Decode what a run would decode; classify failures (picklable for worker processes)."""

    def __init__(self, video_root: Path, num_frames: int, min_frames: int, size: int, frame_folder_fps: float | None):
        self.video_root = video_root
        self.num_frames = num_frames
        self.min_frames = min_frames
        self.reader = ClipReader(size, frame_folder_fps=frame_folder_fps)

    def __call__(self, record: VideoRecord) -> dict | None:
        path = resolve_video_path(self.video_root, record)
        counted: list[int] = []

        def sampler(n: int):
            counted.append(n)
            return uniform_indices(n, self.num_frames)

        try:
            self.reader.read(path, sampler, record.start, record.end)
        except VideoDecodeError as exc:
            return self._problem(record, path, classify(path, exc.reason), exc.reason)
        available = counted[-1]
        if available < self.min_frames:
            return self._problem(record, path, "too-short", f"{available} frames, fewer than {self.min_frames}")
        return None

    @staticmethod
    def _problem(record: VideoRecord, path: Path, kind: str, detail: str) -> dict:
        return {"kind": kind, "video_id": record.video_id, "path": str(path), "detail": detail}


def classify(path: Path, reason: str) -> str:
    if reason in ("file not found", "frame folder not found"):
        return "missing"
    if path.is_file() and path.stat().st_size == 0:
        return "zero-length"
    if "no video stream" in reason:
        return "audio-only"
    if "no decodable frame" in reason or "no frame files" in reason:
        return "zero-length"
    if "clip start" in reason:
        return "clip-out-of-range"
    return "unreadable"


def caption_lengths(records: list[VideoRecord], tokenizer_source: str, max_text_length: int) -> list[dict]:
    from pig_lightning.weights.hf_folder import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_source)
    problems = []
    for record in records:
        captions = [c for c in record.captions if c != NO_CAPTION]
        if not captions:
            continue
        lengths = [len(ids) for ids in tokenizer(captions, verbose=False)["input_ids"]]
        long = [(i, n) for i, n in enumerate(lengths) if n > max_text_length]
        if long:
            detail = ", ".join(f"caption {i}: {n} tokens" for i, n in long)
            problems.append({"kind": "caption-too-long", "video_id": record.video_id, "path": record.video,
                             "detail": f"{detail} (> {max_text_length}, truncated in training)"})
    return problems


def check_dataset(annotations: str | Path, video_root: str | Path, format: str = "jsonl",
                  format_options: dict | None = None, num_frames: int = 12, min_frames: int | None = None,
                  tokenizer: str | None = None, max_text_length: int = 32, workers: int = 0,
                  frame_folder_fps: float | None = None, progress: bool = True, outside_root: str = "warn") -> dict:
    """Scan a data set; returns the report (see the module docstring)."""
    for name, value, least in (("num_frames", num_frames, 1), ("max_text_length", max_text_length, 1),
                               ("workers", workers, 0), ("min_frames", 0 if min_frames is None else min_frames, 0)):
        if value < least:
            raise ValueError(f"--{name} must be >= {least}, got {value}")
    video_root = Path(video_root)
    if not video_root.is_dir():
        raise FileNotFoundError(f"video folder not found: {video_root} (--video_root)")
    records, problems = read_records_leniently(annotations, format, **(format_options or {}))
    outside = check_video_paths(records, video_root, "warn" if outside_root == "refuse" else outside_root,
                                source=str(annotations), option="--outside_root")
    if outside_root == "refuse":
        problems += [{"kind": "outside-root", "video_id": r.video_id, "path": r.video,
                      "detail": f"the path leaves the video root {video_root}"} for r in outside]
    probe = _VideoProbe(video_root, num_frames, num_frames if min_frames is None else min_frames, 32, frame_folder_fps)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(probe, records, chunksize=8), total=len(records), desc="checking videos",
                                disable=not progress))
    else:
        results = [probe(r) for r in tqdm(records, desc="checking videos", disable=not progress)]
    problems += [p for p in results if p is not None]
    if tokenizer is not None:
        problems += caption_lengths(records, tokenizer, max_text_length)
    counts = Counter(p["kind"] for p in problems)
    return {
        "annotations": str(annotations),
        "format": format,
        "video_root": str(video_root),
        "num_videos": len(records),
        "num_captions": sum(len(r.captions) for r in records),
        "settings": {"num_frames": num_frames, "min_frames": probe.min_frames, "tokenizer": tokenizer,
                     "max_text_length": max_text_length if tokenizer else None},
        "counts": {kind: counts.get(kind, 0) for kind in VIDEO_PROBLEMS + CAPTION_PROBLEMS + RECORD_PROBLEMS},
        "outside_root": [{"video_id": r.video_id, "path": r.video} for r in outside],
        "num_problems": len(problems),
        "problems": problems,
    }


def summary(report: dict) -> str:
    found = {k: v for k, v in report["counts"].items() if v}
    head = f"checked {report['num_videos']} videos, {report['num_captions']} captions: "
    if not found:
        return head + "no problems found"
    lines = [head + ", ".join(f"{v} {k}" for k, v in found.items())]
    for p in report["problems"][:10]:
        lines.append(f"  {p['kind']}: {p['video_id']} {p['path']}: {p['detail']}")
    if len(report["problems"]) > 10:
        lines.append(f"  ... {len(report['problems']) - 10} more in the JSON report")
    return "\n".join(lines)
