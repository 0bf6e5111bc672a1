"""HF CLIP backbones.

:class:`CLIPBackbone` loads and checks the CLIP model and encodes text;
:class:`FrameCLIPBackbone` is the CLIP4Clip shape: every frame goes through the unchanged
CLIP image tower on its own. Its outputs are *projected* (``visual_projection`` /
``text_projection``) but not normalised; towers decide how to pool and normalise.

Every backbone takes ``tokenizer``, ``image_size`` and ``max_text_length``: the CLI links
them from the data module, so model and data cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from torch import nn

from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer


class CLIPBackbone(nn.Module):
    """An HF ``CLIPModel`` loaded and checked against the data settings; the text tower.

    Subclasses add the video side (:class:`FrameCLIPBackbone`, the video-proxy backbone).

    Args:
        pretrained: hub id (``openai/clip-vit-base-patch32``) or a ``save_pretrained`` folder.
        config: instead of ``pretrained``, a ``CLIPConfig`` JSON file or dict: random weights.
            To switch a config that sets ``config`` to ``pretrained`` on the command line, pass
            both ``--model.tower.init_args.backbone.init_args.config null`` and ``...pretrained DIR``.
        tokenizer: tokenizer hub id or folder (linked from the data module).
        image_size: frame side in pixels (linked); must equal the vision config's.
        max_text_length: caption length in tokens (linked); at most the text positions.
        logit_scale_init: re-initialise CLIP's ``logit_scale`` to this value (log scale;
            4.6052 = ln 100, the reference recipe); ``None`` keeps the loaded value.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        config: str | dict[str, Any] | None = None,
        tokenizer: str = "openai/clip-vit-base-patch32",
        image_size: int = 224,
        max_text_length: int = 32,
        logit_scale_init: float | None = math.log(100.0),
    ):
        super().__init__()
        pretrained, config = _unset_if_none_string(pretrained), _unset_if_none_string(config)
        if pretrained is not None and config is not None:
            raise ValueError(
                f"the backbone has both `pretrained` ({pretrained!r}) and `config` set: give one. To switch a config "
                "that sets `config` to pretrained weights on the command line, pass both "
                f"--model.tower.init_args.backbone.init_args.config null --model.tower.init_args.backbone.init_args.pretrained {pretrained}"
            )
        tok = load_tokenizer(tokenizer)
        # from_pretrained returns eval mode, and Lightning keeps submodule modes during fit
        self.clip = load_clip_model(pretrained=pretrained, config=config, tokenizer=tok).train()
        vision_size = self.clip.config.vision_config.image_size
        if image_size != vision_size:
            raise ValueError(
                f"the data's image_size ({image_size}) differs from the CLIP vision config's image_size "
                f"({vision_size}); set data.image_size to {vision_size}"
            )
        positions = self.clip.config.text_config.max_position_embeddings
        if max_text_length > positions:
            raise ValueError(
                f"max_text_length ({max_text_length}) exceeds the CLIP text tower's {positions} positions"
            )
        if logit_scale_init is not None:
            with torch.no_grad():
                self.clip.logit_scale.fill_(logit_scale_init)
        self.image_size = image_size
        self.max_text_length = max_text_length
        self.tokenizer_source = tokenizer
        self.model_source = pretrained if pretrained is not None else "random init from a CLIPConfig"
        self.bos_token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.eos_token_id = tok.eos_token_id

    @property
    def embed_dim(self) -> int:
        return self.clip.config.projection_dim

    @property
    def logit_scale(self) -> nn.Parameter:
        """CLIP's learnable temperature, on a log scale."""
        return self.clip.logit_scale

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids ``[M, L]`` -> projected text embeddings ``[M, D]`` (EOT token)."""
        mask = attention_mask if attention_mask is None else causal_padding_mask(attention_mask)
        pooled = self.clip.text_model(input_ids=input_ids, attention_mask=mask).pooler_output
        return self.clip.text_projection(pooled)


def causal_padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """The text encoder's ``[M, 1, L, L]`` boolean attention mask (True: attend), made on the
    device: each token sees the tokens before it that are not padding, and itself.

    transformers builds the same mask from ``[M, L]``, but first reads on the host whether the
    batch has any padding (to choose a faster path), which waits for the device at every batch;
    given a ready 4-D mask it uses it as it is. A padding token seeing itself keeps its softmax
    finite when the padding comes first; no other token sees it, so nothing changes for them."""
    length = attention_mask.shape[-1]
    keys = attention_mask.bool()[:, None, None, :]
    causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
    itself = torch.eye(length, dtype=torch.bool, device=attention_mask.device)
    return (causal & keys) | itself


def _unset_if_none_string(value: Any) -> Any:
    """``"None"`` read as unset. jsonargparse (4.53) YAML-loads a command-line value at each
    class level it passes through and formats it back as ``--key={value}`` for the next one, so
    ``--model.tower.init_args.backbone.init_args.config null`` (two class levels deep) arrives
    as the string ``"None"``, and a config saved by that run holds ``config: None``."""
    return None if value == "None" else value


class FrameCLIPBackbone(CLIPBackbone):
    """CLIP4Clip shape: the unchanged CLIP image tower applied to every frame on its own."""

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> projected frame embeddings ``[B, T, D]``."""
        if frames.ndim != 5:
            raise ValueError(f"expected frames [B, T, 3, H, W], got shape {tuple(frames.shape)}")
        b = frames.shape[0]
        pixels = rearrange(frames, "b t c h w -> (b t) c h w")
        pooled = self.clip.vision_model(pixel_values=pixels).pooler_output
        return rearrange(self.clip.visual_projection(pooled), "(b t) d -> b t d", b=b)
