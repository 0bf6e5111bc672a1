"""Training and evaluation from optimized datasets (``pig-lightning optimize``).

Training streams with litdata: each process reads its own chunks (node- and rank-aware),
shuffled by chunk and within chunks per epoch, from a local folder or object storage through a
local cache. Frame sampling (``train_sampling``, ``frame_positions``) and the caption choice
are this project's, drawn from ``(seed, epoch, video)`` as for mp4 files, over the stored
``frames_per_video`` frames. Under several processes every epoch has the same number of batches on
each (see :func:`batches_per_process`): one process short of batches would leave the others
waiting in a gradient all-reduce it never enters.

Evaluation reads every video once by its position (a map-style dataset over the same chunks):
the ids, captions and order are those of ``records.jsonl``, so the metrics code is the mp4
path's, exact on any number of processes.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.data.datasets import EvalVideoTextDataset, SeededDataLoader
from pig_lightning.data.source import VideoSource
from pig_lightning.data.optimized.optimized_format import (
    MANIFEST,
    RECORDS,
    OptimizedDatasetError,
    annotations_digest,
    check_run_settings,
    decode_frames,
    litdata_module,
    read_manifest,
    require_complete,
)
from pig_lightning.data.video.sampling import make_sampler, uniform_indices
from pig_lightning.data.video.transforms import resize_frames

log = logging.getLogger(__name__)


def is_remote(location: str) -> bool:
    return "://" in location or location.startswith("local:")


class _MetaFiles:
    """Reads this project's small files of a dataset location: a folder, or (``local:``, ``s3://``...)
    a fresh download per call into a private temporary folder (never a shared cache: a file cached
    while ``optimize`` was still writing, or from an earlier dataset at the same place, would be
    trusted; and ranks on one node would wait on each other's downloads)."""

    def __init__(self, location: str, cache_dir: str | None):
        self.location = location
        self.cache_dir = cache_dir

    def __enter__(self) -> "_MetaFiles":
        self._tmp = None
        if is_remote(self.location):
            from litdata.streaming.downloader import get_downloader

            if self.cache_dir:
                Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.TemporaryDirectory(prefix="pig_optimized_meta_", dir=self.cache_dir)
            self._downloader = get_downloader(self.location, self._tmp.name, [])
        return self

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def path(self, name: str) -> Path:
        """The local path of the dataset's file ``name`` (downloaded now when the dataset is remote)."""
        if self._tmp is None:
            return Path(self.location) / name
        remote = self.location[len("local:"):] if self.location.startswith("local:") else self.location
        target = Path(self._tmp.name) / name
        try:
            self._downloader.download_file(f"{remote.rstrip('/')}/{name}", str(target))
        except OSError as exc:
            raise OptimizedDatasetError(f"{self.location} has no {name} ({exc})") from None
        return target


class OptimizedSplit:
    """An opened optimized dataset: its manifest, its records, where its chunks are."""

    def __init__(self, location: str, option: str, cache_dir: str | None = None):
        self.location = location
        self.option = option
        self.cache_dir = cache_dir
        with _MetaFiles(location, cache_dir) as files:
            try:
                self.manifest = read_manifest(files.path(MANIFEST))
                require_complete(self.manifest, location)  # before the records: an unfinished dataset has none
                self.records = read_jsonl(files.path(RECORDS))
            except OptimizedDatasetError as exc:
                raise OptimizedDatasetError(f"{option}: {exc}") from None
        if len(self.records) != self.manifest["num_videos"] or \
                annotations_digest(self.records) != self.manifest["annotations_sha256"]:
            raise OptimizedDatasetError(f"{option}: {location}: {RECORDS} does not match its manifest ({len(self.records)}"
                                        f" videos, manifest {self.manifest['num_videos']}, or other captions); "
                                        f"write the dataset again with `pig-lightning optimize`")

    def check(self, **run_settings: Any) -> None:
        check_run_settings(self.manifest, self.location, option=self.option, **run_settings)

    def stream(self, **kwargs: Any):
        return open_stream(self.location, cache_dir=self.cache_dir, **kwargs)


def _item_frames(item: dict[str, Any], location: str, sampler) -> np.ndarray:
    lengths = np.asarray(item["frame_bytes"], dtype=np.int64)
    if len(lengths) == 0:
        raise OptimizedDatasetError(f"{location}: video {item['video_id']} has no stored frames")
    return decode_frames(item["frames"], lengths, sampler(len(lengths)))


def open_stream(location: str, **kwargs: Any):
    """litdata's ``StreamingDataset`` over an optimized dataset (raw items)."""
    return litdata_module().StreamingDataset(location, **kwargs)


def train_stream(split: OptimizedSplit, num_frames: int, seed: int, sampling: str, frame_positions: str,
                 max_cache_size: str | None = None):
    """The training stream of a split: shuffled by litdata per epoch, equal shares per process."""
    dataset = _train_class()(split.location, cache_dir=split.cache_dir, shuffle=True, drop_last=True, seed=seed,
                             **({"max_cache_size": max_cache_size} if max_cache_size else {}))
    dataset.configure(split, num_frames, seed, sampling, frame_positions)
    return dataset


_TRAIN_CLASS = None


def _train_class():
    """A subclass of litdata's ``StreamingDataset`` (defined on first use: litdata is optional)."""
    global _TRAIN_CLASS
    if _TRAIN_CLASS is None:
        class StreamingTrainDataset(litdata_module().StreamingDataset):
            """Items -> frames (training sampling over the stored frames) and one caption, from (seed, epoch, video)."""

            def configure(self, split, num_frames, seed, sampling, frame_positions):
                self.records = split.records
                self.location = split.location
                self.num_frames = num_frames
                self.sample_seed = seed
                self.sampling = sampling
                self.frame_positions = frame_positions

            def __getitem__(self, index):
                item = super().__getitem__(index)
                i = int(item["record_index"])
                rng = np.random.default_rng([self.sample_seed, int(self.current_epoch), i])
                captions = self.records[i].captions
                caption = captions[int(rng.integers(len(captions)))]
                frames = _item_frames(item, self.location,
                                      make_sampler(self.sampling, self.num_frames, rng, self.frame_positions))
                return {"frames": torch.from_numpy(frames), "captions": [caption], "video_index": i}

        _TRAIN_CLASS = StreamingTrainDataset
    return _TRAIN_CLASS


def batches_per_process(stream, num_workers: int, batch_size: int, epoch: int) -> list[int]:
    """The full batches each process's training loader yields in ``epoch``, from litdata's plan.

    litdata splits the items among the processes and their data-loader workers (each worker
    batches its own items and drops its incomplete last batch, ``drop_last``). On one node every
    process gets the same number of batches; with several nodes (litdata counts
    ``world_size // GPUs per node``, or ``NNODES``) it reshuffles from the second epoch on within
    each node's chunks, and nodes whose chunks hold more items get more batches (litdata 0.2.76).
    The plan is a function of the chunks, the seed, the epoch and the world, the same on every
    process: each computes everyone's count, with no collective that could itself wait forever.
    """
    if stream.shuffler is None:
        stream.get_len(num_workers, batch_size)  # litdata makes its shuffler (the planner) here
    workers = max(num_workers, 1)  # 0 workers: the process itself reads, as one worker
    _, intervals = stream.shuffler.get_chunks_and_intervals_per_workers(stream.distributed_env, workers, batch_size,
                                                                         epoch)
    per_worker = [sum(end - start for _, start, end, _ in worker) // batch_size for worker in intervals]
    return [sum(per_worker[rank * workers:(rank + 1) * workers]) for rank in range(stream.distributed_env.world_size)]


_LOADER_CLASS = None
_END = object()


def _train_loader_class():
    """A subclass of litdata's ``StreamingDataLoader`` (defined on first use: litdata is optional)."""
    global _LOADER_CLASS
    if _LOADER_CLASS is None:
        class StreamingTrainLoader(litdata_module().StreamingDataLoader, SeededDataLoader):
            """litdata's loader, whose epochs end after the same number of batches on every process, with
            a random generator of its own (``seed=``; :class:`~pig_lightning.data.datasets.SeededDataLoader`).

            Each process stops at the smallest count of :func:`batches_per_process` (the extra
            batches of the others are left out of the epoch). A resumed epoch counts the batches
            trained before the checkpoint (litdata keeps that count in the loader's state). One
            process: litdata's loader unchanged. (A Lightning fit also stops each epoch at the
            first epoch's ``len()``, which hides the difference there; the loader does not rely on it.)
            """

            def __iter__(self):
                batches = super().__iter__()
                if self.dataset.distributed_env.world_size == 1:
                    yield from batches
                    return
                first = next(batches, _END)  # litdata starts the epoch here: its number is set, a resume applied
                if first is _END:
                    return
                counts = batches_per_process(self.dataset, self.num_workers, self.batch_size, self.current_epoch)
                limit = min(counts)
                trained = self._num_samples_yielded_streaming // self.batch_size - 1  # before `first`
                rank = self.dataset.distributed_env.global_rank
                if counts[rank] > limit:
                    log.info("epoch %d: litdata gives the processes %s training batches; rank %d stops after %d "
                             "like the others", self.current_epoch, counts, rank, limit)
                pending = itertools.chain([first], batches)
                for _ in range(trained, limit):
                    batch = next(pending, _END)
                    if batch is _END:
                        return  # litdata ended the epoch itself
                    yield batch
                batches.close()
                self.restore = False  # the epoch is over (litdata clears this only when it runs to its end)

        _LOADER_CLASS = StreamingTrainLoader
    return _LOADER_CLASS


class StreamingEvalDataset(EvalVideoTextDataset):
    """Every video of an optimized dataset once, by position, uniformly sampled; every caption."""

    def __init__(self, split: OptimizedSplit, num_frames: int, frame_positions: str):
        super().__init__(split.records, ".", reader=None, num_frames=num_frames, frame_positions=frame_positions)
        self.split = split
        self._stream = None  # opened in the process that reads (each data-loader worker its own)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_stream": None}

    def preview_frames(self, index: int, count: int, size: int) -> np.ndarray:
        """``count`` of the video's stored frames, uniformly spaced, at ``size`` px (no video file to decode)."""
        return resize_frames(_item_frames(self._item(index), self.split.location, lambda n: uniform_indices(n, count)),
                             size)

    def read_frames(self, index: int) -> np.ndarray:
        return _item_frames(self._item(index), self.split.location,
                            lambda n: uniform_indices(n, self.num_frames, self.frame_positions))

    def _item(self, index: int) -> dict[str, Any]:
        if self._stream is None:
            self._stream = self.split.stream()
        item = self._stream[index]
        if int(item["record_index"]) != index:
            raise OptimizedDatasetError(f"{self.split.location}: item {index} holds record {item['record_index']}; "
                                        f"the chunks and {RECORDS} do not belong together")
        return item


class OptimizedDatasets(VideoSource):
    """Datasets written by ``pig-lightning optimize``, one per split; training streams with litdata.

    Args:
        train_dir, val_dir, test_dir, predict_dir: optimized datasets (local folders, or
            ``s3://``/``gs://``/``local:`` locations litdata streams through ``cache_dir``); one per split.
        cache_dir: where streamed chunks are cached (default: litdata's).
        max_cache_size: bound of that cache (e.g. ``"50GB"``).

    The data module's ``image_size``, ``resize``, ``interpolation`` and ``frame_positions`` must
    be those the datasets were written with, and its ``num_frames`` at most their
    ``frames_per_video`` (checked when a split is opened, the error names both). Videos were
    decoded when optimizing: there is no decoding policy here.
    """

    TRAIN_KEY = "data.source.train_dir"

    def __init__(
        self,
        train_dir: str | None = None,
        val_dir: str | None = None,
        test_dir: str | None = None,
        predict_dir: str | None = None,
        cache_dir: str | None = None,
        max_cache_size: str | None = None,
    ):
        self.locations = {"train": train_dir, "val": val_dir, "test": test_dir, "predict": predict_dir or test_dir}
        self.cache_dir = cache_dir
        self.max_cache_size = max_cache_size
        self._splits: dict[str, OptimizedSplit] = {}

    def location(self, split: str) -> str | None:
        return self.locations[split]

    def split(self, split: str, data) -> OptimizedSplit:
        """The opened dataset of ``split``, checked against the data module's settings."""
        if split not in self._splits:
            location = self.locations[split]
            if location is None:
                raise ValueError(f"no {split} dataset is configured (data.source.{split}_dir)")
            opened = OptimizedSplit(location, f"data.source.{split}_dir", self.cache_dir)
            opened.check(num_frames=data.num_frames, image_size=data.image_size, resize=data.resize,
                         interpolation=data.interpolation, frame_positions=data.frame_positions)
            self._splits[split] = opened
        return self._splits[split]

    def open(self, split: str, data):
        opened = self.split(split, data)
        if split == "train":
            return opened  # the stream is built per loader (it carries the epoch)
        return StreamingEvalDataset(opened, data.num_frames, data.frame_positions)

    def train_loader(self, dataset: OptimizedSplit, data):
        stream = train_stream(dataset, data.num_frames, data.seed, data.train_sampling, data.frame_positions,
                              self.max_cache_size)
        return _train_loader_class()(
            stream, batch_size=data.batch_size, num_workers=data.num_workers, collate_fn=data.collator(),
            drop_last=True, pin_memory=data.pin_memory(), persistent_workers=data.num_workers > 0, seed=data.seed)
