"""Lightning data modules: annotation files + a video folder -> train and evaluation batches."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, SequentialSampler

from pig_lightning.data.sources.annotations import VideoRecord
from pig_lightning.data.datasets import EpochAwareSampler, EvalVideoTextDataset, ResumableDataLoader, TrainVideoTextDataset, VideoTextCollator, check_train_options, count_truncated
from pig_lightning.data.sources.paths import check_video_paths, resolve_video_path
from pig_lightning.data.sources.formats import read_annotations
from pig_lightning.data.video.preprocess import find_preprocessing, settings_differences
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import FRAME_POSITIONS
from pig_lightning.data.worlds.synthetic import SyntheticConfig, make_synthetic
from pig_lightning.weights.hf_folder import load_tokenizer

log = logging.getLogger(__name__)


class VideoTextDataModule(L.LightningDataModule):
    """Videos (files or JPEG frame folders) and captions from annotation files.

    The values both model and data need (``num_frames``, ``image_size``,
    ``max_text_length``, ``tokenizer``) are set here once; the CLI passes them on to the model.

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
        tokenizer: hub id or folder of the caption tokenizer (the CLIP checkpoint's).
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
        seek_threshold: null never seeks, 0 always does; otherwise the reader seeks past
            keyframes the container indexes, and, for files without a keyframe index, seeks to
            every sampled frame of clips longer than this many seconds (see ``decoding.py``).
        frame_folder_fps: extraction rate of JPEG frame folders, needed for clips with start/end.
        on_decode_error: ``raise`` stops at the first training video that cannot be decoded;
            ``skip`` replaces it by another, counts and logs it (console and TensorBoard
            ``data/skipped_videos``). Evaluation always raises (a skipped test video would
            change the metrics).
        outside_root: video paths that leave ``video_root`` (``../``, absolute paths elsewhere):
            ``warn`` (default), ``refuse`` or ``allow``.

    Captions longer than ``max_text_length`` tokens are cut; how many, per split, is logged once
    when the split is set up.
    """

    def __init__(
        self,
        video_root: str,
        train_annotations: str | None = None,
        val_annotations: str | None = None,
        test_annotations: str | None = None,
        predict_annotations: str | None = None,
        tokenizer: str = "openai/clip-vit-base-patch32",
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
        seek_threshold: float | None = 30.0,
        frame_folder_fps: float | None = None,
        on_decode_error: str = "raise",
        format: str = "jsonl",
        format_options: dict | None = None,
        outside_root: str = "warn",
    ):
        super().__init__()
        for name, value in (("num_frames", num_frames), ("image_size", image_size),
                            ("max_text_length", max_text_length), ("batch_size", batch_size),
                            ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ValueError(f"data.{name} must be >= 1, got {value}")
        self.video_root = video_root
        self.annotations = {
            "train": train_annotations,
            "val": val_annotations,
            "test": test_annotations,
            "predict": predict_annotations or test_annotations,
        }
        self.tokenizer_source = tokenizer
        self.num_frames = num_frames
        self.image_size = image_size
        self.max_text_length = max_text_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.interpolation = interpolation
        self.resize = resize
        self.train_sampling = train_sampling
        if frame_positions not in FRAME_POSITIONS:
            raise ValueError(f"data.frame_positions must be one of {FRAME_POSITIONS}, got {frame_positions!r}")
        self.frame_positions = frame_positions
        self.seek_threshold = seek_threshold
        self.frame_folder_fps = frame_folder_fps
        self.on_decode_error = on_decode_error
        self.format = format
        self.format_options = dict(format_options or {})
        self.outside_root = outside_root
        check_video_paths([], video_root, outside_root, option="data.outside_root")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0 (0: load in the main process), got {num_workers}")
        check_train_options(train_sampling, on_decode_error, prefix="data.")
        self._reader()  # validates resize / interpolation now, not in a worker
        self._tokenizer = None
        self._datasets: dict[str, object] = {}
        self._drift_checked: set[str] = set()  # splits already compared with train (setup runs per stage)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_source)
        return self._tokenizer

    def _records(self, split: str) -> list[VideoRecord]:
        path = self.annotations[split]
        if path is None:
            raise ValueError(f"no {split} annotation file is configured (data.{split}_annotations)")
        return read_annotations(path, self.format, **self.format_options)

    def _reader(self) -> ClipReader:
        return ClipReader(self.image_size, resize=self.resize, interpolation=self.interpolation,
                          seek_threshold=self.seek_threshold, frame_folder_fps=self.frame_folder_fps)

    def setup(self, stage: str | None = None) -> None:
        root = Path(self.video_root)
        if not root.is_dir():
            raise FileNotFoundError(f"video folder not found: {root} (data.video_root)")
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}
        splits = wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test")
        for split in splits:
            if split in self._datasets or self.annotations[split] is None:
                continue
            records = self._records(split)
            check_video_paths(records, root, self.outside_root, source=str(self.annotations[split]),
                              option="data.outside_root")
            self._report_truncation(split, records)
            if split == "train":
                self._datasets[split] = TrainVideoTextDataset(
                    records, root, self._reader(), self.num_frames, self.seed, sampling=self.train_sampling,
                    on_decode_error=self.on_decode_error, frame_positions=self.frame_positions,
                )
            else:
                self._datasets[split] = EvalVideoTextDataset(records, root, self._reader(), self.num_frames,
                                                             self.frame_positions)
            log.info("%s: %d videos from %s", split, len(records), self.annotations[split])
        self._warn_on_preprocessing_drift(root)
        if stage == "fit" and "train" not in self._datasets:
            raise ValueError("fit needs data.train_annotations")
        if stage == "fit" and self.selects_on_test:
            log.warning(
                "checkpoint selection uses the TEST split: data.val_annotations and data.test_annotations are the "
                "same file (%s). This is the reference recipe's choice; results selected this way are optimistic. "
                "Give a held-out val_annotations file to select on validation data.", self.annotations["val"],
            )

    def _report_truncation(self, split: str, records: list[VideoRecord]) -> None:
        captions = [c for r in records for c in r.captions]
        cut, longest = count_truncated(self.tokenizer, captions, self.max_text_length)
        if cut:
            log.warning("%s: %d of %d captions are longer than max_text_length (%d tokens) and are cut to it "
                        "(longest: %d tokens)", split, cut, len(captions), self.max_text_length, longest)

    def preprocessing_by_split(self, root: Path, probes: int = 3) -> dict[str, dict | None]:
        """The ``pig-lightning preprocess`` settings of each loaded split, read next to a few of
        its videos (first, middle, last); a split whose probes disagree is reported as mixed."""
        found: dict[str, dict | None] = {}
        for split, dataset in self._datasets.items():
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

    def _warn_on_preprocessing_drift(self, root: Path) -> None:
        if "train" not in self._datasets or {"val", "test"} & set(self._datasets) <= self._drift_checked:
            return
        found = self.preprocessing_by_split(root)
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

    @property
    def selects_on_test(self) -> bool:
        """Whether the validation split (used for checkpoint selection) is the test split."""
        val, test = self.annotations["val"], self.annotations["test"]
        return val is not None and test is not None and Path(val).resolve() == Path(test).resolve()

    def _collator(self) -> VideoTextCollator:
        return VideoTextCollator(self.tokenizer, self.max_text_length)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _pin_memory(self) -> bool:
        """Page-locked batches (faster, asynchronous host-to-device copies) when the Trainer runs on CUDA."""
        trainer = self.trainer
        return trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)

    def train_dataloader(self) -> DataLoader:
        dataset = self._datasets["train"]
        world, rank = self._world()
        if len(dataset) < self.batch_size * world:
            raise ValueError(
                f"the training set has {len(dataset)} videos, fewer than one global batch "
                f"({self.batch_size} x {world} processes)"
            )
        sampler = EpochAwareSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        trainer = self.trainer
        return ResumableDataLoader(
            dataset,
            batches_done=(lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed) if trainer else None,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,  # equal batches: the contrastive loss sees a constant number of negatives
            num_workers=self.num_workers,
            collate_fn=self._collator(),
            persistent_workers=self.num_workers > 0,
            pin_memory=self._pin_memory(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self._datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=SequentialSampler(dataset),
            num_workers=self.num_workers,
            collate_fn=self._collator(),
            pin_memory=self._pin_memory(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self._datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")


def _describe(settings: dict | None) -> str:
    if settings is None:
        return "(original files, not preprocessed)"
    return "(" + ", ".join(f"{k}={settings.get(k)}" for k in ("fps", "short_side", "codec", "crf")) + ")"


class SyntheticVideoTextDataModule(VideoTextDataModule):
    """The embedded synthetic set (see :mod:`pig_lightning.data.worlds.synthetic`).

    The set is generated when ``root`` does not hold it yet (reused when it does), at
    construction time: the model needs the set's tokenizer to be built.
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        num_train: int = 480,
        num_val: int = 80,
        num_test: int = 80,
        captions_per_video: int = 4,
        frame_size: int = 64,
        frames_per_event: int = 12,
        synthetic_seed: int = 0,
        num_frames: int = 8,
        image_size: int = 32,
        max_text_length: int = 24,
        batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 42,
        interpolation: str = "BICUBIC",
        resize: str = "squash",
        train_sampling: str = "jittered",
        on_decode_error: str = "raise",
    ):
        cfg = SyntheticConfig(
            num_train=num_train, num_val=num_val, num_test=num_test, captions_per_video=captions_per_video,
            frame_size=frame_size, frames_per_event=frames_per_event, seed=synthetic_seed,
        )
        make_synthetic(root, cfg)
        root_path = Path(root)
        super().__init__(
            video_root=str(root_path),
            train_annotations=str(root_path / "train.jsonl") if num_train else None,
            val_annotations=str(root_path / "val.jsonl") if num_val else None,
            test_annotations=str(root_path / "test.jsonl") if num_test else None,
            tokenizer=str(root_path / "tokenizer"),
            num_frames=num_frames,
            image_size=image_size,
            max_text_length=max_text_length,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            interpolation=interpolation,
            resize=resize,
            train_sampling=train_sampling,
            on_decode_error=on_decode_error,
        )
