"""``pig-lightning index``: embed a video collection once with a trained checkpoint."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from pig_lightning.data.sources.paths import check_video_paths, resolve_video_path
from pig_lightning.data.sources.formats import read_annotations
from pig_lightning.data.video.preprocess import VIDEO_EXTENSIONS
from pig_lightning.data.video.decoding import VideoDecodeError
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import uniform_indices
from pig_lightning.data.video.transforms import clip_normalise
from pig_lightning.atomic import check_output_file, file_sha256, write_json_atomic
from pig_lightning.load import load_model
from pig_lightning.retrieval.gallery import Gallery, merge_shards
from pig_lightning.settings import DataSettings
from pig_lightning.weights.folder import weights_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryItem:
    """One entry of the collection: a video file (or frame folder), optionally a clip of it."""

    video_id: str
    path: Path
    start: float | None = None
    end: float | None = None


def model_identity(module, ckpt_path: str | Path) -> dict[str, Any]:
    backbone = module.tower.backbone
    return {
        "tower": type(module.tower).__name__,
        "kind": module.tower.kind,
        "backbone": type(backbone).__name__,
        "weights": backbone.model_source,
        "embed_dim": backbone.embed_dim,
        "checkpoint_sha256": file_sha256(weights_file(ckpt_path), 16),
    }


def preprocessing_of(module, interpolation: str = "BICUBIC", resize: str = "squash") -> dict[str, Any]:
    """What a gallery records about how its videos were prepared (compared by ``search``)."""
    settings = DataSettings.of_module(module)
    return {
        "num_frames": settings.num_frames,
        "image_size": settings.image_size,
        "sampling": "uniform",
        "resize": resize,
        "interpolation": interpolation.upper(),
        "normalisation": "clip",
    }


def collection_root(videos: str | Path, video_root: str | Path | None = None) -> Path:
    """The folder the collection's video paths are relative to: ``video_root``, else the
    annotation file's folder, else the video folder itself."""
    videos = Path(videos)
    if video_root:
        return Path(video_root)
    return videos if videos.is_dir() else videos.parent


def source_of(item: GalleryItem, root: str | Path) -> dict[str, Any]:
    """What a gallery records about where ``item`` came from: its path relative to ``root`` (as
    written, POSIX; absolute when it lies outside the root) and its clip's start and end."""
    root_abs = os.path.normpath(os.path.abspath(root))
    path_abs = os.path.normpath(os.path.abspath(item.path))
    try:
        inside = os.path.commonpath([root_abs, path_abs]) == root_abs
    except ValueError:  # another drive (Windows)
        inside = False
    path = Path(os.path.relpath(path_abs, root_abs)).as_posix() if inside else path_abs
    return {"path": path, "start": item.start, "end": item.end}


def list_videos(videos: str | Path, video_root: str | Path | None = None, format: str = "jsonl",
                format_options: dict | None = None, outside_root: str = "warn") -> list[GalleryItem]:
    """The collection: every record of an annotation file (any ``format``; clips keep their
    start/end), or every video file below a folder. Paths outside the video root are warned
    about, refused or allowed (``outside_root``)."""
    videos = Path(videos)
    if videos.is_file():
        root = collection_root(videos, video_root)
        records = read_annotations(videos, format, **(format_options or {}))
        check_video_paths(records, root, outside_root, source=str(videos), option="--outside_root")
        return [GalleryItem(r.video_id, resolve_video_path(root, r), r.start, r.end) for r in records]
    if videos.is_dir():
        files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        return [GalleryItem(str(p.relative_to(videos).with_suffix("")), p) for p in files]
    raise FileNotFoundError(f"--videos must be an annotation file or a folder of videos: {videos} does not exist")


class _Clips(Dataset):
    """``(index, uint8 frames [T, H, W, 3] or None, why it could not be decoded or None)`` per item: a
    broken video is reported by the worker, not raised in it (no worker traceback)."""

    def __init__(self, items: list[GalleryItem], num_frames: int, reader: ClipReader):
        self.items, self.num_frames, self.reader = items, num_frames, reader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        item = self.items[i]
        try:
            frames, _ = self.reader.read(item.path, lambda n: uniform_indices(n, self.num_frames), item.start,
                                         item.end)
        except VideoDecodeError as exc:
            return i, None, exc.reason
        return i, torch.from_numpy(frames), None  # normalised on the device


def _collate(batch: list[tuple[int, torch.Tensor | None, str | None]]):
    """Indices and stacked frames of the decoded items; ``(index, reason)`` of the others."""
    good = [(i, frames) for i, frames, _ in batch if frames is not None]
    failed = [(i, reason) for i, frames, reason in batch if frames is None]
    return [i for i, _ in good], (torch.stack([f for _, f in good]) if good else None), failed


def skipped_path(output: str | Path) -> Path:
    """Where ``index`` lists the videos it could not decode: ``<gallery>.skipped.json``."""
    output = Path(output)
    return output.with_name(output.name + ".skipped.json")


def trained_setting(module, name: str, given: str | None, default: str) -> str:
    """A preprocessing setting: as given (warned about when it differs from the checkpoint's
    training), else as trained, else ``default``."""
    trained = getattr(DataSettings.of_module(module), name)
    if given is None:
        return str(trained) if trained is not None else default
    if trained is not None and str(trained).lower() != str(given).lower():
        log.warning("%s: the checkpoint was trained with %s, the gallery is built with %s", name, trained, given)
    return given


def build_index(ckpt_path: str | Path, videos: str | Path, output: str | Path, video_root: str | None = None,
                batch_size: int = 16, shard_size: int = 1024, num_workers: int = 2, dtype: str = "float16",
                device: str = "cpu", interpolation: str | None = None, rank: int = 0, world_size: int = 1,
                progress: bool = True, resize: str | None = None, format: str = "jsonl",
                format_options: dict | None = None, outside_root: str = "warn", strict: bool = False) -> Path | None:
    """Embed ``videos`` into the gallery file ``output``; returns it once every shard is done.

    Shards are split over ``world_size`` processes by ``rank`` (as set by torchrun); finished
    shards are kept and skipped when the command runs again. ``resize`` and ``interpolation``
    default to the checkpoint's training settings. Embeddings that are not finite are never written.

    A video that cannot be decoded (empty, corrupt, truncated, not a video, audio only, a frame
    folder without frames, missing) is left out of the gallery and listed with its reason in
    ``<output>.skipped.json`` (:func:`skipped_path`); with ``strict`` the first one stops the run
    with an error naming it, and nothing is written.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    for name, value, least in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1),
                               ("num_workers", num_workers, 0)):
        if value < least:
            raise ValueError(f"--{name} must be >= {least}, got {value}")
    output = Path(output)
    check_output_file(output)
    items = list_videos(videos, video_root, format, format_options, outside_root)
    if not items:
        raise ValueError(f"empty gallery: no videos found in {videos}")
    module = load_model(ckpt_path, device)
    resize = trained_setting(module, "resize", resize, "squash")
    interpolation = trained_setting(module, "interpolation", interpolation, "BICUBIC")
    identity = model_identity(module, ckpt_path)
    preprocessing = preprocessing_of(module, interpolation, resize)
    reader = ClipReader(preprocessing["image_size"], resize=resize, interpolation=interpolation)
    root = collection_root(videos, video_root)
    video_root_abs = os.path.normpath(os.path.abspath(root))
    shards_dir = output.with_name(output.name + ".shards")
    num_shards = math.ceil(len(items) / shard_size)
    for shard in range(rank, num_shards, world_size):
        path = shards_dir / f"shard_{shard:06d}.safetensors"
        listing = shards_dir / f"shard_{shard:06d}.skipped.json"
        chunk = items[shard * shard_size : (shard + 1) * shard_size]
        if _shard_done(path, listing, chunk, identity, preprocessing):
            log.info("shard %d/%d already done: %s", shard + 1, num_shards, path)
            continue
        loader = DataLoader(_Clips(chunk, preprocessing["num_frames"], reader), batch_size=batch_size,
                            num_workers=num_workers, collate_fn=_collate, pin_memory=str(device).startswith("cuda"))
        parts, kept, skipped = [], [], []
        with torch.no_grad():
            for indices, frames, failed in tqdm(loader, desc=f"shard {shard + 1}/{num_shards}", disable=not progress):
                for i, reason in failed:
                    if strict:
                        raise ValueError(f"cannot decode video {chunk[i].path} (video_id {chunk[i].video_id!r}): "
                                         f"{reason}; nothing was written (--strict; without it such videos are "
                                         f"skipped and listed in {skipped_path(output)})")
                    skipped.append({"video_id": chunk[i].video_id, **source_of(chunk[i], root), "reason": reason})
                    log.warning("skipping %s (%s): %s", chunk[i].video_id, chunk[i].path, reason)
                if frames is not None:
                    frames = clip_normalise(frames.to(device, non_blocking=True))
                    parts.append(module.encode_videos(frames).float().cpu())
                    kept.extend(indices)
        if parts:
            stored = Gallery(torch.cat(parts).to(getattr(torch, dtype)), [chunk[i].video_id for i in kept], identity,
                             preprocessing, video_root_abs, [source_of(chunk[i], root) for i in kept])
            bad = stored.non_finite_ids()
            if bad:
                raise ValueError(f"the checkpoint {ckpt_path} produced non-finite (NaN or infinite) embeddings for "
                                 f"{len(bad)} of {len(kept)} videos of shard {shard + 1} ({', '.join(bad[:5])}); "
                                 "nothing was written. The checkpoint's weights are probably broken (a diverged "
                                 "run?)" + (" or too large for float16 (try --dtype float32)" if dtype == "float16"
                                            else ""))
            stored.save(path)
        write_json_atomic(listing, skipped)  # last: a shard counts as done once its list exists
    expected = [shards_dir / f"shard_{n:06d}.skipped.json" for n in range(num_shards)]
    if not all(p.is_file() for p in expected):
        log.info("this process's shards are done; the gallery is merged when all %d exist", num_shards)
        return None
    skipped = [entry for p in expected for entry in json.loads(p.read_text())]
    files = [shards_dir / f"shard_{n:06d}.safetensors" for n in range(num_shards)]
    shards = [Gallery.load(p) for p in files if p.is_file()]
    if not shards:
        raise ValueError(f"none of the {len(items)} videos of {videos} could be decoded (e.g. "
                         f"{skipped[0]['path']}: {skipped[0]['reason']}); nothing was written. Check them with "
                         "`pig-lightning data-check`")
    merge_shards(shards).save(output)
    listing = skipped_path(output)
    if skipped:
        write_json_atomic(listing, skipped, indent=1)
        log.warning("%d of %d videos could not be decoded and are not in the gallery; they are listed in %s",
                    len(skipped), len(items), listing)
    elif listing.is_file():
        listing.unlink()  # from an earlier gallery at this path
    shutil.rmtree(shards_dir, ignore_errors=True)
    return output


def _shard_done(path: Path, listing: Path, chunk: list[GalleryItem], identity: dict[str, Any],
                preprocessing: dict[str, Any]) -> bool:
    """Whether an earlier run finished this shard with this model, preprocessing and video list."""
    if not listing.is_file():
        return False
    skipped = {entry["video_id"] for entry in json.loads(listing.read_text())}
    wanted = [i.video_id for i in chunk if i.video_id not in skipped]
    if not path.is_file():
        return not wanted  # every video of the shard was skipped
    done = Gallery.load(path)
    if done.model == identity and done.preprocessing == preprocessing and done.video_ids == wanted:
        return True
    raise ValueError(f"{path} was made by another model, preprocessing or video list; remove {path.parent}")
