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
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pig_lightning.models.backbone import FrameCLIPBackbone
from pig_lightning.models.fusion import CrossAttentionPooling
from pig_lightning.models.generator import PseudoQueryGenerator
from pig_lightning.models.proxy_backbone import ProxyOutput, VideoProxyBackbone
from pig_lightning.models.token_selection import select_informative_tokens, select_random_tokens


@dataclass
class TrainingOutputs:
    """What a training step needs from a tower: paired embeddings and extra loss terms."""

    text_emb: torch.Tensor  # [B, D], normalised
    video_emb: torch.Tensor  # [B, D], normalised (single towers: what encode_videos returns)
    losses: dict[str, torch.Tensor] = field(default_factory=dict)  # weighted, added to the contrastive loss


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

    def training_outputs(self, frames: torch.Tensor, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor) -> TrainingOutputs:
        return TrainingOutputs(self.encode_texts(input_ids, attention_mask), self.encode_videos(frames))

    def evaluation_outputs(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``encode_videos(frames)`` and named per-video vectors for diagnostics
        (:mod:`pig_lightning.evaluation.diagnostics`); none by default."""
        return self.encode_videos(frames), {}

    def initialise_missing(self, missing: set[str]) -> set[str]:
        """Called after loading weights (``model.init_checkpoint``) that lacked ``missing``
        (names relative to the tower). A tower rebuilds the parts it can derive from the loaded
        weights and returns the names still missing, which are an error. Default: none."""
        return missing


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


class VideoCLSTower(DotProductTower):
    """CLIP-ViP two-tower: the video CLS token of the video-proxy backbone."""

    kind = "two-tower"

    def __init__(self, backbone: VideoProxyBackbone, num_frames: int = 12):
        super().__init__(backbone, num_frames)

    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.forward_video(frames).tokens[:, 0], dim=-1)


class PIGTower(DotProductTower):
    """PIG, the hybrid tower (METHOD.md §2-6).

    Offline, from the frames alone: video-proxy backbone -> informative token selection ->
    pseudo-query generator -> X-Pool cross-attention of the pseudo-query over
    ``[video CLS, proxies, frame CLS]`` -> **one stored vector per video**. Online: the text
    tower and a dot product, exactly like a two-tower model. ``encode_videos`` takes frames
    only, so the stored vector cannot depend on a query.

    Args:
        backbone: the video-proxy CLIP backbone.
        num_frames: frames per video (linked from the data).
        num_selected: patch tokens chosen by ITS (16).
        head_reduction: ITS reduction over heads, ``"max"`` (reference) or ``"mean"``.
        mapper, learnable_special_tokens, generator_projection: generator options, see
            :class:`~pig_lightning.models.generator.PseudoQueryGenerator`.
        fusion_dropout: dropout in the fusion's residual branch (0.1).
        recon_weight: weight of the reconstruction loss ``2 - 2 cos(t_p, t)`` (1.0); at 0
            the loss is not computed (no ``recon`` term).
        recon_detach_text: stop the reconstruction gradient at the text embedding ``t``
            (reference: False, ``t`` is trained by both losses). From random weights the
            text tower and generator can satisfy the reconstruction loss by collapsing
            together; detaching ``t`` removes that shortcut (see docs/demo_towers.md).
        query: what queries the fusion: the pseudo-query ``"generator"`` (reference) or the
            video CLS token ``"video_cls"`` (ablation: no generator, no token selection, no
            reconstruction loss; the generator and token-selection options are unused).
        token_selection: the generator's patch tokens: ``"informative"`` (ITS, reference) or
            ``"random"`` (ablation): ``num_selected`` patch tokens drawn uniformly without
            replacement per sample while training; in evaluation one fixed draw (seed
            ``random_tokens_seed``) for every video, so a video's embedding does not depend
            on its batch.
        generator_init: ``"text"`` (reference: a copy of the text tower) or ``"random"``
            (ablation: the same modules freshly initialised; BOS/EOS still the text embeddings).
    """

    kind = "hybrid"
    random_tokens_seed = 0

    def __init__(
        self,
        backbone: VideoProxyBackbone,
        num_frames: int = 12,
        num_selected: int = 16,
        head_reduction: Literal["max", "mean"] = "max",
        mapper: Literal["linear", "mlp"] = "linear",
        learnable_special_tokens: bool = False,
        generator_projection: bool = False,
        fusion_dropout: float = 0.1,
        recon_weight: float = 1.0,
        recon_detach_text: bool = False,
        query: Literal["generator", "video_cls"] = "generator",
        token_selection: Literal["informative", "random"] = "informative",
        generator_init: Literal["text", "random"] = "text",
    ):
        super().__init__(backbone, num_frames)
        if not getattr(backbone, "has_frame_cls", True):
            raise ValueError("PIGTower reads each frame's CLS token (token selection, generator input): its "
                             "VideoProxyBackbone needs frame_cls: true")
        for name, value, allowed in (("query", query, ("generator", "video_cls")),
                                     ("token_selection", token_selection, ("informative", "random"))):
            if value not in allowed:
                raise ValueError(f"PIGTower {name} must be one of {allowed}, got {value!r}")
        self.num_selected = num_selected
        self.head_reduction = head_reduction
        self.recon_weight = recon_weight
        self.recon_detach_text = recon_detach_text
        self.query = query
        self.token_selection = token_selection
        self.generator_options = {"mapper": mapper, "learnable_special_tokens": learnable_special_tokens,
                                  "project": generator_projection, "init": generator_init}
        self.fusion_dropout = fusion_dropout
        self.generator = self._make_generator() if query == "generator" else None
        needed = 4 + num_frames + num_selected
        if self.generator is not None and needed > self.generator.max_tokens:
            raise ValueError(
                f"the generator input ({needed} tokens: 4 global + {num_frames} frame CLS + {num_selected} selected) "
                f"does not fit the {self.generator.max_tokens + 2} text positions with BOS/EOS"
            )
        self.fusion = self._make_fusion()

    def _make_generator(self) -> PseudoQueryGenerator:
        """A generator copied from the backbone's text tower *as it is now*."""
        clip = self.backbone.clip
        return PseudoQueryGenerator(clip, self.backbone.bos_token_id, self.backbone.eos_token_id,
                                    **self.generator_options)

    def _make_fusion(self) -> CrossAttentionPooling:
        return CrossAttentionPooling(self.backbone.embed_dim, dropout=self.fusion_dropout)

    def initialise_missing(self, missing: set[str]) -> set[str]:
        """Start PIG from a checkpoint without PIG's own parts (e.g. a CLIP-ViP tower): a
        generator absent from it is copied from the *loaded* text tower, an absent fusion starts
        at identity. A part present in the checkpoint is used as loaded; a part only partly
        present stays missing (an error)."""
        for name, make in (("generator", self._make_generator), ("fusion", self._make_fusion)):
            part = getattr(self, name)
            keys = {f"{name}.{key}" for key in part.state_dict()} if part is not None else set()
            if keys and keys <= missing:
                setattr(self, name, make())
                missing = missing - keys
        return missing

    def select_tokens(self, out: ProxyOutput) -> torch.Tensor:
        """The ``num_selected`` patch tokens the generator reads, ``[B, k, D]``."""
        if self.token_selection == "informative":
            return select_informative_tokens(out, self.num_selected, self.head_reduction)[0]
        if self.training:
            return select_random_tokens(out, self.num_selected)[0]
        fixed = torch.Generator(device=out.tokens.device).manual_seed(self.random_tokens_seed)
        return select_random_tokens(out, self.num_selected, generator=fixed, shared=True)[0]

    def video_outputs(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(video embedding [B, D] normalised, pseudo-query [B, D] or None without a generator)``."""
        return self._video_parts(frames)[:2]

    def _video_parts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The video embedding, the pseudo-query (or None) and the un-fused video CLS ``[B, D]``."""
        out = self.backbone.forward_video(frames)
        summary = out.global_and_frame_cls()  # [B, 4 + T, D]
        if self.generator is None:  # query "video_cls"
            return F.normalize(self.fusion(summary[:, 0], summary), dim=-1), None, summary[:, 0]
        pseudo_query = self.generator(torch.cat([summary, self.select_tokens(out)], dim=1))
        fused = self.fusion(pseudo_query, summary)
        return F.normalize(fused, dim=-1), pseudo_query, summary[:, 0]

    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        return self.video_outputs(frames)[0]

    def evaluation_outputs(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stored vector, and for diagnostics the pseudo-query and the un-fused video CLS
        (normalised): does the offline query depend on the video (evaluation/diagnostics.py)?"""
        video_emb, pseudo_query, video_cls = self._video_parts(frames)
        extras = {"video_cls": F.normalize(video_cls, dim=-1)}
        if pseudo_query is not None:
            extras["pseudo_query"] = F.normalize(pseudo_query, dim=-1)
        return video_emb, extras

    def training_outputs(self, frames: torch.Tensor, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor) -> TrainingOutputs:
        text = self.backbone.encode_text(input_ids, attention_mask)
        video_emb, pseudo_query = self.video_outputs(frames)
        losses = {}
        if pseudo_query is not None and self.recon_weight != 0:
            target = text.detach() if self.recon_detach_text else text
            recon = (2 - 2 * F.cosine_similarity(pseudo_query.float(), target.float(), dim=-1)).mean()
            losses["recon"] = self.recon_weight * recon
        return TrainingOutputs(F.normalize(text, dim=-1), video_emb, losses)


class SeqTransformerTower(DotProductTower):
    """CLIP4Clip "seqTransf": a small temporal transformer over frame embeddings, then mean pooling.

    Frame embeddings plus learned frame-position embeddings go through ``num_layers``
    pre-norm transformer layers; the result is added back to the frame embeddings
    (CLIP4Clip's residual), averaged over time and normalised. The temporal layers start
    from random weights (CLIP4Clip copies CLIP text layers; we leave that as an open choice).
    """

    kind = "two-tower"

    def __init__(self, backbone: FrameCLIPBackbone, num_frames: int = 12, num_layers: int = 4,
                 num_heads: int | None = None, max_frames: int = 128):
        super().__init__(backbone, num_frames)
        dim = backbone.embed_dim
        heads = num_heads or max(1, dim // 64)
        if num_frames > max_frames:
            raise ValueError(f"num_frames ({num_frames}) exceeds max_frames ({max_frames})")
        self.frame_position = nn.Embedding(max_frames, dim)
        nn.init.normal_(self.frame_position.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.1, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        per_frame = self.backbone.encode_frames(frames)
        positions = self.frame_position.weight[: per_frame.shape[1]]
        mixed = self.temporal(per_frame + positions) + per_frame
        pooled = F.normalize(mixed, dim=-1).mean(dim=1)
        return F.normalize(pooled, dim=-1)


class XPoolTower(Tower):
    """X-Pool, the single-tower baseline: each *text* attends over each video's frame embeddings.

    ``encode_videos`` returns what must be stored per video: the frame embeddings
    ``[N, T, D]``, not one vector. ``score`` pools every (text, video) pair with the text as
    query (:class:`~pig_lightning.models.fusion.CrossAttentionPooling`) and takes the cosine
    with the text, in chunks of texts so a 1k x 1k evaluation stays within memory: its cost
    grows with ``#texts x #videos x`` a cross-attention, which is what this baseline measures.

    Args:
        pair_budget: at most this many (text, video) pairs are pooled at once in ``score``.
    """

    kind = "single-tower"

    def __init__(self, backbone: FrameCLIPBackbone, num_frames: int = 12, dropout: float = 0.1,
                 pair_budget: int = 65_536):
        super().__init__(backbone, num_frames)
        self.pool = CrossAttentionPooling(backbone.embed_dim, dropout=dropout)
        self.pair_budget = pair_budget

    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.encode_frames(frames), dim=-1)

    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.encode_text(input_ids, attention_mask), dim=-1)

    def score(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        if video_emb.ndim != 3:
            raise ValueError(f"X-Pool scores against frame embeddings [N, T, D], got {tuple(video_emb.shape)}")
        chunk = max(1, self.pair_budget // max(1, video_emb.shape[0]))
        keys, values = self.pool.project_tokens(video_emb[None])  # once per call, shared by all texts
        rows = []
        for start in range(0, text_emb.shape[0], chunk):
            texts = text_emb[start : start + chunk]
            pooled = self.pool.attend(texts[:, None, :], keys, values)  # [m, N, D]
            rows.append(torch.einsum("md,mnd->mn", texts, F.normalize(pooled, dim=-1)))
        return torch.cat(rows)
