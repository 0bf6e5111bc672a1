"""Fine-grained interaction: X-Pool cross-attention, METHOD.md §5.

One query attends to a set of video tokens (one head)::

    q, V = LN1(query), LN1(tokens)                 # one shared LayerNorm
    a = softmax(Wk V . Wq q / sqrt(D))
    o = LN2(Wo sum(a * Wv V))
    out = LN3(o + Dropout(Wlin o))

All projections start as identity with zero bias. PIG calls it with the pseudo-query (one
per video: its output is the stored video vector); X-Pool calls it with each real query.
"""

from __future__ import annotations

import torch
from torch import nn


def _identity_linear(dim: int) -> nn.Linear:
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    return layer


class CrossAttentionPooling(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.dim = dim
        self.norm_in = nn.LayerNorm(dim)
        self.q_proj, self.k_proj, self.v_proj = _identity_linear(dim), _identity_linear(dim), _identity_linear(dim)
        self.out_proj = _identity_linear(dim)
        self.norm_out = nn.LayerNorm(dim)
        self.linear = _identity_linear(dim)
        self.dropout = nn.Dropout(dropout)
        self.norm_final = nn.LayerNorm(dim)

    def project_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``tokens [..., n, D]``: they do not depend on the query, so a
        caller scoring many queries computes them once."""
        normed = self.norm_in(tokens)
        return self.k_proj(normed), self.v_proj(normed)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Per sample: ``query [B, D]`` over ``tokens [B, n, D]`` -> ``[B, D]``.

        Broadcasting pairs: ``query [M, 1, D]`` with ``tokens [1, N, n, D]`` -> ``[M, N, D]``.
        """
        return self.attend(query, *self.project_tokens(tokens))

    def weights(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The attention ``a`` of ``query`` over the tokens whose ``keys`` are given, ``[..., n]``
        (what :meth:`attend` pools with; ``pig-lightning explain`` shows it)."""
        q = self.q_proj(self.norm_in(query))
        return ((keys @ q.unsqueeze(-1)).squeeze(-1) / self.dim**0.5).softmax(dim=-1)

    def attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with keys and values from :meth:`project_tokens`."""
        attn = self.weights(query, keys)  # [..., n]
        pooled = (attn.unsqueeze(-1) * values).sum(dim=-2)
        o = self.norm_out(self.out_proj(pooled))
        return self.norm_final(o + self.dropout(self.linear(o)))
