"""Gallery files: the offline half of retrieval, one safetensors file per video collection.

A gallery holds the stored video representations (one vector per video for two-tower and
hybrid towers; frame vectors for a single tower), the video ids, and what produced them:
the model's identity (tower, backbone, embedding size, checkpoint hash) and the
preprocessing (frames, image size, sampling). A search with another model or other
preprocessing is refused with both descriptions in the message. Galleries written by ``index``
also record where each video came from (``video_root`` and, per video, its path relative to it
and its clip's start/end) for playback (``pig-lightning serve``); older files load without them.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
file that looks complete. Big collections are embedded in shards (one file each, in
``<output>.shards/``) that a resumed run does not recompute; the last step merges them.
"""

from __future__ import annotations

import json
import math
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
    # Where the videos came from (None in galleries written before it was recorded): the absolute
    # video root, and per video {"path": relative to the root (absolute when outside it), "start", "end"}.
    video_root: str | None = None
    sources: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if len(self.video_ids) != self.embeddings.shape[0]:
            raise ValueError(f"{len(self.video_ids)} video ids for {self.embeddings.shape[0]} embeddings")
        if self.sources is not None and len(self.sources) != len(self.video_ids):
            raise ValueError(f"{len(self.sources)} video sources for {len(self.video_ids)} video ids")

    def non_finite_ids(self) -> list[str]:
        """The videos whose stored embedding holds a NaN or an infinity."""
        bad = ~torch.isfinite(self.embeddings.float()).reshape(len(self.video_ids), -1).all(dim=1)
        return [self.video_ids[i] for i in bad.nonzero().flatten().tolist()]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format": FORMAT,
            "video_ids": json.dumps(self.video_ids),
            "model": json.dumps(self.model, sort_keys=True),
            "preprocessing": json.dumps(self.preprocessing, sort_keys=True),
        }
        if self.video_root is not None:
            metadata["video_root"] = self.video_root
        if self.sources is not None:
            metadata["sources"] = json.dumps(self.sources)
        with atomic_path(path) as tmp:
            save_file({"embeddings": self.embeddings.contiguous()}, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        """Read and check a gallery file: a file of another kind, missing or malformed metadata, duplicate
        video ids and non-finite embeddings (a NaN would rank first) are refused, naming the file."""
        from pig_lightning.weights.checkpoint_file import sniff

        path = Path(path)
        kind = sniff(path)
        if kind == "missing":
            raise FileNotFoundError(f"gallery file not found: {path} (build it with `pig-lightning index`)")
        if kind == "folder":
            raise ValueError(f"{path} is a folder, not a gallery file (a .safetensors written by `pig-lightning index`)")
        if kind in ("zip", "pickle"):
            raise ValueError(f"{path} is a checkpoint (or another torch.save file), not a gallery; galleries are "
                             "written by `pig-lightning index`")
        if kind not in ("gallery", "safetensors"):
            raise ValueError(f"{path} is not a pig-lightning gallery: it is not a safetensors file")
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{path} is not a readable gallery file (truncated or corrupt): {exc}") from exc
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path} is not a pig-lightning gallery (format {metadata.get('format')!r})")
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a header that passed, data that does not
            raise ValueError(f"{path} is not a readable gallery file (truncated or corrupt): {exc}") from exc
        fields = {}
        for key in ("video_ids", "model", "preprocessing"):
            try:
                fields[key] = json.loads(metadata[key])
            except KeyError:
                raise ValueError(f"{path}: the gallery metadata lacks {key!r}; rebuild it with `pig-lightning index`") from None
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: the gallery metadata {key!r} is not valid JSON ({exc.msg})") from None
        ids = fields["video_ids"]
        if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
            raise ValueError(f"{path}: the gallery's video_ids must be a list of strings")
        if "embeddings" not in tensors:
            raise ValueError(f"{path}: the gallery holds no 'embeddings' tensor (tensors: {sorted(tensors)})")
        embeddings = tensors["embeddings"]
        if embeddings.ndim not in (2, 3) or not embeddings.is_floating_point():
            raise ValueError(f"{path}: gallery embeddings must be a float [videos, dim] (or [videos, frames, dim]) "
                             f"tensor, got {embeddings.dtype} {tuple(embeddings.shape)}")
        if len(ids) != embeddings.shape[0]:
            raise ValueError(f"{path}: {len(ids)} video ids for {embeddings.shape[0]} embeddings")
        seen: set[str] = set()
        for video_id in ids:
            if video_id in seen:
                raise ValueError(f"{path}: video id {video_id!r} appears twice in the gallery")
            seen.add(video_id)
        stated = fields["model"].get("embed_dim") if isinstance(fields["model"], dict) else None
        if stated is not None and embeddings.shape[-1] != stated:
            raise ValueError(f"{path}: the embeddings are {embeddings.shape[-1]} wide, its metadata says {stated}")
        video_root, sources = metadata.get("video_root"), _read_sources(path, metadata.get("sources"), len(ids))
        gallery = cls(embeddings=embeddings, **fields, video_root=video_root, sources=sources)
        bad = gallery.non_finite_ids()
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(f"{path}: {len(bad)} of {len(ids)} videos have non-finite (NaN or infinite) embeddings "
                             f"({shown}); they would rank first or last by accident. Rebuild the gallery with "
                             "`pig-lightning index`")
        return gallery


def _read_sources(path: Path, text: str | None, count: int) -> list[dict[str, Any]] | None:
    """The per-video sources of the metadata (None when the gallery predates them), checked."""
    if text is None:
        return None
    try:
        sources = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the gallery metadata 'sources' is not valid JSON ({exc.msg})") from None
    if not isinstance(sources, list) or len(sources) != count:
        raise ValueError(f"{path}: the gallery metadata 'sources' must list one entry per video ({count})")
    for source in sources:
        if not isinstance(source, dict) or not isinstance(source.get("path"), str) or not all(
                source.get(key) is None or _finite_seconds(source[key]) for key in ("start", "end")):
            raise ValueError(f"{path}: a gallery 'sources' entry must be {{\"path\": str, \"start\": number or null, "
                             f"\"end\": number or null}}, got {str(source)[:100]}")
    return sources


def _finite_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def merge_shards(shards: list[Gallery]) -> Gallery:
    if not shards:
        raise ValueError("no shards to merge: the video list is empty")
    first = shards[0]
    for shard in shards[1:]:
        if shard.model != first.model or shard.preprocessing != first.preprocessing:
            raise ValueError("shards were made by different models or preprocessing; remove the .shards folder")
    # sources are kept only when every shard has them from the same root (shards of an older version: none)
    keep_sources = all(s.sources is not None and s.video_root == first.video_root for s in shards)
    return Gallery(
        embeddings=torch.cat([s.embeddings for s in shards]),
        video_ids=[v for s in shards for v in s.video_ids],
        model=first.model,
        preprocessing=first.preprocessing,
        video_root=first.video_root if keep_sources else None,
        sources=[x for s in shards for x in s.sources] if keep_sources else None,
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
