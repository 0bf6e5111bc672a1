"""Video decoding with PyAV.

:class:`PyAVVideoReader` opens a file, works out how many frames the clip (the whole file, or
its ``[start, end)`` seconds) holds, asks a sampler for the frame indices and finds clip frame
``j`` as the first frame shown at or after ``clip start + j / fps``. It decodes forward from the
clip start and, when the container indexes its keyframes (mp4, mkv, webm, avi), seeks to the
keyframe before the next sampled frame only when that keyframe lies after the last decoded
frame. So a short clip with one keyframe is decoded once, through, converting only the sampled
frames (MSR-VTT's 10-30 s clips), while a long video (ActivityNet's 2-3 minutes) or a file with
frequent keyframes costs what the sampled frames and the keyframe interval require, not its
length. Without a keyframe index, clips longer than ``seek_threshold`` seconds are read by
seeking to every sampled frame.

Both skip decoding the frames no other frame depends on (non-reference B-frames) while the next
sampled frame is still far ahead, and return the same frames (tested on mp4, avi and webm). The
frame count comes from the container, with a fallback to duration x rate (webm has none); a file
without a rate or timestamps, or whose count was over-stated, is read by counting decoded frames.
A cut-off download (fewer frames decode than its index lists) is refused.

Resize and colour conversion happen in one call of a reused ``VideoReformatter``
(``frame.to_ndarray(format="rgb24")`` builds a new scaler per frame and costs several times
more). Two resize modes: ``squash`` to ``size x size`` (the reference recipe: aspect ratio not
kept) and ``crop``: short side to ``size``, then the centre ``size x size``.

Every failure is raised as :class:`VideoDecodeError` naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

Sampler = Callable[[int], np.ndarray]
RESIZE_MODES = ("squash", "crop")
# Frames a decoder may hold back for reordering (B-frames): non-reference frames are skipped
# only while the next sampled frame is further ahead than this.
_REORDER_FRAMES = 8


class SamplingError(ValueError):
    """The frame sampler failed for a clip (a bug or bad setting, not a bad file)."""


class VideoDecodeError(RuntimeError):
    """A video could not be decoded; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str | None = None):
        if reason is None:  # re-raised from a data-loader worker with the whole message
            super().__init__(str(path))
            self.path, self.reason = "", str(path)
            return
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")

    def __reduce__(self):  # picklable across worker processes
        return type(self), (self.path, self.reason)


class VideoReader(Protocol):
    """What the datasets need from a decoding backend (PyAV files, JPEG folders, ...)."""

    def read(self, path: str | Path, sampler: Sampler, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(frames uint8 [T, size, size, 3], clip frame indices int64 [T])``."""
        ...


def sample_indices(sampler: Sampler, num_frames: int, path: str | Path) -> np.ndarray:
    try:
        return np.asarray(sampler(num_frames), dtype=np.int64)
    except Exception as exc:
        raise SamplingError(f"frame sampling failed for {path} ({num_frames} frames): {exc}") from exc


class FrameConverter:
    """``av.VideoFrame`` -> ``uint8 [size, size, 3]`` RGB with one reused reformatter.

    The scaler runs single-threaded (parallelism comes from data-loader workers) and is rebuilt
    in a forked process: an swscale context that used threads in the parent hangs in a child.
    """

    def __init__(self, size: int, resize: str = "squash", interpolation: str = "BICUBIC"):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.size = size
        self.resize = resize
        self.interpolation = Interpolation[interpolation.upper()]
        self._reformatter: VideoReformatter | None = None
        self._owner_pid = 0

    def __getstate__(self) -> dict:  # reformatters hold C state; workers build their own
        state = dict(self.__dict__)
        state["_reformatter"] = None
        return state

    def scaled_size(self, width: int, height: int) -> tuple[int, int]:
        if self.resize == "squash":
            return self.size, self.size
        scale = self.size / min(width, height)
        return max(self.size, round(width * scale)), max(self.size, round(height * scale))

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self._reformatter is None or self._owner_pid != os.getpid():
            self._reformatter, self._owner_pid = VideoReformatter(), os.getpid()
        width, height = self.scaled_size(frame.width, frame.height)
        out = self._reformatter.reformat(
            frame, width=width, height=height, format="rgb24", interpolation=self.interpolation, threads=1
        ).to_ndarray()
        if (width, height) != (self.size, self.size):
            top, left = (height - self.size) // 2, (width - self.size) // 2
            out = np.ascontiguousarray(out[top:top + self.size, left:left + self.size])
        return out


def check_complete(path: str | Path, decoded: int, declared: int) -> None:
    """A cut-off download (index at the front) decodes without an error, just short of the frames
    its index lists: refuse it instead of sampling from the part that survived."""
    if declared and decoded < declared - max(2, declared // 20):
        raise VideoDecodeError(path, f"only {decoded} of the {declared} frames it declares decode (truncated?)")


def _keyframe_times(stream) -> np.ndarray | None:
    """Sorted keyframe times (seconds) from the container's index, or None without a usable one.

    Index timestamps are decoding times (mp4: earlier than the shown time by the B-frame delay);
    they are shifted so the first keyframe is the stream's first frame. An index with a single
    entry (e.g. a webm file with one cue) says nothing about the rest of the file.
    """
    try:
        entries = stream.index_entries
        if len(entries) < 2:
            return None
        time_base = float(stream.time_base)
        times = np.sort([e.timestamp * time_base for e in entries if e.is_keyframe])
    except (AttributeError, TypeError, ValueError):  # an older PyAV or an odd index
        return None
    if len(times) < 2:
        return None
    return times + max(_stream_origin(stream) - times[0], 0.0)


def _keyframe_before(keyframes: np.ndarray, t: float) -> float:
    i = int(np.searchsorted(keyframes, t + 1e-6, side="right")) - 1
    return float(keyframes[max(i, 0)])


def _stream_frame_count(stream: av.video.stream.VideoStream) -> int:
    """Frame count from the container, falling back to duration x rate (webm has no count)."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    duration = _stream_duration(stream)
    if duration is not None and rate:
        return max(int(round(duration * float(rate))), 0)
    return 0


def _stream_origin(stream) -> float:
    """Time (seconds) of the stream's first frame: clip times are counted from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _stream_duration(stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    container = stream.container
    if container.duration is not None:
        return container.duration / av.time_base
    return None


@dataclasses.dataclass(frozen=True)
class _Clip:
    """Frames ``first .. first + count - 1`` of the stream; frame ``j`` of the clip is shown at
    ``origin + (first + j) / rate`` seconds (``rate`` None: no timing, count frames)."""

    first: int
    count: int
    rate: float | None
    origin: float
    end_time: float | None  # frames shown at or after this time are past the clip's end
    declared: bool = False  # count comes from the container's index (exact), not an estimate

    def time_of(self, j: int | float) -> float:
        return self.origin + (self.first + j) / self.rate

    @property
    def seconds(self) -> float:
        return self.count / self.rate if self.rate else 0.0


def _clip_of(stream, path: Path, start: float | None, end: float | None) -> _Clip:
    total = _stream_frame_count(stream)
    rate_q = stream.average_rate or stream.guessed_rate
    rate = float(rate_q) if rate_q else None
    origin = _stream_origin(stream)
    if start is None and end is None:
        return _Clip(0, total, rate, origin, end_time=None, declared=bool(stream.frames))
    if rate is None:
        raise VideoDecodeError(path, "the container states no frame rate, so clip start/end cannot be located")
    first = int(round((start or 0.0) * rate))
    if not total and end is None:
        return _Clip(first, 0, rate, origin, end_time=None)  # length unknown: the caller counts
    if total and first >= total:
        raise VideoDecodeError(path, f"clip start {start:.3f} s is at or after the video's end ({total / rate:.3f} s)")
    stop = int(round(end * rate)) if end is not None else total
    if total:
        stop = min(stop, total)
    stop = max(stop, first + 1)  # a clip shorter than one frame: its nearest frame
    end_time = origin + (stop - 0.5) / rate if end is not None else None
    return _Clip(first, stop - first, rate, origin, end_time, declared=bool(stream.frames))


class PyAVVideoReader:
    """Decode the sampled frames of a video file (or a ``[start, end)`` clip of it).

    Args:
        size: output frames are ``size x size``.
        interpolation: FFmpeg scaler (reference recipe: bicubic).
        resize: ``squash`` (aspect not kept) or ``crop`` (short side, centre crop).
        seek_threshold: ``None`` never seeks, ``0`` always does. Otherwise, when the container
            indexes its keyframes (mp4, mkv, webm, avi), the reader seeks to the keyframe before a
            sampled frame only when that keyframe lies after the last decoded frame (so it never
            decodes more than decoding through, and much less in long videos or with frequent
            keyframes); without an index, clips longer than this many seconds are read by seeking.
        seek_gap: while seeking, a next frame at most this many seconds ahead is reached by
            decoding forward instead of another seek.

    One instance per process (each data-loader worker gets its own copy) so the reformatter and
    its scaler are reused from clip to clip.
    """

    def __init__(self, size: int, interpolation: str = "BICUBIC", resize: str = "squash",
                 seek_threshold: float | None = 30.0, seek_gap: float = 2.0):
        self.convert = FrameConverter(size, resize, interpolation)
        self.seek_threshold = seek_threshold
        self.seek_gap = seek_gap

    @property
    def size(self) -> int:
        return self.convert.size

    def read(self, path: str | Path, sampler: Sampler, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(frames uint8 [T, H, W, 3], clip frame indices int64 [T])``."""
        path = Path(path)
        if not path.is_file():
            raise VideoDecodeError(path, "file not found")
        try:
            with av.open(str(path)) as container:
                stream = self._video_stream(container, path)
                clip = _clip_of(stream, path, start, end)
                if clip.count > 0:
                    indices = sample_indices(sampler, clip.count, path)
                    if clip.rate:
                        keyframes = None if self.seek_threshold is None else _keyframe_times(stream)
                        seek = self._should_seek(clip, keyframes)
                        frames = self._read_by_time(container, stream, clip, indices, seek, keyframes)
                        if frames is not None:
                            return frames, indices
            # No rate or timestamps, an over-stated frame count (webm estimates) or a failed
            # seek: count the clip's frames by decoding, then sample again from the real count.
            with av.open(str(path)) as container:
                _, count = self._read_through(container, container.streams.video[0], clip, None)
            if count == 0:
                where = "" if start is None and end is None else f" between {start} s and {end} s"
                raise VideoDecodeError(path, f"the video stream holds no decodable frame{where}")
            if clip.declared:
                check_complete(path, count, clip.count)
            clip = dataclasses.replace(clip, count=count)
            indices = sample_indices(sampler, count, path)
            with av.open(str(path)) as container:
                frames, _ = self._read_through(container, container.streams.video[0], clip, indices)
            if frames is None:
                raise VideoDecodeError(path, "frame count changed between two decoding passes")
            return frames, indices
        except (VideoDecodeError, SamplingError):
            raise
        except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
            raise VideoDecodeError(path, f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _video_stream(container, path: Path):
        if not container.streams.video:
            raise VideoDecodeError(path, "the file has no video stream")
        return container.streams.video[0]

    def _read_through(self, container, stream, clip: _Clip,
                      indices: np.ndarray | None) -> tuple[np.ndarray | None, int]:
        """Decode from the clip start, converting only clip frames in ``indices``.

        Returns ``(frames, count)``; ``frames`` is None when the clip ended before the last
        wanted index (``count`` is then the number of frames it really holds) or when
        ``indices`` is None (only count the clip's frames).
        """
        wanted = set() if indices is None else set(indices.tolist())
        last = int(indices.max()) if indices is not None else math.inf
        converted: dict[int, np.ndarray] = {}
        frames = container.decode(stream)
        if clip.first:  # jump near the clip start, then skip to it by timestamp
            container.seek(self._pts(stream, clip.time_of(0)), stream=stream, backward=True)
            frames = self._from_time(container.decode(stream), clip.time_of(-0.5), container.name)
        count = 0
        for j, frame in enumerate(frames):
            if clip.end_time is not None and frame.time is not None and frame.time >= clip.end_time:
                break
            count = j + 1
            if j in wanted:
                converted[j] = self.convert(frame)
            if j >= last:
                break
        if indices is None or len(converted) < len(wanted):
            return None, count
        return np.stack([converted[j] for j in indices.tolist()]), count

    @staticmethod
    def _from_time(frames, earliest: float, name: str):
        for frame in frames:
            if frame.time is None:
                raise VideoDecodeError(name, "frames carry no timestamps, so a clip start cannot be located")
            if frame.time >= earliest:
                yield frame
                break
        yield from frames

    @staticmethod
    def _pts(stream, seconds: float) -> int:
        return int(math.floor(seconds / float(stream.time_base)))

    def _should_seek(self, clip: _Clip, keyframes: np.ndarray | None) -> bool:
        if self.seek_threshold is None or self.seek_threshold <= 0:
            return self.seek_threshold is not None
        # With the keyframe positions known, the seek path never decodes more than decoding
        # through: it seeks only to a keyframe after the last decoded frame.
        return keyframes is not None or clip.seconds > self.seek_threshold

    def _read_by_time(self, container, stream, clip: _Clip, indices: np.ndarray, seek: bool,
                      keyframes: np.ndarray | None = None) -> np.ndarray | None:
        """Find each sampled frame by its time: the first frame shown at or after it.

        ``seek``: jump to the keyframe before each sampled time, unless decoding on reaches it
        as cheaply (that keyframe is not after the last decoded frame, or, without a keyframe
        index, the time is within ``seek_gap``); otherwise decode on from the clip start. Either
        way, frames no other frame depends on (non-reference B-frames) are not decoded while the
        next sampled time is still far ahead. Returns None (the caller then counts frames
        instead) when timestamps are missing, a seek lands after its target or the stream ends
        before a sampled time.
        """
        half, reorder = 0.5 / clip.rate, _REORDER_FRAMES / clip.rate
        time_base = float(stream.time_base)
        codec = stream.codec_context
        next_time = clip.time_of(0)

        def decoded(packets):
            for packet in packets:
                if packet.pts is not None:  # skip non-reference frames well before the next target
                    codec.skip_frame = "NONREF" if packet.pts * time_base < next_time - reorder else "DEFAULT"
                yield from packet.decode()

        converted: dict[int, np.ndarray] = {}
        frames = None
        position = -math.inf  # time of the last decoded frame
        for j in sorted(set(indices.tolist())):
            next_time = clip.time_of(j)
            just_sought = False
            if keyframes is not None:
                far = _keyframe_before(keyframes, next_time) > position and next_time - position > self.seek_gap
            else:
                far = next_time - position > self.seek_gap
            if frames is None or (seek and far):
                if seek or clip.first:
                    start = next_time if seek else clip.time_of(0)
                    container.seek(self._pts(stream, start), stream=stream, backward=True)
                    just_sought = True
                frames = decoded(container.demux(stream))
            for frame in frames:
                if frame.time is None:
                    return None
                if just_sought and frame.time > next_time + half:
                    return None  # landed after the target (no usable index)
                just_sought = False
                position = frame.time
                if frame.time >= next_time - half:
                    converted[j] = self.convert(frame)
                    break
            else:
                return None
        return np.stack([converted[j] for j in indices.tolist()])
