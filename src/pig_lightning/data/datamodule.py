"""The data module: a source of videos and captions (injected) -> train and evaluation batches."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, SequentialSampler

from pig_lightning.data.datasets import SeededDataLoader, VideoTextCollator, count_truncated
from pig_lightning.data.source import VideoSource
from pig_lightning.data.video.sampling import FRAME_POSITIONS, TRAIN_SAMPLING
from pig_lightning.weights.hf_folder import load_tokenizer

log = logging.getLogger(__name__)

STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


class VideoTextDataModule(L.LightningDataModule):
    """Batches of videos and captions from a ``source`` (:mod:`pig_lightning.data.source`).

    The values both model and data need (``num_frames``, ``image_size``,
    ``max_text_length``, ``tokenizer``) are set here once; the CLI passes them on to the model.

    Args:
        source: where the videos and captions come from: annotation files and a video folder
            (:class:`~pig_lightning.data.source.AnnotationFiles`), a generated set
            (:class:`~pig_lightning.data.worlds.sources.SyntheticVideos`, ``SceneVideos``,
            ``SceneImages``) or optimized datasets
            (:class:`~pig_lightning.data.optimized.streaming.OptimizedDatasets`).
        tokenizer: hub id or folder of the caption tokenizer (the CLIP checkpoint's); default:
            the source's own (a generated set writes one), else ``openai/clip-vit-base-patch32``.
        num_frames: frames sampled per video (jittered for training, uniform for evaluation).
        image_size: frames are resized to ``image_size x image_size`` (see ``resize``).
        max_text_length: captions are padded/truncated to this many tokens.
        batch_size: training videos per batch and process (one caption each).
        eval_batch_size: evaluation videos per batch and process (all their captions).
        num_workers: data-loader processes per training process.
        seed: the frame jitter and caption choice depend only on (seed, epoch, video).
        interpolation: PyAV/FFmpeg resize filter (reference recipe: bicubic).
        resize: ``squash`` to a square (reference recipe) or ``crop`` (short side, centre crop).
        train_sampling: ``jittered`` (reference recipe), ``segment`` (TSN / X-Pool: one random
            frame per equal segment) or ``uniform``. Evaluation is always uniform.
        frame_positions: how ``linspace`` frame positions become indices: ``truncate`` (the
            release's ``astype(int)``) or ``round`` (nearest frame), see ``data/video/sampling.py``.

    Captions longer than ``max_text_length`` tokens are cut; how many, per split, is logged once
    when the split is set up.
    """

    def __init__(
        self,
        source: VideoSource,
        tokenizer: str | None = None,
        num_frames: int = 12,
        image_size: int = 224,
        max_text_length: int = 32,
        batch_size: int = 32,
        eval_batch_size: int = 16,
        num_workers: int = 4,
        seed: int = 42,
        interpolation: str = "BICUBIC",
        resize: str = "squash",
        train_sampling: str = "jittered",
        frame_positions: str = "truncate",
    ):
        super().__init__()
        for name, value in (("num_frames", num_frames), ("image_size", image_size),
                            ("max_text_length", max_text_length), ("batch_size", batch_size),
                            ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ValueError(f"data.{name} must be >= 1, got {value}")
        if not isinstance(source, VideoSource):
            raise TypeError(f"data.source must be a VideoSource (AnnotationFiles, SyntheticVideos, SceneVideos, "
                            f"SceneImages, OptimizedDatasets), got {type(source).__name__}")
        self.source = source
        self._tokenizer_name = tokenizer
        self.num_frames = num_frames
        self.image_size = image_size
        self.max_text_length = max_text_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.interpolation = interpolation
        self.resize = resize
        if train_sampling not in TRAIN_SAMPLING:
            raise ValueError(f"data.train_sampling must be one of {TRAIN_SAMPLING}, got {train_sampling!r}")
        self.train_sampling = train_sampling
        if frame_positions not in FRAME_POSITIONS:
            raise ValueError(f"data.frame_positions must be one of {FRAME_POSITIONS}, got {frame_positions!r}")
        self.frame_positions = frame_positions
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0 (0: load in the main process), got {num_workers}")
        source.check(self)
        self._tokenizer = None
        self._datasets: dict[str, object] = {}

    @property
    def tokenizer_source(self) -> str:
        """The tokenizer's hub id or folder: the one given, else the source's, else CLIP B/32's."""
        return self._tokenizer_name or self.source.tokenizer or "openai/clip-vit-base-patch32"

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_source)
        return self._tokenizer

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.source.prepare()  # a no-op when prepare_data ran (Lightning calls it first; a user may not)
        for split in STAGE_SPLITS.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if split in self._datasets or self.source.location(split) is None:
                continue
            dataset = self.source.open(split, self)
            self._report_truncation(split, dataset.records)
            self._datasets[split] = dataset
            log.info("%s: %d videos from %s", split, len(dataset.records), self.source.location(split))
        self.source.opened(self._datasets)
        if stage == "fit" and "train" not in self._datasets:
            raise ValueError(f"fit needs {self.source.TRAIN_KEY}")
        if stage == "fit" and self.selects_on_test:
            log.warning(
                "checkpoint selection uses the TEST split: the validation and test data are the same (%s). This is "
                "the reference recipe's choice; results selected this way are optimistic. Give held-out "
                "validation data to select on.", self.source.location("val"),
            )

    def _report_truncation(self, split: str, records) -> None:
        captions = [c for r in records for c in r.captions]
        cut, longest = count_truncated(self.tokenizer, captions, self.max_text_length)
        if cut:
            log.warning("%s: %d of %d captions are longer than max_text_length (%d tokens) and are cut to it "
                        "(longest: %d tokens)", split, cut, len(captions), self.max_text_length, longest)

    @property
    def selects_on_test(self) -> bool:
        """Whether the validation split (used for checkpoint selection) is the test split."""
        val, test = self.source.location("val"), self.source.location("test")
        return val is not None and test is not None and Path(val).resolve() == Path(test).resolve()

    def collator(self) -> VideoTextCollator:
        return VideoTextCollator(self.tokenizer, self.max_text_length)

    def world(self) -> tuple[int, int]:
        """``(processes, this process's rank)`` of the Trainer (``(1, 0)`` without one)."""
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def pin_memory(self) -> bool:
        """Page-locked batches (faster, asynchronous host-to-device copies) when the Trainer runs on CUDA."""
        trainer = self.trainer
        return trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)

    def train_dataloader(self) -> DataLoader:
        dataset = self._datasets["train"]
        world, _ = self.world()
        if len(dataset.records) < self.batch_size * world:
            raise ValueError(
                f"the training set has {len(dataset.records)} videos, fewer than one global batch "
                f"({self.batch_size} x {world} processes)"
            )
        return self.source.train_loader(dataset, self)

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self._datasets[split]
        return SeededDataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=SequentialSampler(dataset),
            num_workers=self.num_workers,
            collate_fn=self.collator(),
            pin_memory=self.pin_memory(),
            persistent_workers=self.num_workers > 0,  # not forked again at every validation
            seed=self.seed,  # its own generator: leaves the global RNG to the training step
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self._datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")
