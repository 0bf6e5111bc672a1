"""Pre-extracted frames as a video source: ``<root>/<video_id>/000001.jpg, 000002.jpg, ...``.

A folder of JPEG (or PNG) files, in file-name order, is read like a video: the same samplers
pick frame indices, and only the sampled files are decoded (by PyAV's image decoders, resized by
the same :class:`~pig_lightning.data.video.decoding.FrameConverter` as video frames, so both sources
give identical pixels for identical frames). Clip start/end need the rate the frames were
extracted at (``fps``).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from pig_lightning.data.video.decoding import FrameConverter, Sampler, VideoDecodeError, sample_indices

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def list_frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())


class FrameFolderReader:
    """Read sampled frames of a frame folder as ``uint8 [T, size, size, 3]``.

    Args:
        size, interpolation, resize: as for :class:`~pig_lightning.data.video.decoding.PyAVVideoReader`.
        fps: the rate the frames were extracted at; needed only for clips with start/end.
    """

    def __init__(self, size: int, interpolation: str = "BICUBIC", resize: str = "squash", fps: float | None = None):
        self.convert = FrameConverter(size, resize, interpolation)
        self.fps = fps

    def read(self, path: str | Path, sampler: Sampler, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        folder = Path(path)
        if not folder.is_dir():
            raise VideoDecodeError(folder, "frame folder not found")
        files = list_frames(folder)
        if start is not None or end is not None:
            if not self.fps:
                raise VideoDecodeError(folder, "a clip start/end in a frame folder needs the extraction rate "
                                               "(data.frame_folder_fps)")
            first = int(round((start or 0.0) * self.fps))
            stop = len(files) if end is None else min(len(files), max(first + 1, int(round(end * self.fps))))
            files = files[first:stop]
        if not files:
            raise VideoDecodeError(folder, f"no frame files ({', '.join(FRAME_SUFFIXES)}) in the clip")
        indices = sample_indices(sampler, len(files), folder)
        decoded: dict[int, np.ndarray] = {}
        for i in indices.tolist():
            if i not in decoded:
                decoded[i] = self._decode(files[i])
        return np.stack([decoded[i] for i in indices.tolist()]), indices

    def _decode(self, file: Path) -> np.ndarray:
        try:
            with av.open(str(file)) as container:
                for frame in container.decode(video=0):
                    return self.convert(frame)
        except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
            raise VideoDecodeError(file, f"{type(exc).__name__}: {exc}") from exc
        raise VideoDecodeError(file, "the image holds no decodable frame")
