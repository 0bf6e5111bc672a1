"""CLIP with video proxy tokens (CLIP-ViP style), METHOD.md §2.

Token sequence fed to the CLIP vision layers, for ``T`` frames of ``P - 1`` patches::

    [video CLS | 3 proxies | (frame CLS, patches) x T]      (4 + T * P tokens)

The 4 global tokens attend to every token; each frame's tokens attend to the 4 global
tokens and to their own frame only. That block pattern is computed *factorised* (global
rows against all keys; each frame's rows against ``4 + P`` keys), which gives exactly the
masked full attention at a fraction of its cost. Weights are CLIP's, unchanged; the new
parameters are the proxy tokens, the frame-CLS vector (a copy of ``class_embedding``) and
zero-initialised temporal embeddings (linearly interpolated for other frame counts, with
``align_corners=False`` as the release's ``F.interpolate(..., mode="linear")``).

Outputs, after CLIP's ``post_layernorm`` and ``visual_projection`` for *all* tokens:
``tokens [B, 4 + T * P, D]`` and ``global_attention [B, heads, 4, 4 + T * P]``, the last
layer's attention probabilities of the global rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from pig_lightning.models.backbone import CLIPBackbone
from pig_lightning.models.layers import finish_layer, merge_heads, qkv

NUM_GLOBAL = 4  # video CLS + 3 proxies


@dataclass
class ProxyOutput:
    tokens: torch.Tensor  # [B, 4 + T * P, D] projected
    global_attention: torch.Tensor  # [B, heads, 4, 4 + T * P] last layer, probabilities
    num_frames: int
    tokens_per_frame: int  # P = 1 + patches (patches only without frame CLS)
    has_frame_cls: bool = True

    def frame_cls_positions(self) -> torch.Tensor:
        if not self.has_frame_cls:
            raise ValueError("this backbone's frames carry no CLS token (frame_cls: false, CLIP-ViP's own layout); "
                             "PIG's token selection and generator read them: use frame_cls: true")
        return NUM_GLOBAL + torch.arange(self.num_frames, device=self.tokens.device) * self.tokens_per_frame

    def global_and_frame_cls(self) -> torch.Tensor:
        """``[B, 4 + T, D]``: video CLS, proxies and frame CLS tokens, in time order."""
        return torch.cat([self.tokens[:, :NUM_GLOBAL], self.tokens[:, self.frame_cls_positions()]], dim=1)


class VideoProxyBackbone(CLIPBackbone):
    """The CLIP-ViP video backbone; text side and loading as :class:`~pig_lightning.models.backbone.CLIPBackbone`.

    Args:
        num_proxies: proxy tokens besides the video CLS (3 in the reference).
        temporal_frames: length of the learned temporal embedding (12 in the reference);
            other frame counts interpolate it linearly.
        temporal_align_corners: the interpolation's ``align_corners``. ``False`` (the release):
            output frame ``i`` of ``T`` reads table position ``(i + 0.5) * temporal_frames / T - 0.5``,
            clamped to the table. ``True``: position ``i * (temporal_frames - 1) / (T - 1)``, so the
            first and last entries map to the first and last frames (this project's choice
            before it followed the release).
        frame_cls: each frame starts with a CLS token (a learned vector, initialised from
            ``class_embedding``), as in the PIG release's CLIP-ViP. ``False``: frames are patches
            only, as in CLIP-ViP trained with its own code (XPretrain), to evaluate such a
            checkpoint as that model; PIG needs the frame CLS.
        **kwargs: the ``CLIPBackbone`` arguments (``pretrained`` or ``config``, ``tokenizer``, ...).
    """

    def __init__(self, num_proxies: int = 3, temporal_frames: int = 12, temporal_align_corners: bool = False,
                 frame_cls: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.temporal_align_corners = temporal_align_corners
        if num_proxies != NUM_GLOBAL - 1:
            raise ValueError(f"num_proxies must be {NUM_GLOBAL - 1} (the layout of METHOD.md §2), got {num_proxies}")
        width = self.clip.config.vision_config.hidden_size
        vision = self.clip.vision_model
        self.proxy_tokens = nn.Parameter(torch.randn(num_proxies, width))
        self.has_frame_cls = frame_cls
        self.frame_cls = nn.Parameter(vision.embeddings.class_embedding.detach().clone()) if frame_cls else None
        self.temporal_embedding = nn.Parameter(torch.zeros(temporal_frames, width))

    @property
    def num_heads(self) -> int:
        return self.clip.config.vision_config.num_attention_heads

    def temporal(self, num_frames: int) -> torch.Tensor:
        table = self.temporal_embedding
        if num_frames == table.shape[0]:
            return table
        return F.interpolate(table.t()[None], size=num_frames, mode="linear",
                             align_corners=self.temporal_align_corners)[0].t()

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> input tokens ``[B, 4 + T * P, W]`` (before ``pre_layrnorm``)."""
        b, t = frames.shape[:2]
        emb = self.clip.vision_model.embeddings
        pixels = rearrange(frames, "b t c h w -> (b t) c h w").to(emb.patch_embedding.weight.dtype)
        patches = rearrange(emb.patch_embedding(pixels), "(b t) w gh gw -> b t (gh gw) w", b=b)
        position = emb.position_embedding.weight  # [1 + patches, W]
        temporal = self.temporal(t)[None, :, None, :]  # [1, T, 1, W]
        patches = patches + position[1:] + temporal
        if self.has_frame_cls:
            frame_cls = (self.frame_cls + position[0] + temporal).expand(b, t, 1, -1)
            per_frame = torch.cat([frame_cls, patches], dim=2)  # [B, T, P, W]
        else:
            per_frame = patches  # CLIP-ViP's own layout: [B, T, P - 1, W]
        video_cls = emb.class_embedding + position[0]
        globals_ = torch.cat([video_cls[None], self.proxy_tokens + position[0]], dim=0)
        return torch.cat([repeat(globals_, "g w -> b g w", b=b), rearrange(per_frame, "b t p w -> b (t p) w")], dim=1)

    def forward_video(self, frames: torch.Tensor) -> ProxyOutput:
        if frames.ndim != 5:
            raise ValueError(f"expected frames [B, T, 3, H, W], got shape {tuple(frames.shape)}")
        t = frames.shape[1]
        vision = self.clip.vision_model
        x = vision.pre_layrnorm(self.embed(frames))
        tokens_per_frame = (x.shape[1] - NUM_GLOBAL) // t
        layers = vision.encoder.layers
        probs = None
        for i, layer in enumerate(layers):
            x, probs = block_attention_layer(layer, x, t, tokens_per_frame, want_probs=i == len(layers) - 1)
        tokens = self.clip.visual_projection(vision.post_layernorm(x))
        return ProxyOutput(tokens, probs, t, tokens_per_frame, self.has_frame_cls)


def block_attention_layer(layer: nn.Module, x: torch.Tensor, num_frames: int, tokens_per_frame: int,
                          want_probs: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One CLIP layer under the video-proxy block pattern, factorised; ``x`` is ``[B, 4 + T * P, W]``."""
    q, k, v = qkv(layer, layer.layer_norm1(x))  # [B, h, N, d]
    scale = q.shape[-1] ** -0.5
    # global rows: attend to every token; their probabilities are what token selection reads
    logits = (q[:, :, :NUM_GLOBAL] * scale) @ k.transpose(-1, -2)
    probs = logits.softmax(dim=-1)
    out_global = probs @ v  # [B, h, 4, d]
    # frame rows: keys and values are the global tokens plus the frame's own tokens. Every
    # (video, frame) pair is one attention problem: batch and time share the leading dimension,
    # so the call is 4-D and SDPA may use its fused kernels (flash / memory-efficient on GPU,
    # flash on CPU), which never store the [P, 4 + P] score matrices for the backward pass.
    frame = lambda z: rearrange(z[:, :, NUM_GLOBAL:], "b h (t p) d -> (b t) h p d", t=num_frames)  # noqa: E731
    glob = lambda z: repeat(z[:, :, :NUM_GLOBAL], "b h g d -> (b t) h g d", t=num_frames)  # noqa: E731
    keys = torch.cat([glob(k), frame(k)], dim=2)
    values = torch.cat([glob(v), frame(v)], dim=2)
    out_frames = F.scaled_dot_product_attention(frame(q), keys, values)
    out = torch.cat([out_global, rearrange(out_frames, "(b t) h p d -> b h (t p) d", t=num_frames)], dim=2)
    return finish_layer(layer, x, merge_heads(out)), (probs if want_probs else None)


def block_mask(num_frames: int, tokens_per_frame: int, device=None) -> torch.Tensor:
    """The boolean ``[N, N]`` attention pattern (True = may attend), for reference and tests."""
    n = NUM_GLOBAL + num_frames * tokens_per_frame
    frame_of = torch.full((n,), -1, device=device)
    frame_of[NUM_GLOBAL:] = torch.arange(num_frames, device=device).repeat_interleave(tokens_per_frame)
    same_frame = frame_of[:, None] == frame_of[None, :]
    is_global_row = frame_of[:, None] < 0
    is_global_col = frame_of[None, :] < 0
    return is_global_row | is_global_col | same_frame
