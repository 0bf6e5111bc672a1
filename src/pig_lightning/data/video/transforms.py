"""Pixel transforms shared by training and evaluation (no train/test drift by construction).

Frames travel as ``uint8`` (decoded pixels, channels last) from the readers through the
DataLoader (a quarter of float32's bytes between worker processes and to the GPU); they
become model input in one place, :func:`clip_normalise`, on whatever device they are on:
the LightningModule calls it in ``on_after_batch_transfer`` (training, validation, test,
predict), ``pig-lightning index`` after moving a batch to its device, and ``encode_videos``
of :class:`~pig_lightning.module.RetrievalModule` when given uint8 frames.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

# CLIP's normalisation constants (the image processor of every OpenAI CLIP checkpoint).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@functools.lru_cache(maxsize=None)
def _constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's mean and std as ``float32 [3, 1, 1]`` on ``device``, made once per device: building
    them per batch would copy them from the host (a blocking copy on a GPU) at every step."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32, device=device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32, device=device).view(3, 1, 1)
    return mean, std


def clip_normalise(frames: torch.Tensor) -> torch.Tensor:
    """``uint8 [..., H, W, 3]`` (e.g. a batch ``[B, T, H, W, 3]``) to CLIP-normalised
    ``float32 [..., 3, H, W]`` on the same device: the package's one pixel conversion."""
    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim < 3 or frames.shape[-1] != 3:
        shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
        raise ValueError(f"expected uint8 frames [..., H, W, 3], got {shape} {getattr(frames, 'dtype', '')}")
    x = frames.movedim(-1, -3).contiguous().float().div_(255.0)  # channels first while still 1 byte a value
    mean, std = _constants(x.device)
    return x.sub_(mean).div_(std)


def clip_denormalise(frames: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`clip_normalise`: ``float [..., 3, H, W]`` to ``uint8 [..., H, W, 3]``."""
    mean, std = _constants(frames.device)
    pixels = (frames.float() * std + mean).mul_(255).round_().clamp_(0, 255)
    return pixels.to(torch.uint8).movedim(-3, -1)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` to ``size x size`` (antialiased bilinear), for pictures of stored frames."""
    if frames.shape[1:3] == (size, size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def to_clip_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` frames to CLIP-normalised ``float32 [T, 3, H, W]`` (:func:`clip_normalise`)."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {tuple(x.shape)} {x.dtype}")
    return clip_normalise(x)
