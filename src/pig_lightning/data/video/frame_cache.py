"""Decoded clips kept in memory, so that a small set of short videos is decoded once per process.

On small sets of short clips (the synthetic sets: 40 frames of 64 x 64 each) decoding, not the
model, is most of a CPU training step: one 1,200-video epoch of the quality benchmark spends
~14 s of its ~25 s waiting for the loader. :class:`FrameCache` wraps a reader: the first read of a
clip decodes *all* its frames at the output size and keeps them while they fit in the budget;
every later read of that clip samples from memory. The sampler sees the same frame count and the
frames are those the wrapped reader converts, so a run gives the same batches, and the same
results, with the cache as without it (tested). Clips that no longer fit are decoded at every read,
as without a cache, and the first of them is logged.

Each process that reads holds its own cache: a data-loader worker (``num_workers`` > 0; workers
are persistent, so the cache lasts the run) or the main process. With N workers the memory is up to
N x the budget. A full clip costs ``frames x size x size x 3`` bytes: at ``image_size: 32``, 40
frames are 120 KiB, so the benchmark's 1,200 training videos take 141 MiB. Meant for data sets that
fit; long videos (ActivityNet) would only fill the budget with the first few.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pig_lightning.data.video.decoding import Sampler, SamplingError, VideoReader, sample_indices

log = logging.getLogger(__name__)

MIB = 2**20


class FrameCache:
    """A :class:`~pig_lightning.data.video.decoding.VideoReader` that keeps whole decoded clips of
    ``reader`` in memory, up to ``max_mib`` MiB in each process."""

    def __init__(self, reader: VideoReader, max_mib: float):
        if not max_mib > 0:
            raise ValueError(f"a frame cache needs a positive size in MiB, got {max_mib}")
        self.reader = reader
        self.max_bytes = int(max_mib * MIB)
        self._clips: dict[tuple[str, float | None, float | None], np.ndarray] = {}
        self._bytes = 0
        self._full = False

    def __getstate__(self) -> dict:  # a worker starts empty: never ship a parent's decoded clips
        state = self.__dict__.copy()
        state.update(_clips={}, _bytes=0, _full=False)
        return state

    @property
    def size(self) -> int:
        return self.reader.size

    @property
    def cached_clips(self) -> int:
        return len(self._clips)

    @property
    def cached_mib(self) -> float:
        return self._bytes / MIB

    def read(self, path: str | Path, sampler: Sampler, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(frames uint8 [T, H, W, 3], clip frame indices int64 [T])``, as the wrapped reader returns them."""
        key = (str(path), start, end)
        clip = self._clips.get(key)
        if clip is None:
            if self._full:
                return self.reader.read(path, sampler, start, end)
            clip, _ = self.reader.read(path, np.arange, start, end)  # every frame of the clip
            if self._bytes + clip.nbytes > self.max_bytes:
                self._full = True
                log.info("frame cache full in process %d: %d clips (%.0f MiB) kept, %s and later clips are decoded "
                         "at every read (data.source.cache_frames_mib=%g)", os.getpid(), len(self._clips),
                         self.cached_mib, path, self.max_bytes / MIB)
            else:
                self._clips[key] = clip
                self._bytes += clip.nbytes
        indices = sample_indices(sampler, len(clip), path)
        if indices.size and (indices.min() < 0 or indices.max() >= len(clip)):
            raise SamplingError(f"frame sampling for {path} asked for frames {indices.tolist()} of {len(clip)}")
        return clip[indices], indices
