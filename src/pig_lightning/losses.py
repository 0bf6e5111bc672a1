"""Training losses, always computed in fp32 (also under bf16/fp16 autocast)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_infonce(
    text_emb: torch.Tensor, video_emb: torch.Tensor, logit_scale: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over matching rows: ``CE(logits) + CE(logits^T)``.

    ``text_emb [B, D]`` and ``video_emb [B, D]`` are L2-normalised, row i of each is a pair;
    ``logit_scale`` is on a log scale (``exp`` is applied here). ``reduction="sum"`` adds the
    two directions (the reference recipe); ``"mean"`` averages them.
    """
    if text_emb.shape != video_emb.shape:
        raise ValueError(f"text and video embeddings differ in shape: {tuple(text_emb.shape)} vs {tuple(video_emb.shape)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    with torch.autocast(device_type=text_emb.device.type, enabled=False):
        logits = logit_scale.float().exp() * text_emb.float() @ video_emb.float().t()
        labels = torch.arange(logits.shape[0], device=logits.device)
        loss = F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)
    return loss if reduction == "sum" else loss / 2
