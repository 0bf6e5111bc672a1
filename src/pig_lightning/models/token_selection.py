"""Informativeness token selection (ITS), METHOD.md §3.

The video-CLS row of the last layer's attention, reduced over heads (max by default),
ranks the patch tokens; the video CLS, proxy and frame-CLS positions are never chosen.
Selection is not differentiable, the gather is. :func:`select_random_tokens` is the ablation
that draws the patch tokens at random instead.
"""

from __future__ import annotations

from typing import Literal

import torch

from pig_lightning.models.proxy_backbone import ProxyOutput


def select_informative_tokens(
    output: ProxyOutput, k: int = 16, head_reduction: Literal["max", "mean"] = "max"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(tokens [B, k, D], positions [B, k])``, sorted by score (descending)."""
    attention = output.global_attention  # [B, heads, 4, N]
    if head_reduction == "max":
        scores = attention.amax(dim=1)[:, 0]
    elif head_reduction == "mean":
        scores = attention.mean(dim=1)[:, 0]
    else:
        raise ValueError(f"head_reduction must be 'max' or 'mean', got {head_reduction!r}")
    return _top_patches(output, scores.detach().clone(), k)


def select_random_tokens(output: ProxyOutput, k: int = 16, generator: torch.Generator | None = None,
                         shared: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The ITS ablation: ``k`` patch tokens drawn uniformly without replacement, per sample
    (``shared``: one draw for the whole batch), in sequence order. Same returns as
    :func:`select_informative_tokens`."""
    b, n = output.tokens.shape[:2]
    device = output.tokens.device
    scores = torch.rand(1 if shared else b, n, generator=generator, device=device).expand(b, n).clone()
    _, positions = _top_patches(output, scores, k)
    positions = positions.sort(dim=1).values
    return _gather(output, positions), positions


def _top_patches(output: ProxyOutput, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best-scoring patch tokens; video CLS, proxy and frame-CLS positions are never chosen."""
    excluded = torch.cat([torch.arange(4, device=scores.device), output.frame_cls_positions()])
    scores[:, excluded] = float("-inf")
    num_patches = scores.shape[1] - len(excluded)
    if not 1 <= k <= num_patches:
        raise ValueError(f"cannot select {k} tokens from {num_patches} patch tokens")
    positions = scores.topk(k, dim=1, sorted=True).indices
    return _gather(output, positions), positions


def _gather(output: ProxyOutput, positions: torch.Tensor) -> torch.Tensor:
    return output.tokens.gather(1, positions[..., None].expand(-1, -1, output.tokens.shape[-1]))
