"""Torch datasets over annotation records: one item per video.

Training items carry one caption chosen per (seed, epoch, video) and jittered frame
indices; evaluation items carry uniformly sampled frames and *all* captions of the video,
so every video is decoded once per evaluation however many captions it has. Randomness
depends only on ``(seed, epoch, index)``: results do not change with the number of
data-loader workers or processes.

A training video that cannot be decoded either stops the run (``on_decode_error="raise"``, the
default) or, with ``"skip"``, is replaced by another video drawn from ``(seed, epoch, index)``;
the item then carries ``decode_skips`` (file, reason) so the run can count and log the event
(:class:`~pig_lightning.training.skips.DecodeSkipMonitor`). Evaluation never skips: a missing test
video would silently change the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from pig_lightning.data.sources.annotations import VideoRecord
from pig_lightning.data.sources.paths import resolve_video_path
from pig_lightning.data.video.decoding import VideoDecodeError, VideoReader
from pig_lightning.data.video.sampling import TRAIN_SAMPLING, make_sampler, uniform_indices

log = logging.getLogger(__name__)

DECODE_ERROR_POLICIES = ("raise", "skip")


def check_train_options(sampling: str, on_decode_error: str, prefix: str = "") -> None:
    """Refuse unknown training-sampling / bad-video settings, naming the key (``prefix`` + name)."""
    if on_decode_error not in DECODE_ERROR_POLICIES:
        raise ValueError(f"{prefix}on_decode_error must be one of {DECODE_ERROR_POLICIES}, got {on_decode_error!r}")
    if sampling not in TRAIN_SAMPLING:
        raise ValueError(f"{prefix}train_sampling must be one of {TRAIN_SAMPLING}, got {sampling!r}")


def count_truncated(tokenizer, captions: Sequence[str], max_text_length: int) -> tuple[int, int]:
    """``(captions longer than max_text_length tokens, the longest length)``: they are cut."""
    if not captions:
        return 0, 0
    lengths = [len(ids) for ids in tokenizer(list(captions), truncation=False, verbose=False)["input_ids"]]
    return sum(n > max_text_length for n in lengths), max(lengths)


class TrainVideoTextDataset(Dataset):
    """Item ``(index, epoch)`` -> frames (``sampling``: jittered / segment / uniform) and one random caption.

    Frames are ``uint8 [T, H, W, 3]``, as decoded (normalised on the device, see the collator)."""

    def __init__(self, records: Sequence[VideoRecord], video_root: str | Path, reader: VideoReader,
                 num_frames: int, seed: int = 0, sampling: str = "jittered", on_decode_error: str = "raise",
                 max_replacements: int = 10, frame_positions: str = "truncate"):
        check_train_options(sampling, on_decode_error)
        self.records = list(records)
        self.video_root = Path(video_root)
        self.reader = reader
        self.num_frames = num_frames
        self.seed = seed
        self.sampling = sampling
        self.on_decode_error = on_decode_error
        self.max_replacements = max_replacements
        self.frame_positions = frame_positions

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, epoch, index])
        skips: list[tuple[str, str]] = []
        for _ in range(self.max_replacements + 1):
            record = self.records[index]
            caption = record.captions[int(rng.integers(len(record.captions)))]
            path = resolve_video_path(self.video_root, record)
            try:
                frames, _ = self.reader.read(path, make_sampler(self.sampling, self.num_frames, rng, self.frame_positions),
                                             record.start, record.end)
            except VideoDecodeError as exc:
                if self.on_decode_error == "raise":
                    raise
                log.warning("skipping training video %s (%s): %s", record.video_id, exc.path, exc.reason)
                skips.append((exc.path, exc.reason))
                index = int(rng.integers(len(self.records)))  # the replacement, from (seed, epoch, index)
                continue
            return {"frames": torch.from_numpy(frames), "captions": [caption], "video_index": index,
                    "decode_skips": skips}
        raise VideoDecodeError(skips[-1][0], f"{len(skips)} videos in a row could not be decoded "
                                             f"(on_decode_error=skip); the data set looks broken, last error: "
                                             f"{skips[-1][1]}. Run `pig-lightning data-check`.")


class EvalVideoTextDataset(Dataset):
    """Item ``index`` -> frames (uniform sampling, ``uint8 [T, H, W, 3]``) and every caption of the video.

    ``text_offsets[i]`` is the global index of video i's first caption, so texts are
    numbered in annotation order (video 0's captions first).
    """

    def __init__(self, records: Sequence[VideoRecord], video_root: str | Path, reader: VideoReader,
                 num_frames: int, frame_positions: str = "truncate"):
        self.records = list(records)
        self.video_root = Path(video_root)
        self.reader = reader
        self.num_frames = num_frames
        self.frame_positions = frame_positions
        counts = [len(r.captions) for r in self.records]
        self.text_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.num_texts = int(sum(counts))

    def __len__(self) -> int:
        return len(self.records)

    def text_video_index(self) -> torch.Tensor:
        """``[num_texts]``: the video index of every caption, in global text order."""
        return torch.cat([torch.full((len(r.captions),), i, dtype=torch.long) for i, r in enumerate(self.records)])

    def read_frames(self, index: int) -> np.ndarray:
        """The evaluation frames of video ``index``: ``uint8 [T, H, W, 3]``."""
        record = self.records[index]
        frames, _ = self.reader.read(
            resolve_video_path(self.video_root, record), lambda n: uniform_indices(n, self.num_frames, self.frame_positions),
            record.start, record.end,
        )
        return frames

    def preview_frames(self, index: int, count: int, size: int) -> np.ndarray:
        """``count`` uniformly spaced frames of video ``index`` at ``size`` px, for pictures."""
        from pig_lightning.data.video.readers import ClipReader

        record = self.records[index]
        frames, _ = ClipReader(size, resize="squash").read(resolve_video_path(self.video_root, record),
                                                           lambda n: uniform_indices(n, count), record.start, record.end)
        return frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return {
            "frames": torch.from_numpy(self.read_frames(index)),
            "captions": list(record.captions),
            "video_index": index,
            "text_offset": int(self.text_offsets[index]),
        }


class EpochAwareSampler(DistributedSampler):
    """A ``DistributedSampler`` whose items are ``(index, epoch)``.

    The Trainer calls ``set_epoch`` on it before every epoch (and, being a
    ``DistributedSampler``, does not replace it under DDP), so datasets can derive their
    per-epoch randomness from the pair without any state shared with workers.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._resume: tuple[int, int] | None = None  # (epoch, items of it already trained on)

    def resume_at(self, epoch: int, items_done: int) -> None:
        """The next pass over ``epoch`` starts after its first ``items_done`` items (this rank's)."""
        self._resume = (epoch, items_done)

    def __iter__(self):
        items = ((int(i), self.epoch) for i in super().__iter__())
        resume = self._resume
        if resume is not None and self.epoch >= resume[0]:  # (the Trainer may iterate once before set_epoch)
            self._resume = None
            if self.epoch == resume[0]:
                return islice(items, resume[1], None)
        return items


class SeededDataLoader(DataLoader):
    """A ``DataLoader`` with a random generator of its own, seeded from ``seed`` (the data seed).

    A ``DataLoader`` draws a base seed for its workers at every new iterator; without a generator it
    draws from the global RNG, so the dropout and token-selection draws of training would depend on
    the number of workers, on whether they persist and on how often evaluation runs. Pickled
    (``ddp_spawn`` sends the trainer to its processes) it carries the seed, not the generator: a
    ``torch.Generator`` travels through shared memory there and could not be rebuilt."""

    def __init__(self, *args: Any, seed: int = 0, generator: torch.Generator | None = None, **kwargs: Any):
        # ``generator`` is accepted and replaced: Lightning rebuilds a loader (e.g. to give it a
        # distributed sampler) from its attributes, the generator among them, and its seed
        super().__init__(*args, generator=torch.Generator().manual_seed(seed), **kwargs)
        self.seed = seed

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "generator": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, generator=torch.Generator().manual_seed(state["seed"]))


class ResumableDataLoader(SeededDataLoader):
    """A training ``DataLoader`` that Lightning checkpoints mid-epoch.

    Lightning saves ``state_dict()`` of the loaders that have one and hands it back on resume.
    Without it, a run resumed from a mid-epoch checkpoint starts the interrupted epoch from its
    first batch again and stops it after the remaining count: the batches already trained on
    are trained twice and as many at the end of the epoch are skipped (measured,
    ``tests/training/test_resume.py``). With it, the epoch continues with the batches it had not
    trained on, as if uninterrupted. ``batches_done`` reports how many batches of the current
    epoch are in the weights (the Trainer's progress counter).
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        done = int(self._batches_done()) if self._batches_done is not None else 0
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, EpochAwareSampler):
            self.sampler.resume_at(int(state["epoch"]), int(state["batches_done"]) * int(self.batch_size))


class VideoTextCollator:
    """Stack frames and tokenise all captions of a batch in one tokenizer call.

    Output: ``frames`` ``uint8 [B, T, H, W, 3]`` (decoded pixels: the model's
    ``on_after_batch_transfer`` normalises them on its device with
    :func:`~pig_lightning.data.video.transforms.clip_normalise`), ``video_index [B]``, ``input_ids``/``attention_mask``
    ``[M, L]``, ``text_video [M]`` (position in the batch of each caption's video) and, for
    evaluation items, ``text_index [M]`` (global caption index).
    """

    def __init__(self, tokenizer, max_text_length: int):
        self.tokenizer = tokenizer
        self.max_text_length = max_text_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        captions = [c for item in items for c in item["captions"]]
        tokens = self.tokenizer(
            captions, padding="max_length", truncation=True, max_length=self.max_text_length, return_tensors="pt"
        )
        batch = {
            "frames": torch.stack([item["frames"] for item in items]),
            "video_index": torch.tensor([item["video_index"] for item in items], dtype=torch.long),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "text_video": torch.tensor(
                [b for b, item in enumerate(items) for _ in item["captions"]], dtype=torch.long
            ),
        }
        if "decode_skips" in items[0]:
            batch["decode_skips"] = [skip for item in items for skip in item["decode_skips"]]
        if "text_offset" in items[0]:
            batch["text_index"] = torch.tensor(
                [item["text_offset"] + k for item in items for k in range(len(item["captions"]))], dtype=torch.long
            )
        return batch
