"""Towers: how a method turns frames and captions into embeddings and scores.

Every method is a tower with an explicit offline/online split:

* ``encode_videos(frames) -> [N, D]``: offline, storable (two-tower and hybrid towers);
* ``encode_texts(input_ids, attention_mask) -> [M, D]``: online, one per query;
* ``score(text_emb, video_emb) -> [M, N]``: online.

Towers take a ``backbone`` and ``num_frames`` (the CLI links the latter, and the backbone's
tokenizer / image size / text length, from the data module).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from pig_lightning.models.backbone import FrameCLIPBackbone


class Tower(nn.Module, ABC):
    """Base class of every retrieval method (see the module docstring)."""

    #: "two-tower", "hybrid" or "single-tower"
    kind: str = ""

    def __init__(self, backbone: nn.Module, num_frames: int):
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.backbone = backbone
        self.num_frames = num_frames

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.backbone.logit_scale

    @abstractmethod
    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        """``float [B, T, 3, H, W]`` -> video embeddings."""

    @abstractmethod
    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[M, L]`` token ids and mask -> text embeddings ``[M, D]``."""

    @abstractmethod
    def score(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        """Similarities ``[M, N]`` (before the logit scale)."""


class DotProductTower(Tower):
    """A tower whose video and text embeddings are L2-normalised vectors scored by a dot product."""

    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.encode_text(input_ids, attention_mask), dim=-1)

    def score(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        return text_emb @ video_emb.transpose(0, 1)


class MeanPoolingTower(DotProductTower):
    """CLIP4Clip "meanP": normalised frame embeddings averaged over time, then normalised."""

    kind = "two-tower"

    def __init__(self, backbone: FrameCLIPBackbone, num_frames: int = 12):
        super().__init__(backbone, num_frames)

    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        per_frame = F.normalize(self.backbone.encode_frames(frames), dim=-1)
        return F.normalize(per_frame.mean(dim=1), dim=-1)
