"""The pseudo-query generator, METHOD.md §4.

``[BOS, mapper(video tokens)..., EOS]`` plus CLIP text position embeddings go through a
*separate copy* of the CLIP text transformer (causal, initialised from the text tower, not
shared with it) and its final layer norm; the output at the last position is the
pseudo-query. It only ever sees the video: the real query is not an input.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from pig_lightning.models.layers import causal_layer


class PseudoQueryGenerator(nn.Module):
    """Args:
    clip: the HF ``CLIPModel`` whose text tower is copied (its weights are not shared).
    bos_token_id, eos_token_id: ids of ``<|startoftext|>`` / ``<|endoftext|>``.
    mapper: ``"linear"`` (reference) or ``"mlp"`` (Linear-GELU-Linear) from the video
        embedding size to the text width.
    learnable_special_tokens: BOS/EOS embeddings as trainable parameters (reference: fixed).
    project: apply a copy of ``text_projection`` to the output (needed when the text
        width differs from the embedding size, e.g. ViT-L).
    init: ``"text"`` (reference): the layers, position embeddings, final norm (and
        projection) start as copies of the text tower; ``"random"`` (ablation): the same
        modules freshly initialised as HF CLIP initialises a text tower. BOS/EOS are the text
        tower's token embeddings either way.
    """

    def __init__(self, clip: nn.Module, bos_token_id: int, eos_token_id: int,
                 mapper: Literal["linear", "mlp"] = "linear", learnable_special_tokens: bool = False,
                 project: bool = False, init: Literal["text", "random"] = "text"):
        super().__init__()
        text = clip.text_model
        width = clip.config.text_config.hidden_size
        embed_dim = clip.config.projection_dim
        if mapper == "linear":
            self.video_mapper = nn.Linear(embed_dim, width)
        elif mapper == "mlp":
            self.video_mapper = nn.Sequential(nn.Linear(embed_dim, width), nn.GELU(), nn.Linear(width, width))
        else:
            raise ValueError(f"mapper must be 'linear' or 'mlp', got {mapper!r}")
        token_embedding = text.embeddings.token_embedding.weight.detach()
        special = torch.stack([token_embedding[bos_token_id], token_embedding[eos_token_id]]).clone()
        if learnable_special_tokens:
            self.special_tokens = nn.Parameter(special)
        else:
            self.register_buffer("special_tokens", special)
        self.position_embedding = copy.deepcopy(text.embeddings.position_embedding)
        self.layers = copy.deepcopy(text.encoder.layers)
        self.final_layer_norm = copy.deepcopy(text.final_layer_norm)
        self.projection = copy.deepcopy(clip.text_projection) if project else None
        if not project and width != embed_dim:
            raise ValueError(f"the text width ({width}) differs from the embedding size ({embed_dim}): set project=True")
        if init == "random":
            self._initialise_like_clip(clip.config.text_config)
        elif init != "text":
            raise ValueError(f"generator init must be 'text' or 'random', got {init!r}")

    @torch.no_grad()
    def _initialise_like_clip(self, config) -> None:
        """Fresh weights with HF ``CLIPPreTrainedModel._init_weights``' distributions."""
        factor, width = config.initializer_factor, config.hidden_size
        in_std = width**-0.5 * (2 * config.num_hidden_layers) ** -0.5 * factor
        nn.init.normal_(self.position_embedding.weight, std=0.02 * factor)
        for layer in self.layers:
            attn, mlp = layer.self_attn, layer.mlp
            for linear, std in ((attn.q_proj, in_std), (attn.k_proj, in_std), (attn.v_proj, in_std),
                                (attn.out_proj, width**-0.5 * factor), (mlp.fc1, (2 * width) ** -0.5 * factor),
                                (mlp.fc2, in_std)):
                nn.init.normal_(linear.weight, std=std)
                nn.init.zeros_(linear.bias)
        for norm in [self.final_layer_norm, *(n for layer in self.layers for n in (layer.layer_norm1, layer.layer_norm2))]:
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
        if self.projection is not None:
            nn.init.normal_(self.projection.weight, std=width**-0.5 * factor)

    @property
    def max_tokens(self) -> int:
        return self.position_embedding.num_embeddings - 2

    def hidden_states(self, video_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, n, D]`` video tokens -> final-layer states ``[B, n + 2, W]`` (before the final norm)."""
        b, n, _ = video_tokens.shape
        if n > self.max_tokens:
            raise ValueError(f"{n} video tokens + BOS/EOS exceed the {self.max_tokens + 2} text positions")
        mapped = self.video_mapper(video_tokens)
        bos, eos = self.special_tokens.to(mapped.dtype)
        x = torch.cat([bos.expand(b, 1, -1), mapped, eos.expand(b, 1, -1)], dim=1)
        x = x + self.position_embedding.weight[: n + 2]
        for layer in self.layers:
            x = causal_layer(layer, x)
        return x

    def forward(self, video_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, n, D]`` video tokens -> pseudo-query ``[B, D]`` (the last position)."""
        out = self.final_layer_norm(self.hidden_states(video_tokens)[:, -1])
        return self.projection(out) if self.projection is not None else out
