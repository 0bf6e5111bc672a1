"""Gallery files: the offline half of retrieval, one safetensors file per video collection.

A gallery holds the stored video representations (one vector per video for two-tower and
hybrid towers; frame vectors for a single tower), the video ids, and what produced them:
the model's identity (tower, backbone, embedding size, checkpoint hash) and the
preprocessing (frames, image size, sampling). A search with another model or other
preprocessing is refused with both descriptions in the message.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
file that looks complete. Big collections are embedded in shards (one file each, in
``<output>.shards/``) that a resumed run does not recompute; the last step merges them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pig_lightning.atomic import atomic_path

FORMAT = "pig-lightning-gallery/1"


@dataclass
class Gallery:
    embeddings: torch.Tensor  # [N, D] or [N, T, D]
    video_ids: list[str]
    model: dict[str, Any]
    preprocessing: dict[str, Any]

    def __post_init__(self) -> None:
        if len(self.video_ids) != self.embeddings.shape[0]:
            raise ValueError(f"{len(self.video_ids)} video ids for {self.embeddings.shape[0]} embeddings")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format": FORMAT,
            "video_ids": json.dumps(self.video_ids),
            "model": json.dumps(self.model, sort_keys=True),
            "preprocessing": json.dumps(self.preprocessing, sort_keys=True),
        }
        with atomic_path(path) as tmp:
            save_file({"embeddings": self.embeddings.contiguous()}, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gallery file not found: {path} (build it with `pig-lightning index`)")
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{path} is not a readable gallery file: {exc}") from exc
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path} is not a pig-lightning gallery (format {metadata.get('format')!r})")
        tensors = load_file(str(path))
        return cls(
            embeddings=tensors["embeddings"],
            video_ids=json.loads(metadata["video_ids"]),
            model=json.loads(metadata["model"]),
            preprocessing=json.loads(metadata["preprocessing"]),
        )


def merge_shards(shards: list[Gallery]) -> Gallery:
    if not shards:
        raise ValueError("no shards to merge: the video list is empty")
    first = shards[0]
    for shard in shards[1:]:
        if shard.model != first.model or shard.preprocessing != first.preprocessing:
            raise ValueError("shards were made by different models or preprocessing; remove the .shards folder")
    return Gallery(
        embeddings=torch.cat([s.embeddings for s in shards]),
        video_ids=[v for s in shards for v in s.video_ids],
        model=first.model,
        preprocessing=first.preprocessing,
    )


def describe_mismatch(gallery: Gallery, model: dict[str, Any], preprocessing: dict[str, Any]) -> str | None:
    """None when the gallery was made by this model and preprocessing, else a message naming both."""
    problems = []
    for key in sorted(set(gallery.model) | set(model)):
        if gallery.model.get(key) != model.get(key):
            problems.append(f"model.{key}: gallery {gallery.model.get(key)!r} vs checkpoint {model.get(key)!r}")
    for key in sorted(set(gallery.preprocessing) | set(preprocessing)):
        if gallery.preprocessing.get(key) != preprocessing.get(key):
            problems.append(
                f"preprocessing.{key}: gallery {gallery.preprocessing.get(key)!r} vs checkpoint {preprocessing.get(key)!r}"
            )
    return "; ".join(problems) or None
