"""Pixel transforms shared by training and evaluation (no train/test drift by construction)."""

from __future__ import annotations

import numpy as np
import torch

# CLIP's normalisation constants (the image processor of every OpenAI CLIP checkpoint).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_clip_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` frames to CLIP-normalised ``float32 [T, 3, H, W]``."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {tuple(x.shape)} {x.dtype}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)
