"""One entry point for every video source: files (PyAV) and frame folders, plus ``load_frames``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pig_lightning.data.video.decoding import PyAVVideoReader, Sampler
from pig_lightning.data.video.frame_folders import FrameFolderReader
from pig_lightning.data.video.sampling import make_sampler


class ClipReader:
    """Reads a path as a video file, or as a frame folder when it is a directory.

    Args:
        size: output frames are ``size x size``.
        resize: ``squash`` (reference recipe) or ``crop`` (short side to ``size``, centre crop).
        interpolation: FFmpeg scaler name.
        seek_threshold: clips longer than this (seconds) are read by seeking (see
            :class:`~pig_lightning.data.video.decoding.PyAVVideoReader`).
        frame_folder_fps: extraction rate of frame folders (for clip start/end only).
    """

    def __init__(self, size: int, resize: str = "squash", interpolation: str = "BICUBIC",
                 seek_threshold: float | None = 30.0, frame_folder_fps: float | None = None):
        self.videos = PyAVVideoReader(size, interpolation, resize, seek_threshold=seek_threshold)
        self.folders = FrameFolderReader(size, interpolation, resize, fps=frame_folder_fps)

    def read(self, path: str | Path, sampler: Sampler, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        reader = self.folders if Path(path).is_dir() else self.videos
        return reader.read(path, sampler, start, end)


def load_frames(path: str | Path, num_frames: int, sampling: str = "uniform", size: int = 224,
                start: float | None = None, end: float | None = None, resize: str = "squash",
                seed: int | None = None, interpolation: str = "BICUBIC") -> torch.Tensor:
    """Decode ``num_frames`` frames of a video file or frame folder: ``uint8 [T, size, size, 3]``.

    ``sampling``: ``uniform`` (evaluation), ``jittered`` (reference training recipe) or
    ``segment`` (TSN); the random ones draw from ``numpy.random.default_rng(seed)``.
    ``start``/``end``: seconds, to read a clip of a longer video. Raises
    :class:`~pig_lightning.data.video.decoding.VideoDecodeError` naming the file when it cannot be read.
    """
    rng = None if sampling == "uniform" else np.random.default_rng(seed)
    reader = ClipReader(size, resize=resize, interpolation=interpolation)
    frames, _ = reader.read(path, make_sampler(sampling, num_frames, rng), start, end)
    return torch.from_numpy(frames)
