"""Where a data module's videos and captions come from: the source contract and the default source.

:class:`~pig_lightning.data.datamodule.VideoTextDataModule` is the one data module; what it reads
is injected as its ``source``:

- :class:`AnnotationFiles`: annotation files (generic JSONL or a benchmark's own format) and a
  folder of videos or frame folders, decoded with PyAV (this module);
- the generated sets :class:`~pig_lightning.data.worlds.sources.SyntheticVideos`,
  :class:`~pig_lightning.data.worlds.sources.SceneImages` and
  :class:`~pig_lightning.data.worlds.sources.SceneVideos`: annotation files they write themselves
  (in :meth:`VideoSource.prepare`, Lightning's ``prepare_data``);
- :class:`~pig_lightning.data.optimized.streaming.OptimizedDatasets`: datasets written by
  ``pig-lightning optimize``, streamed with litdata.

The data module keeps what every source shares (frames, size, text length, batches, seed); a
source keeps what is its own (paths, format, decoding policy) and opens one split at a time.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

from torch.utils.data import DataLoader

from pig_lightning.data.datasets import (
    DECODE_ERROR_POLICIES,
    EpochAwareSampler,
    EvalVideoTextDataset,
    ResumableDataLoader,
    TrainVideoTextDataset,
)
from pig_lightning.data.sources.annotations import VideoRecord
from pig_lightning.data.sources.formats import read_annotations
from pig_lightning.data.sources.paths import check_video_paths, resolve_video_path
from pig_lightning.data.video.decoding import VideoReader
from pig_lightning.data.video.frame_cache import FrameCache
from pig_lightning.data.video.preprocess import find_preprocessing, settings_differences
from pig_lightning.data.video.readers import ClipReader

log = logging.getLogger(__name__)


class DataModuleSettings(Protocol):
    """What a source reads from the data module that holds it
    (:class:`~pig_lightning.data.datamodule.VideoTextDataModule`)."""

    num_frames: int
    image_size: int
    resize: str
    interpolation: str
    frame_positions: str
    train_sampling: str
    seed: int
    batch_size: int
    num_workers: int
    trainer: Any

    def world(self) -> tuple[int, int]: ...

    def collator(self): ...

    def pin_memory(self) -> bool: ...


class VideoSource(ABC):
    """What a :class:`~pig_lightning.data.datamodule.VideoTextDataModule` reads.

    A source names one location per split (:meth:`location`; ``None``: the split has no
    loader), opens a split as a dataset with ``records`` (:meth:`open`), and may write or fetch
    its data once before that (:meth:`prepare`) and suggest the tokenizer its captions need.
    """

    #: the config key of the training split, named when ``fit`` finds none
    TRAIN_KEY = "data.source.train"

    def prepare(self) -> None:
        """Write or fetch the data (once per node, before any split is opened); default: nothing."""

    @property
    def tokenizer(self) -> str | None:
        """The tokenizer the captions need when the data module names none (default: none)."""
        return None

    @abstractmethod
    def location(self, split: str) -> str | None:
        """Where ``split`` (``train``, ``val``, ``test``, ``predict``) is read from; ``None``: no such split."""

    def check(self, data: DataModuleSettings) -> None:
        """Refuse data-module settings this source cannot serve (at construction); default: all serve."""

    @abstractmethod
    def open(self, split: str, data: DataModuleSettings):
        """The dataset of ``split`` (it has ``records``) at the data module's settings."""

    def opened(self, datasets: dict[str, Any]) -> None:
        """Called after ``setup`` opened ``datasets`` (e.g. to compare how splits were prepared)."""

    def train_loader(self, dataset, data: DataModuleSettings) -> DataLoader:
        """The training loader of an opened training ``dataset``: shuffled per epoch with the data
        module's seed, an equal share per process, resumable mid-epoch."""
        world, rank = data.world()
        sampler = EpochAwareSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=data.seed)
        trainer = data.trainer
        return ResumableDataLoader(
            dataset,
            batches_done=(lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed) if trainer else None,
            batch_size=data.batch_size,
            sampler=sampler,
            drop_last=True,  # equal batches: the contrastive loss sees a constant number of negatives
            num_workers=data.num_workers,
            collate_fn=data.collator(),
            persistent_workers=data.num_workers > 0,
            pin_memory=data.pin_memory(),
            seed=data.seed,  # its own generator: leaves the global RNG to the training step
        )


class AnnotationFiles(VideoSource):
    """Annotation files and a folder of videos (files or JPEG frame folders), decoded with PyAV.

    Args:
        video_root: folder the annotation ``video`` paths are relative to.
        train_annotations, val_annotations, test_annotations: annotation files (generic JSONL,
            see :mod:`pig_lightning.data.sources.annotations`, or ``format``); a stage without a file has
            no loader.
        predict_annotations: videos to embed with ``predict`` (default: the test file).
        format: how the annotation files are written: ``jsonl`` (generic) or a benchmark's own
            files (``msrvtt_csv``, ``msrvtt_jsonl``, ``msvd``, ``didemo``, ``activitynet``,
            ``vatex``, ``lsmdc``, ...; see :mod:`pig_lightning.data.sources.formats`). Every split uses it;
            for mixed formats convert to JSONL first (``pig-lightning convert``).
        format_options: passed to the reader: ``captions_file``, ``split``, ``video_pattern``,
            ``use_span``.
        outside_root: video paths that leave ``video_root`` (``../``, absolute paths elsewhere):
            ``warn`` (default), ``refuse`` or ``allow``.
        on_decode_error: ``raise`` stops at the first training video that cannot be decoded;
            ``skip`` replaces it by another, counts and logs it (console and TensorBoard
            ``data/skipped_videos``). Evaluation always raises (a skipped test video would
            change the metrics).
        seek_threshold: null never seeks, 0 always does; otherwise the reader seeks past
            keyframes the container indexes, and, for files without a keyframe index, seeks to
            every sampled frame of clips longer than this many seconds (see ``decoding.py``).
        frame_folder_fps: extraction rate of JPEG frame folders, needed for clips with start/end.
        cache_frames_mib: keep every decoded clip in memory, up to this many MiB per split in each
            loading process (a worker or the main process), so that a small set of short videos is
            decoded once instead of at every epoch; same batches and results as without it (files with
            irregular timestamps are read directly). ``0``: off (see
            :mod:`~pig_lightning.data.video.frame_cache`).
    """

    TRAIN_KEY = "data.source.train_annotations"

    def __init__(
        self,
        video_root: str,
        train_annotations: str | None = None,
        val_annotations: str | None = None,
        test_annotations: str | None = None,
        predict_annotations: str | None = None,
        format: str = "jsonl",
        format_options: dict | None = None,
        outside_root: str = "warn",
        on_decode_error: str = "raise",
        seek_threshold: float | None = 30.0,
        frame_folder_fps: float | None = None,
        cache_frames_mib: float = 0,
    ):
        self.video_root = video_root
        self.annotations = {
            "train": train_annotations,
            "val": val_annotations,
            "test": test_annotations,
            "predict": predict_annotations or test_annotations,
        }
        self.format = format
        self.format_options = dict(format_options or {})
        self.outside_root = outside_root
        check_video_paths([], video_root, outside_root, option="data.source.outside_root")
        if on_decode_error not in DECODE_ERROR_POLICIES:
            raise ValueError(f"data.source.on_decode_error must be one of {DECODE_ERROR_POLICIES}, "
                             f"got {on_decode_error!r}")
        self.on_decode_error = on_decode_error
        self.seek_threshold = seek_threshold
        self.frame_folder_fps = frame_folder_fps
        if not cache_frames_mib >= 0:
            raise ValueError(f"data.source.cache_frames_mib must be >= 0 (0: no cache), got {cache_frames_mib}")
        self.cache_frames_mib = cache_frames_mib
        self._drift_checked: set[str] = set()  # splits already compared with train (setup runs per stage)

    def location(self, split: str) -> str | None:
        return self.annotations[split]

    def records(self, split: str) -> list[VideoRecord]:
        path = self.annotations[split]
        if path is None:
            raise ValueError(f"no {split} annotation file is configured (data.source.{split}_annotations)")
        return read_annotations(path, self.format, **self.format_options)

    def reader(self, data: DataModuleSettings) -> VideoReader:
        reader = ClipReader(data.image_size, resize=data.resize, interpolation=data.interpolation,
                            seek_threshold=self.seek_threshold, frame_folder_fps=self.frame_folder_fps)
        return FrameCache(reader, self.cache_frames_mib) if self.cache_frames_mib else reader

    def check(self, data: DataModuleSettings) -> None:
        self.reader(data)  # validates resize / interpolation now, not in a worker

    def root(self) -> Path:
        root = Path(self.video_root)
        if not root.is_dir():
            raise FileNotFoundError(f"video folder not found: {root} (data.source.video_root)")
        return root

    def open(self, split: str, data: DataModuleSettings):
        root = self.root()
        records = self.records(split)
        check_video_paths(records, root, self.outside_root, source=str(self.annotations[split]),
                          option="data.source.outside_root")
        if split == "train":
            return TrainVideoTextDataset(records, root, self.reader(data), data.num_frames, data.seed,
                                         sampling=data.train_sampling, on_decode_error=self.on_decode_error,
                                         frame_positions=data.frame_positions)
        return EvalVideoTextDataset(records, root, self.reader(data), data.num_frames, data.frame_positions)

    def opened(self, datasets: dict[str, Any]) -> None:
        """Warn when the train and evaluation videos were preprocessed differently."""
        if "train" not in datasets or {"val", "test"} & set(datasets) <= self._drift_checked:
            return
        found = self.preprocessing_by_split(datasets)
        for split in ("val", "test"):
            if split in found and split not in self._drift_checked:
                self._drift_checked.add(split)
                differences = settings_differences(found["train"], found[split])
                if differences:
                    log.warning(
                        "train and %s videos were preprocessed differently (%s): train %s, %s %s. Models see other "
                        "pixels at test time than in training; re-run `pig-lightning preprocess` with the same "
                        "settings for both.", split, ", ".join(differences), _describe(found["train"]), split,
                        _describe(found[split]),
                    )

    def preprocessing_by_split(self, datasets: dict[str, Any], probes: int = 3) -> dict[str, dict | None]:
        """The ``pig-lightning preprocess`` settings of each opened split, read next to a few of
        its videos (first, middle, last); a split whose probes disagree is reported as mixed."""
        root = Path(self.video_root)
        found: dict[str, dict | None] = {}
        for split, dataset in datasets.items():
            records = dataset.records
            picks = sorted({0, len(records) // 2, len(records) - 1})[:probes]
            settings = [find_preprocessing(resolve_video_path(root, records[i]), root) for i in picks]
            for other in settings[1:]:
                differences = settings_differences(settings[0], other)
                if differences:
                    log.warning("the %s videos were not all preprocessed the same way (%s): e.g. %s vs %s",
                                split, ", ".join(differences), settings[0], other)
            found[split] = settings[0]
        return found


def _describe(settings: dict | None) -> str:
    if settings is None:
        return "(original files, not preprocessed)"
    return "(" + ", ".join(f"{k}={settings.get(k)}" for k in ("fps", "short_side", "codec", "crf")) + ")"
