"""Training losses, always computed in fp32 (also under bf16/fp16 autocast)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows ``[world * B, ...]`` (differentiable) and this rank's first row index.

    The backward of the gather sums every rank's gradient for this rank's rows, so with
    DDP's gradient averaging the update equals one process on the whole global batch.
    Batches must have the same size on every rank (the training loader drops the last one).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    parts = dist_fn.all_gather(x.contiguous())
    return torch.cat(parts), dist.get_rank() * x.shape[0]


def dot_product(text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
    return text_emb @ video_emb.t()


def symmetric_infonce(
    text_emb: torch.Tensor,
    video_emb: torch.Tensor,
    logit_scale: torch.Tensor,
    reduction: str = "sum",
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = dot_product,
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over matching rows: ``CE(logits) + CE(logits^T)``.

    ``text_emb [B, D]`` and ``video_emb [B, D]`` are L2-normalised, row i of each is a pair;
    ``logit_scale`` is on a log scale (``exp`` is applied here). ``reduction="sum"`` adds the
    two directions (the reference recipe); ``"mean"`` averages them.

    Under torch.distributed the negatives are the *global* batch, in the local-loss form:
    this rank's texts against all videos and this rank's videos against all texts.
    ``score(texts, videos) -> [M, N]`` is the tower's similarity (a dot product by default;
    a single tower passes its pairwise scoring, and ``video_emb`` may then be token sets).
    """
    if text_emb.shape[0] != video_emb.shape[0]:
        raise ValueError(f"{text_emb.shape[0]} texts but {video_emb.shape[0]} videos: rows must be pairs")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    with torch.autocast(device_type=text_emb.device.type, enabled=False):
        text, video = text_emb.float(), video_emb.float()
        all_text, offset = gather_with_grad(text)
        all_video, _ = gather_with_grad(video)
        scale = logit_scale.float().exp()
        labels = offset + torch.arange(text.shape[0], device=text.device)
        text_rows = score(text, all_video)  # [B, world * B]
        video_rows = score(all_text, video).t()  # [B, world * B]
        loss = F.cross_entropy(scale * text_rows, labels) + F.cross_entropy(scale * video_rows, labels)
    return loss if reduction == "sum" else loss / 2
