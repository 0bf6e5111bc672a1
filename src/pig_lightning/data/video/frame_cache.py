"""Decoded clips kept in memory, so that a small set of short videos is decoded once per process.

On small sets of short clips (the synthetic sets: 40 frames of 64 x 64 each) decoding, not the
model, is most of a CPU training step: one 1,200-video epoch of the quality benchmark spent ~14 s
of its ~25 s waiting for the loader (profiler, 2 threads). :class:`FrameCache` wraps a reader: the
first read of a clip decodes *all* its frames at the output size and keeps them while they fit in
the budget; every later read of that clip samples from memory. The sampler sees the same frame count and the
frames are those the wrapped reader converts, so a run gives the same batches, and the same
results, with the cache as without it (tested).

That holds where frame ``j`` of the full decode is the frame the reader finds for index ``j`` in
any sample: frame folders, and files with one timestamp every ``1 / rate`` seconds whose container
states its frame count. A file with irregular timestamps (variable frame rate, gaps) or no stated
count, a clip that fails to decode in full (a broken frame that no sample may touch), and a clip
that does not fit in what is left of the budget are read by the wrapped reader at every read, as
without a cache; the first clip that does not fit is logged.

Each reader holds its own cache in each process that reads: a data-loader worker (``num_workers``
> 0; workers are persistent, so the cache lasts the run) or the main process, and each split
(train, val, test) has its own reader. A full clip costs ``frames x size x size x 3`` bytes: at
``image_size: 32``, 40 frames are 120 KiB, so the benchmark's 1,200 training videos take 141 MiB.
Meant for data sets that fit; long videos (ActivityNet) would only fill the budget with the first few.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np

from pig_lightning.data.video.decoding import Sampler, SamplingError, VideoDecodeError, VideoReader, sample_indices

log = logging.getLogger(__name__)

MIB = 2**20


def regular_timing(path: str | Path) -> bool:
    """Whether the reader's frame ``j`` of ``path`` is its ``j``-th decoded frame for every sample:
    a frame folder, or a file that states its frame count and shows one frame every ``1 / rate``
    seconds (read from the packets' timestamps, without decoding). Anything else, or a file that
    cannot be read: ``False``."""
    if Path(path).is_dir():
        return True
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate or not stream.frames or stream.time_base is None:
                return False
            times = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None)
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        return False
    if len(times) != stream.frames:
        return False
    expected = times[0] + np.arange(len(times)) / float(rate)
    return bool(np.all(np.abs(np.asarray(times) - expected) < 0.5 / float(rate)))


class FrameCache:
    """A :class:`~pig_lightning.data.video.decoding.VideoReader` that keeps whole decoded clips of
    ``reader`` in memory, up to ``max_mib`` MiB in each process."""

    def __init__(self, reader: VideoReader, max_mib: float):
        if not max_mib > 0:
            raise ValueError(f"a frame cache needs a positive size in MiB, got {max_mib}")
        self.reader = reader
        self.max_bytes = int(max_mib * MIB)
        self._clips: dict[tuple[str, float | None, float | None], np.ndarray] = {}
        self._direct: set[tuple[str, float | None, float | None]] = set()  # clips read by the reader every time
        self._bytes = 0
        self._said_full = False

    def __getstate__(self) -> dict:  # a worker starts empty: never ship a parent's decoded clips
        state = self.__dict__.copy()
        state.update(_clips={}, _direct=set(), _bytes=0, _said_full=False)
        return state

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
        if clip is None and key not in self._direct:
            clip = self._decode_whole(key, path, start, end)
        if clip is None:
            return self.reader.read(path, sampler, start, end)
        indices = sample_indices(sampler, len(clip), path)
        if indices.size and (indices.min() < 0 or indices.max() >= len(clip)):
            raise SamplingError(f"frame sampling for {path} asked for frames {indices.tolist()} of {len(clip)}")
        return clip[indices], indices

    def _decode_whole(self, key, path: str | Path, start: float | None, end: float | None) -> np.ndarray | None:
        """Every frame of the clip, kept when it fits (otherwise used for this read only); ``None``
        when its timing is irregular or it does not decode in full. A clip not kept is read directly
        from then on."""
        if not regular_timing(path):
            self._direct.add(key)
            return None
        try:
            clip, _ = self.reader.read(path, np.arange, start, end)
        except VideoDecodeError:  # maybe only frames no sample touches: the reader decides, read by read
            self._direct.add(key)
            return None
        if self._bytes + clip.nbytes > self.max_bytes:
            self._direct.add(key)
            if not self._said_full:
                self._said_full = True
                log.info("frame cache full in process %d: %d clips (%.0f MiB) kept; %s and any later clip that does "
                         "not fit are decoded at every read (data.source.cache_frames_mib=%g)", os.getpid(),
                         len(self._clips), self.cached_mib, path, self.max_bytes / MIB)
            return clip  # decoded already: this read samples from it
        self._clips[key] = clip
        self._bytes += clip.nbytes
        return clip
