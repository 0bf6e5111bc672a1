"""Running HF CLIP encoder layers with our own attention patterns.

The video-proxy backbone needs a block attention pattern (and the attention probabilities
of a few rows) and the pseudo-query generator needs a causal text stack. Both reuse the
*weights* of HF ``CLIPEncoderLayer`` modules unchanged (``layer_norm1``, ``self_attn``
q/k/v/out projections, ``layer_norm2``, ``mlp``) and compute attention here, so the result
does not depend on the transformers version's attention plumbing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[..., N, W]`` -> ``[..., heads, N, W / heads]``."""
    return rearrange(x, "... n (h d) -> ... h n d", h=num_heads)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "... h n d -> ... n (h d)")


def qkv(layer: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer-normed hidden states -> per-head queries, keys and values ``[..., heads, N, d]``."""
    attn = layer.self_attn
    h = attn.num_heads
    return split_heads(attn.q_proj(hidden), h), split_heads(attn.k_proj(hidden), h), split_heads(attn.v_proj(hidden), h)


def finish_layer(layer: nn.Module, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    """Residual + output projection, then the MLP block of a pre-norm CLIP layer."""
    x = x + layer.self_attn.out_proj(attended)
    return x + layer.mlp(layer.layer_norm2(x))


def causal_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One CLIP text layer with a causal mask: ``[B, N, W]`` -> ``[B, N, W]``."""
    q, k, v = qkv(layer, layer.layer_norm1(x))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return finish_layer(layer, x, merge_heads(out))


def full_layer(layer: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """One CLIP layer with full attention, optionally under a boolean ``[N, N]`` mask (True = may attend)."""
    q, k, v = qkv(layer, layer.layer_norm1(x))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return finish_layer(layer, x, merge_heads(out))
