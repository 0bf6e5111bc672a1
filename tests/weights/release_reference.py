"""The releases' forward, re-implemented on their state dicts, for checking imported weights.

Written from reading lbx73737373/PIG (``src/modeling/PIG.py``: ``CLIPVisionViPEmbeddings``,
``CLIPAttention.forward2``; ``src/modeling/modeling_pig.py``: ``get_clip_embeds``, ``select_video_tokens``
'cls+added_cls+frame_cls+cls_attention_scores_no_overlap', ``CLIPFeatureReconstructor.generate_features``,
``XPoolCrossAttentionPooler``) and microsoft/XPretrain ``CLIP-ViP/src/modeling/CLIP_ViP.py``; it shares no
code with ``pig_lightning``: plain tensor operations on the release's key names, the block attention as
one loop over frames, the fusion over all (text, video) pairs then the diagonal, as the release does.

Also :func:`release_state_dict`: random tensors under the releases' exact names and shapes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# ----- state dicts with the releases' names ------------------------------------------------------
def _layer(prefix: str, width: int, inner: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    def w(*shape, std=None):
        return torch.randn(*shape, generator=gen) * (std if std is not None else shape[-1] ** -0.5)

    out = {}
    for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
        out[f"{prefix}self_attn.{proj}.weight"] = w(width, width)
        out[f"{prefix}self_attn.{proj}.bias"] = w(width, std=0.1)
    for norm in ("layer_norm1", "layer_norm2"):
        out[f"{prefix}{norm}.weight"] = 1 + w(width, std=0.1)
        out[f"{prefix}{norm}.bias"] = w(width, std=0.1)
    out[f"{prefix}mlp.fc1.weight"] = w(inner, width)
    out[f"{prefix}mlp.fc1.bias"] = w(inner, std=0.1)
    out[f"{prefix}mlp.fc2.weight"] = w(width, inner)
    out[f"{prefix}mlp.fc2.bias"] = w(width, std=0.1)
    return out


def _norm(name: str, width: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": 1 + 0.1 * torch.randn(width, generator=gen), f"{name}.bias": 0.1 * torch.randn(width, generator=gen)}


def clip_state_dict(prefix: str, cfg: dict, vocab: int, temporal: int, gen: torch.Generator,
                    frame_cls: str | None = "shared") -> dict[str, torch.Tensor]:
    """``VidCLIP`` with ``CLIPVisionViPEmbeddings`` (``frame_cls``: None = XPretrain's, no ``cls_in_frames``;
    ``"shared"`` = ``[D]``; ``"per_frame"`` = ``[T, D]``, use_different_frame_cls)."""
    text, vision, proj = cfg["text_config"], cfg["vision_config"], cfg["projection_dim"]
    wt, wv = text["hidden_size"], vision["hidden_size"]
    positions = text["max_position_embeddings"]
    grid = vision["image_size"] // vision["patch_size"]
    sd = {
        f"{prefix}text_model.embeddings.token_embedding.weight": 0.5 * torch.randn(vocab, wt, generator=gen),
        f"{prefix}text_model.embeddings.position_embedding.weight": 0.5 * torch.randn(positions, wt, generator=gen),
        f"{prefix}text_model.embeddings.position_ids": torch.arange(positions)[None],
        f"{prefix}vision_model.embeddings.added_cls": torch.randn(3, wv, generator=gen),
        f"{prefix}vision_model.embeddings.class_embedding": torch.randn(wv, generator=gen),
        f"{prefix}vision_model.embeddings.patch_embedding.weight":
            0.2 * torch.randn(wv, 3, vision["patch_size"], vision["patch_size"], generator=gen),
        f"{prefix}vision_model.embeddings.position_embedding.weight": 0.5 * torch.randn(grid * grid + 1, wv, generator=gen),
        f"{prefix}vision_model.embeddings.position_ids": torch.arange(grid * grid + 1)[None],
        f"{prefix}vision_model.embeddings.temporal_embedding": 0.5 * torch.randn(1, temporal, wv, generator=gen),
        f"{prefix}visual_projection.weight": torch.randn(proj, wv, generator=gen) * wv ** -0.5,
        f"{prefix}text_projection.weight": torch.randn(proj, wt, generator=gen) * wt ** -0.5,
        f"{prefix}logit_scale": torch.tensor(4.2),
    }
    if frame_cls == "shared":
        sd[f"{prefix}vision_model.embeddings.cls_in_frames"] = torch.randn(wv, generator=gen)
    elif frame_cls == "per_frame":
        sd[f"{prefix}vision_model.embeddings.cls_in_frames"] = torch.randn(temporal, wv, generator=gen)
    for i in range(text["num_hidden_layers"]):
        sd.update(_layer(f"{prefix}text_model.encoder.layers.{i}.", wt, text["intermediate_size"], gen))
    for i in range(vision["num_hidden_layers"]):
        sd.update(_layer(f"{prefix}vision_model.encoder.layers.{i}.", wv, vision["intermediate_size"], gen))
    sd.update(_norm(f"{prefix}text_model.final_layer_norm", wt, gen))
    sd.update(_norm(f"{prefix}vision_model.pre_layrnorm", wv, gen))
    sd.update(_norm(f"{prefix}vision_model.post_layernorm", wv, gen))
    return sd


def release_state_dict(source: str, cfg: dict, vocab: int, temporal: int, seed: int = 0,
                       frame_cls: str | None = "shared", mapper: str = "Linear") -> dict[str, torch.Tensor]:
    """A random checkpoint of the CLIP-ViP (``VidCLIP``) or PIG (``PIG``) release, with its exact key names."""
    gen = torch.Generator().manual_seed(seed)
    if source == "clipvip":
        return clip_state_dict("clipmodel.", cfg, vocab, temporal, gen, frame_cls)
    sd = clip_state_dict("encoder.clipmodel.", cfg, vocab, temporal, gen, frame_cls)
    text, proj = cfg["text_config"], cfg["projection_dim"]
    wt = text["hidden_size"]
    g = "generator.clip_reconstructor."
    sd[f"{g}embeddings.token_embedding.weight"] = 0.5 * torch.randn(vocab, wt, generator=gen)
    sd[f"{g}embeddings.position_embedding.weight"] = 0.5 * torch.randn(text["max_position_embeddings"], wt, generator=gen)
    sd[f"{g}embeddings.position_ids"] = torch.arange(text["max_position_embeddings"])[None]
    for i in range(text["num_hidden_layers"]):
        sd.update(_layer(f"{g}encoder.layers.{i}.", wt, text["intermediate_size"], gen))
    sd.update(_norm(f"{g}final_layer_norm", wt, gen))
    names = ["video_mapper"] if mapper == "Linear" else ["video_mapper.0", "video_mapper.2"]
    for name in names:
        sd[f"{g}{name}.weight"] = torch.randn(wt, wt, generator=gen) * wt ** -0.5
        sd[f"{g}{name}.bias"] = 0.1 * torch.randn(wt, generator=gen)
    for name in ("cross_attn.q_proj", "cross_attn.k_proj", "cross_attn.v_proj", "cross_attn.out_proj", "linear_proj"):
        sd[f"fusioner.{name}.weight"] = torch.eye(proj) + 0.3 * torch.randn(proj, proj, generator=gen)
        sd[f"fusioner.{name}.bias"] = 0.1 * torch.randn(proj, generator=gen)
    for name in ("layer_norm1", "layer_norm2", "layer_norm3"):
        sd.update(_norm(f"fusioner.{name}", proj, gen))
    return sd


# ----- the forward ----------------------------------------------------------------------------------
def _lin(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def _ln(sd, name, x):
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-5)


def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def _heads(x, heads):  # [B, N, W] -> [B, h, N, d]
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def _layer_forward(sd, name, x, heads, attend):
    """A pre-norm CLIP layer; ``attend(q, k, v)`` -> (output [B, h, N, d], probabilities or None)."""
    h = _ln(sd, f"{name}.layer_norm1", x)
    d = x.shape[-1] // heads
    q = _heads(_lin(sd, f"{name}.self_attn.q_proj", h) * d ** -0.5, heads)
    k = _heads(_lin(sd, f"{name}.self_attn.k_proj", h), heads)
    v = _heads(_lin(sd, f"{name}.self_attn.v_proj", h), heads)
    out, probs = attend(q, k, v)
    x = x + _lin(sd, f"{name}.self_attn.out_proj", out.transpose(1, 2).reshape(x.shape))
    h = _ln(sd, f"{name}.layer_norm2", x)
    return x + _lin(sd, f"{name}.mlp.fc2", _quick_gelu(_lin(sd, f"{name}.mlp.fc1", h))), probs


def _causal(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-1, -2) + torch.full((n, n), float("-inf"), dtype=q.dtype).triu(1)
    return scores.softmax(-1) @ v, None


def vip_embeddings(sd, p, video, patch, frame_cls_value=None, with_frame_cls=True):
    """``CLIPVisionViPEmbeddings.forward``: ``(tokens [B, M + T*L, D], M, L)``. ``frame_cls_value``
    overrides ``cls_in_frames`` (the PIG release sets it to ``class_embedding`` when it starts from a
    checkpoint without one)."""
    e = f"{p}vision_model.embeddings."
    b, t, c, hgt, wid = video.shape
    table = sd[f"{e}temporal_embedding"]  # [1, Tt, D]
    time = table if t == table.shape[1] else \
        F.interpolate(table.transpose(1, 2), size=t, mode="linear").transpose(1, 2)  # the release: default corners
    pe = F.conv2d(video.reshape(-1, c, hgt, wid), sd[f"{e}patch_embedding.weight"], stride=patch)
    pe = pe.flatten(2).transpose(1, 2)
    pe = pe.reshape(b, t, -1, pe.shape[-1])
    pos = sd[f"{e}position_embedding.weight"]
    pe = pe + time.unsqueeze(2)
    pe = pe + pos[1:][None, None]
    cls = (sd[f"{e}class_embedding"] + pos[0]).expand(b, 1, -1)
    if with_frame_cls:  # XPretrain's CLIP-ViP has none: its frames are patches only
        fc = frame_cls_value if frame_cls_value is not None else sd[f"{e}cls_in_frames"]
        fc = fc.expand(b, t, 1, -1) + time.unsqueeze(2) + pos[0]
        pe = torch.cat([fc, pe], dim=2)
    added = (sd[f"{e}added_cls"] + pos[0]).expand(b, -1, -1)
    m = 1 + added.shape[1]
    return torch.cat([cls, added, pe.reshape(b, -1, pe.shape[-1])], dim=1), m, pe.shape[2]


def vision_forward(sd, p, cfg, video, frame_cls_value=None, with_frame_cls=True):
    """All tokens after ``post_layernorm`` and ``visual_projection`` (what PIG reads), and the last layer's
    attention probabilities of the global rows ``[B, h, M, M + T*L]``."""
    vision = cfg["vision_config"]
    heads = vision["num_attention_heads"]
    x, m, per_frame = vip_embeddings(sd, p, video, vision["patch_size"], frame_cls_value, with_frame_cls)
    t = video.shape[1]
    x = _ln(sd, f"{p}vision_model.pre_layrnorm", x)

    def divided(q, k, v):
        # frame rows: each frame's tokens against the M global tokens and that frame's own tokens
        outs = []
        for i in range(t):
            rows = slice(m + i * per_frame, m + (i + 1) * per_frame)
            keys = torch.cat([k[:, :, :m], k[:, :, rows]], dim=2)
            values = torch.cat([v[:, :, :m], v[:, :, rows]], dim=2)
            outs.append((q[:, :, rows] @ keys.transpose(-1, -2)).softmax(-1) @ values)
        # global rows: against every token
        probs = (q[:, :, :m] @ k.transpose(-1, -2)).softmax(-1)
        return torch.cat([probs @ v] + outs, dim=2), probs

    probs = None
    for i in range(vision["num_hidden_layers"]):
        x, probs = _layer_forward(sd, f"{p}vision_model.encoder.layers.{i}", x, heads, divided)
    tokens = F.linear(_ln(sd, f"{p}vision_model.post_layernorm", x), sd[f"{p}visual_projection.weight"])
    return tokens, probs, m, per_frame


def text_forward(sd, p, cfg, input_ids, attention_mask, eot_positions):
    """``get_text_features``: the EOT state after ``final_layer_norm``, projected. The release pools at
    ``input_ids.argmax(-1)``, i.e. the EOT token, whose id is the largest of OpenAI's vocabulary; with a
    test tokenizer whose EOT id is not the largest, the caller gives the EOT positions."""
    text = cfg["text_config"]
    n = input_ids.shape[1]
    x = sd[f"{p}text_model.embeddings.token_embedding.weight"][input_ids] + \
        sd[f"{p}text_model.embeddings.position_embedding.weight"][:n]
    pad = torch.zeros(attention_mask.shape, dtype=x.dtype).masked_fill(attention_mask == 0, torch.finfo(x.dtype).min)
    causal = torch.full((n, n), float("-inf"), dtype=x.dtype).triu(1)

    def masked(q, k, v):
        scores = q @ k.transpose(-1, -2) + causal + pad[:, None, None, :]
        return scores.softmax(-1) @ v, None

    for i in range(text["num_hidden_layers"]):
        x, _ = _layer_forward(sd, f"{p}text_model.encoder.layers.{i}", x, text["num_attention_heads"], masked)
    x = _ln(sd, f"{p}text_model.final_layer_norm", x)
    pooled = x[torch.arange(x.shape[0]), eot_positions]
    return F.linear(pooled, sd[f"{p}text_projection.weight"])


def select_no_overlap(tokens, probs, m, per_frame, num_frames, k):
    """'cls+added_cls+frame_cls+cls_attention_scores_no_overlap': ``(generator input, chosen indices)``."""
    scores = probs.max(dim=1).values[:, 0, :].clone()  # heads reduced by max, the video-CLS row
    skip = list(range(m)) + [m + i * per_frame for i in range(num_frames)]
    scores[:, skip] = float("-inf")
    chosen = scores.topk(k, dim=-1, largest=True, sorted=True).indices
    frame_cls = tokens[:, m::per_frame][:, :num_frames]
    picked = tokens[torch.arange(tokens.shape[0])[:, None], chosen]
    return torch.cat([tokens[:, :1], tokens[:, 1:m], frame_cls, picked], dim=1), chosen


def generator_forward(sd, cfg, video_tokens, bos_id, eos_id, mapper="Linear"):
    """``CLIPFeatureReconstructor.generate_features`` with ``use_bos_embeds`` 1, then ``pick_eot``."""
    g = "generator.clip_reconstructor."
    text = cfg["text_config"]
    if mapper == "Linear":
        mapped = _lin(sd, f"{g}video_mapper", video_tokens)
    else:
        mapped = _lin(sd, f"{g}video_mapper.2", F.gelu(_lin(sd, f"{g}video_mapper.0", video_tokens)))
    table = sd[f"{g}embeddings.token_embedding.weight"]
    b = video_tokens.shape[0]
    x = torch.cat([table[bos_id].expand(b, 1, -1), mapped, table[eos_id].expand(b, 1, -1)], dim=1)
    x = x + sd[f"{g}embeddings.position_embedding.weight"][: x.shape[1]]
    for i in range(text["num_hidden_layers"]):
        x, _ = _layer_forward(sd, f"{g}encoder.layers.{i}", x, text["num_attention_heads"], _causal)
    return _ln(sd, f"{g}final_layer_norm", x)[:, -1]


def xpool_fusion(sd, queries, video_tokens, temperature=1.0):
    """``XPoolCrossAttentionPooler`` (one head): every (query, video) pair, then the diagonal."""
    q_in = _ln(sd, "fusioner.layer_norm1", queries)  # [Bq, D]
    v_in = _ln(sd, "fusioner.layer_norm1", video_tokens)  # [Bv, n, D]
    q = _lin(sd, "fusioner.cross_attn.q_proj", q_in)
    k = _lin(sd, "fusioner.cross_attn.k_proj", v_in)
    v = _lin(sd, "fusioner.cross_attn.v_proj", v_in)
    logits = torch.einsum("vnd,qd->vqn", k, q) / math.sqrt(q.shape[-1]) / temperature
    pooled = torch.einsum("vqn,vnd->vqd", logits.softmax(-1), v)  # [Bv, Bq, D]
    attn = _ln(sd, "fusioner.layer_norm2", _lin(sd, "fusioner.cross_attn.out_proj", pooled))
    out = _ln(sd, "fusioner.layer_norm3", attn + _lin(sd, "fusioner.linear_proj", attn))
    return torch.diagonal(out, dim1=0, dim2=1).T  # [B, D]: each video with its own query


def pig_forward(sd, cfg, video, bos_id, eos_id, num_selected=16, mapper="Linear"):
    """The PIG release's offline video side: ``(final video vector, pseudo-query, chosen patch indices,
    global-row attention)``."""
    tokens, probs, m, per_frame = vision_forward(sd, "encoder.clipmodel.", cfg, video)
    t = video.shape[1]
    gen_in, chosen = select_no_overlap(tokens, probs, m, per_frame, t, num_selected)
    pseudo = generator_forward(sd, cfg, gen_in, bos_id, eos_id, mapper)
    fusion_in = torch.cat([tokens[:, :m], tokens[:, m::per_frame][:, :t]], dim=1)  # 'cls+added_cls+frame_cls'
    return xpool_fusion(sd, pseudo, fusion_in), pseudo, chosen, probs
