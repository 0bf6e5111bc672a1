"""Video decoding with PyAV.

The reader opens a file, reads its frame count, asks a sampler for the frame indices,
decodes the stream once and converts only the sampled frames to RGB, resizing in the
same call with one reused ``VideoReformatter`` (building a new scaler per frame, as
``frame.to_ndarray(format="rgb24")`` does, costs several times more).

Every failure is raised as :class:`VideoDecodeError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

Sampler = Callable[[int], np.ndarray]


class SamplingError(ValueError):
    """The frame sampler failed for a clip (a bug or bad setting, not a bad file)."""


def _sample(sampler: Sampler, num_frames: int, path: Path) -> np.ndarray:
    try:
        return np.asarray(sampler(num_frames), dtype=np.int64)
    except Exception as exc:
        raise SamplingError(f"frame sampling failed for {path} ({num_frames} frames): {exc}") from exc


class VideoDecodeError(RuntimeError):
    """A video could not be decoded; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")


def _stream_frame_count(stream: av.video.stream.VideoStream) -> int:
    """Frame count from the container, falling back to duration x rate (webm has no count)."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if stream.duration is not None and stream.time_base is not None and rate:
        return max(int(round(float(stream.duration * stream.time_base) * float(rate))), 0)
    container = stream.container
    if container.duration is not None and rate:
        return max(int(round(container.duration / av.time_base * float(rate))), 0)
    return 0


class PyAVVideoReader:
    """Decode sampled frames of a video file to ``uint8 [T, size, size, 3]`` (squash resize).

    One instance per process (each data-loader worker gets its own copy) so the
    reformatter and its scaler are reused from clip to clip.
    """

    def __init__(self, size: int, interpolation: str = "BICUBIC"):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.interpolation = Interpolation[interpolation.upper()]
        self._reformatter: VideoReformatter | None = None

    def __getstate__(self) -> dict:  # reformatters hold C state; workers build their own
        state = dict(self.__dict__)
        state["_reformatter"] = None
        return state

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        out = self._reformatter.reformat(
            frame, width=self.size, height=self.size, format="rgb24", interpolation=self.interpolation
        )
        return out.to_ndarray()

    def read(self, path: str | Path, sampler: Sampler) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(frames uint8 [T, H, W, 3], indices int64 [T])`` for the sampled indices."""
        path = Path(path)
        if not path.is_file():
            raise VideoDecodeError(path, "file not found")
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoDecodeError(path, "the file has no video stream")
                stream = container.streams.video[0]
                expected = _stream_frame_count(stream)
                if expected > 0:
                    indices = _sample(sampler, expected, path)
                    frames, decoded = self._decode_selected(container, stream, indices)
                    if frames is not None:
                        return frames, indices
                    # The container over-stated its frame count: sample again from the real one.
                else:
                    decoded = None
            if decoded is None:
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    decoded = sum(1 for _ in container.decode(stream))
            if decoded == 0:
                raise VideoDecodeError(path, "the video stream holds no decodable frame")
            indices = _sample(sampler, decoded, path)
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frames, _ = self._decode_selected(container, stream, indices)
            if frames is None:
                raise VideoDecodeError(path, "frame count changed between two decoding passes")
            return frames, indices
        except (VideoDecodeError, SamplingError):
            raise
        except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
            raise VideoDecodeError(path, f"{type(exc).__name__}: {exc}") from exc

    def _decode_selected(self, container, stream, indices: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Decode from the start, converting only frames in ``indices``.

        Returns ``(frames, count)``; ``frames`` is None when the stream ended before the last
        wanted index, and ``count`` is then the number of frames it really holds.
        """
        wanted = set(indices.tolist())
        last = int(indices.max())
        converted: dict[int, np.ndarray] = {}
        count = 0
        for i, frame in enumerate(container.decode(stream)):
            count = i + 1
            if i in wanted:
                converted[i] = self._to_rgb(frame)
            if i >= last:
                break
        if len(converted) < len(wanted):
            return None, count
        return np.stack([converted[i] for i in indices.tolist()]), count
