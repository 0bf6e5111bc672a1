"""The CLIP-ViP and PIG releases' checkpoints, key by key, onto this project's towers.

Both releases save a bare ``state_dict`` of their top module (``ModelSaver``: ``torch.save(
model.state_dict())``; a training-restore file holds it under ``model_state_dict``):

* **CLIP-ViP** (``microsoft/XPretrain``, ``CLIP-ViP/src/modeling/VidCLIP.py``; also a CLIP-ViP trained with
  the PIG code): ``VidCLIP`` -> ``clipmodel.<HF CLIPModel names>``, its vision embeddings being
  ``CLIPVisionViPEmbeddings``: ``added_cls [3, D]`` (the proxy tokens), ``class_embedding [D]``,
  ``temporal_embedding [1, T, D]`` and, only in the PIG code's version, ``cls_in_frames [D]`` (the
  frame CLS; ``[T, D]`` with ``use_different_frame_cls``). The post-pretrained checkpoints
  (``pretrain_clipvip_base_32.pt`` / ``_base_16.pt``) have no ``cls_in_frames``: their frames carry no CLS.
* **PIG** (``lbx73737373/PIG``, ``src/modeling/modeling_pig.py``): ``PIG`` -> ``encoder.clipmodel.*`` (as
  above), ``generator.clip_reconstructor.*`` (a copy of a CLIP text model: ``embeddings``, ``encoder.layers``,
  ``final_layer_norm``, and ``video_mapper``) and ``fusioner.*`` (``XPoolCrossAttentionPooler``:
  ``layer_norm1``, ``cross_attn.{q,k,v,out}_proj``, ``layer_norm2``, ``linear_proj``, ``layer_norm3``).

Targets: :class:`~pig_lightning.models.VideoCLSTower` for CLIP-ViP, :class:`~pig_lightning.models.PIGTower`
for PIG, both on :class:`~pig_lightning.models.VideoProxyBackbone` (whose HF ``CLIPModel`` uses the
release's CLIP names unchanged). Every key is mapped, derived-from or dropped with a reason; a key the
mapping does not know is an error naming it; every shape is checked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

#: per source: the prefix of the CLIP model's keys and the tower the checkpoint becomes
RELEASES = {
    "clipvip": {"clip_prefix": "clipmodel.", "tower": "pig_lightning.models.VideoCLSTower",
                "what": "CLIP-ViP (microsoft/XPretrain CLIP-ViP, or a CLIP-ViP trained with the PIG code): VidCLIP state dict"},
    "pig": {"clip_prefix": "encoder.clipmodel.", "tower": "pig_lightning.models.PIGTower",
            "what": "PIG (lbx73737373/PIG): PIG model state dict (encoder / generator / fusioner)"},
}

#: containers a state dict may come in: key -> what the other top-level entries are
CONTAINERS = {"model_state_dict": "training-restore file (E2E_TrainingRestorer): step, optimizer and amp state",
              "state_dict": "checkpoint wrapper", "model": "checkpoint wrapper"}

QFORMER = "the Bert-Qformer generator (fr_model_type 'Bert-Qformer')"
ANONYMOUS = ("the learnable BOS / query tokens of the anonymous-submission code (not in the public PIG release, whose "
             "BOS/EOS come from the CLIP weights)")

#: keys of release variants with no counterpart here -> what they are
UNSUPPORTED = {
    r"^alpha$": "the NCELearnableTempLoss_two_matrix variant's weight (score = CLIP-ViP + alpha x PIG)",
    r"^AFA\.": "the word-level fusion's aggregation head (fusioner text_embeds_type 'word-level')",
    r"^final_pseudo_final_alpha_add$": "the pseudo_final_alpha_add variant",
    r"^generator\.(Qformer|Qformer_proj)\.": QFORMER,
    r"^generator\.(bos_tokens|query_tokens)$": ANONYMOUS,
    r"^fusioner\.": "a fusioner other than the one-head XPoolCrossAttention of the release recipe",
}

GENERATOR = "generator.clip_reconstructor."
FUSION = {  # release fusioner (XPoolCrossAttentionPooler) -> CrossAttentionPooling
    "fusioner.layer_norm1.": "tower.fusion.norm_in.",
    "fusioner.cross_attn.q_proj.": "tower.fusion.q_proj.",
    "fusioner.cross_attn.k_proj.": "tower.fusion.k_proj.",
    "fusioner.cross_attn.v_proj.": "tower.fusion.v_proj.",
    "fusioner.cross_attn.out_proj.": "tower.fusion.out_proj.",
    "fusioner.layer_norm2.": "tower.fusion.norm_out.",
    "fusioner.linear_proj.": "tower.fusion.linear.",
    "fusioner.layer_norm3.": "tower.fusion.norm_final.",
}
POSITION_IDS = "index buffer 0..n-1 of the release's HF-4.x embeddings (checked); recomputed here"
BACKBONE = "tower.backbone."
CLIP = "tower.backbone.clip."


class WeightsImportError(ValueError):
    """The file cannot be imported as the given release's checkpoint; the message says why."""


@dataclass
class Mapping:
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # target name -> tensor
    mapped: list[dict[str, Any]] = field(default_factory=list)
    derived: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    converted_dtypes: dict[str, int] = field(default_factory=dict)


def unwrap(obj: Any, path: str) -> tuple[dict[str, torch.Tensor], str, list[dict[str, Any]]]:
    """``(state dict, container description, dropped top-level entries)`` of what ``torch.load`` read."""
    if not isinstance(obj, dict):
        raise WeightsImportError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, "bare state dict (ModelSaver / BestModelSaver)", []
    for key, what in CONTAINERS.items():
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            others = [{"key": k, "reason": f"{what}, not weights"} for k in obj if k != key]
            return inner, f"state dict under '{key}'", others
    kinds = sorted({type(v).__name__ for v in obj.values()})
    raise WeightsImportError(f"{path}: a dict of {kinds} with no state dict in it (expected tensors by name, or one "
                             f"under {sorted(CONTAINERS)})")


def check_source(tensors: dict[str, torch.Tensor], source: str, path: str) -> None:
    """The file has the source's CLIP keys; a file of the other release is named as such."""
    prefix = RELEASES[source]["clip_prefix"]
    if any(k.startswith(prefix) for k in tensors):
        return
    for other, spec in RELEASES.items():
        if other != source and any(k.startswith(spec["clip_prefix"]) for k in tensors):
            raise WeightsImportError(f"{path}: its CLIP keys start with '{spec['clip_prefix']}': a {other} checkpoint; "
                                     f"use --source {other}")
    if any(k.startswith("tower.") for k in tensors):
        raise WeightsImportError(f"{path} is a pig-lightning state dict (keys 'tower.*'), not a release checkpoint: "
                                 "use it directly (model.init_checkpoint) or `pig-lightning export --format model`")
    if any(k.startswith("module.") for k in tensors):
        raise WeightsImportError(f"{path}: keys start with 'module.' (a DDP-wrapped save); this mapping reads the "
                                 "releases' own saves, whose keys start with " + f"'{prefix}'")
    raise WeightsImportError(f"{path}: no key starts with '{prefix}': not a {source} release checkpoint "
                             f"(first keys: {sorted(tensors)[:3]})")


def _layers(tensors: dict[str, torch.Tensor], prefix: str) -> int:
    found = {int(m.group(1)) for k in tensors if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if not found or found != set(range(max(found) + 1)):
        raise WeightsImportError(f"the layers under '{prefix}' are not numbered 0..n-1: {sorted(found)[:5]}")
    return max(found) + 1


def infer_clip_config(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    """A ``CLIPConfig`` dict from the shapes, with OpenAI CLIP's conventions for what shapes do not
    show: 64-wide attention heads, ``quick_gelu``."""
    def shape(name: str) -> tuple[int, ...]:
        key = prefix + name
        if key not in tensors:
            raise WeightsImportError(f"the file lacks {key}: not a CLIP-ViP / PIG checkpoint, or pass --config")
        return tuple(tensors[key].shape)

    width = shape("vision_model.embeddings.class_embedding")[0]
    patch = shape("vision_model.embeddings.patch_embedding.weight")[-1]
    positions = shape("vision_model.embeddings.position_embedding.weight")[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise WeightsImportError(f"{positions} vision positions are not 1 + a square number of patches")
    vocab, text_width = shape("text_model.embeddings.token_embedding.weight")
    for name, w in (("vision", width), ("text", text_width)):
        if w % 64:
            raise WeightsImportError(f"the {name} width {w} is not a multiple of 64, so the head count cannot follow "
                                     "OpenAI CLIP's convention: pass --config with the model's CLIP config")
    return {
        "projection_dim": shape("visual_projection.weight")[0],
        "text_config": {
            "vocab_size": vocab, "hidden_size": text_width, "num_attention_heads": text_width // 64,
            "intermediate_size": shape("text_model.encoder.layers.0.mlp.fc1.weight")[0],
            "num_hidden_layers": _layers(tensors, prefix + "text_model.encoder.layers."),
            "max_position_embeddings": shape("text_model.embeddings.position_embedding.weight")[0],
            "hidden_act": "quick_gelu",
        },
        "vision_config": {
            "hidden_size": width, "num_attention_heads": width // 64, "patch_size": patch, "image_size": grid * patch,
            "intermediate_size": shape("vision_model.encoder.layers.0.mlp.fc1.weight")[0],
            "num_hidden_layers": _layers(tensors, prefix + "vision_model.encoder.layers."),
            "hidden_act": "quick_gelu",
        },
    }


def temporal_size(tensors: dict[str, torch.Tensor], source: str) -> int | None:
    key = RELEASES[source]["clip_prefix"] + "vision_model.embeddings.temporal_embedding"
    if key not in tensors:
        return None
    if tensors[key].ndim != 3 or tensors[key].shape[0] != 1:
        raise WeightsImportError(f"{key}: shape {list(tensors[key].shape)}, expected [1, T, D]")
    return int(tensors[key].shape[1])


def video_mapper_kind(tensors: dict[str, torch.Tensor]) -> str:
    """``"linear"`` or ``"mlp"`` (the release's ``video_mapper_type`` 'Linear' / 'MLP')."""
    names = {k[len(GENERATOR + "video_mapper."):] for k in tensors if k.startswith(GENERATOR + "video_mapper.")}
    if names == {"weight", "bias"}:
        return "linear"
    if names == {"0.weight", "0.bias", "2.weight", "2.bias"}:
        return "mlp"
    raise WeightsImportError(f"the generator's video_mapper has parameters {sorted(names)}: neither the release's "
                             "Linear nor its MLP")


def map_release(tensors: dict[str, torch.Tensor], source: str, target: dict[str, torch.Tensor],
                bos_id: int, eos_id: int, path: str) -> Mapping:
    """Map ``tensors`` (a release state dict) onto ``target`` (the tower's module state dict: names and
    shapes). Raises on an unknown key, a shape that differs or a target left without a value."""
    prefix = RELEASES[source]["clip_prefix"]
    out = Mapping()
    unknown: list[str] = []

    def put(key: str, to: str, value: torch.Tensor, transform: str = "copy") -> None:
        if to not in target:
            unknown.append(key)
            return
        if tuple(value.shape) != tuple(target[to].shape):
            raise WeightsImportError(_shape_message(key, value, to, target[to], path))
        if value.dtype != target[to].dtype:
            out.converted_dtypes[str(value.dtype).removeprefix("torch.")] = \
                out.converted_dtypes.get(str(value.dtype).removeprefix("torch."), 0) + 1
        out.state[to] = value.to(target[to].dtype)
        out.mapped.append({"from": key, "to": to, "shape": list(target[to].shape), "transform": transform})

    def drop(key: str, reason: str) -> None:
        out.dropped.append({"key": key, "shape": list(tensors[key].shape), "reason": reason})

    for key in sorted(tensors):
        value = tensors[key]
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if rest.endswith("embeddings.position_ids"):
                _check_arange(key, value)
                drop(key, POSITION_IDS)
            elif rest == "vision_model.embeddings.added_cls":
                put(key, BACKBONE + "proxy_tokens", value)
            elif rest == "vision_model.embeddings.temporal_embedding":
                if value.ndim != 3 or value.shape[0] != 1:
                    raise WeightsImportError(f"{key}: shape {list(value.shape)}, expected [1, T, D]")
                put(key, BACKBONE + "temporal_embedding", value[0], "[1, T, D] -> [T, D]")
            elif rest == "vision_model.embeddings.cls_in_frames":
                put(key, BACKBONE + "frame_cls", *_frame_cls(key, value, path))
            else:
                put(key, CLIP + rest, value)
        elif source == "pig" and key.startswith(GENERATOR):
            rest = key[len(GENERATOR):]
            if rest == "embeddings.position_ids":
                _check_arange(key, value)
                drop(key, POSITION_IDS)
            elif rest == "embeddings.token_embedding.weight":
                put(key, "tower.generator.special_tokens", value[[bos_id, eos_id]],
                    f"rows {bos_id} (<|startoftext|>) and {eos_id} (<|endoftext|>): the fixed BOS/EOS embeddings")
                out.dropped.append({"key": f"{key} (the other {value.shape[0] - 2} rows)", "shape": list(value.shape),
                                    "reason": "the release's generator reads only the BOS/EOS rows of its token table "
                                              "(fixed at construction, never trained)"})
            elif rest == "embeddings.position_embedding.weight":
                put(key, "tower.generator.position_embedding.weight", value)
            elif rest.startswith("encoder.layers."):
                put(key, "tower.generator.layers." + rest[len("encoder.layers."):], value)
            elif rest.startswith(("final_layer_norm.", "video_mapper.")):
                put(key, "tower.generator." + rest, value)
            else:
                unknown.append(key)
        elif source == "pig" and any(key.startswith(p) for p in FUSION):
            p = next(p for p in FUSION if key.startswith(p))
            put(key, FUSION[p] + key[len(p):], value)
        else:
            unknown.append(key)
    if unknown:
        raise WeightsImportError(_unknown_message(unknown, source, path))
    _derive(tensors, prefix, target, out)
    missing = sorted(set(target) - set(out.state))
    if missing:
        raise WeightsImportError(f"{path} lacks what {RELEASES[source]['tower'].rsplit('.', 1)[1]} needs: "
                                 f"{missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)} tensors): "
                                 "not a complete checkpoint of this release")
    return out


def _derive(tensors: dict[str, torch.Tensor], prefix: str, target: dict[str, torch.Tensor], out: Mapping) -> None:
    """Values the file does not hold and the release derives the same way."""
    frame_cls = BACKBONE + "frame_cls"
    if frame_cls in target and frame_cls not in out.state:
        out.state[frame_cls] = out.state[CLIP + "vision_model.embeddings.class_embedding"].clone()
        out.derived.append({"to": frame_cls, "from": prefix + "vision_model.embeddings.class_embedding",
                            "how": "no cls_in_frames in the file (CLIP-ViP's frames carry no CLS): a copy of "
                                   "class_embedding, as the PIG release's setup_pig_model initialises it; the video "
                                   "embeddings are those of the PIG layout started from these weights, not of "
                                   "CLIP-ViP's own forward (no frame CLS)"})
    temporal = BACKBONE + "temporal_embedding"
    if temporal in target and temporal not in out.state:
        out.state[temporal] = torch.zeros_like(target[temporal])
        out.derived.append({"to": temporal, "from": None,
                            "how": "no temporal_embedding in the file (if_use_temporal_embed 0): zeros, which add nothing"})


def _frame_cls(key: str, value: torch.Tensor, path: str) -> tuple[torch.Tensor, str]:
    if value.ndim == 1:
        return value, "copy"
    if value.ndim == 2 and torch.equal(value, value[:1].expand_as(value)):
        return value[0], f"per-frame variant [{value.shape[0]}, D] with equal rows: row 0"
    raise WeightsImportError(
        f"{path}: {key} has shape {list(value.shape)} with different rows: one frame-CLS vector per frame "
        "(use_different_frame_cls 1); this project's backbone has one frame-CLS vector shared by all frames"
    )


def _check_arange(key: str, value: torch.Tensor) -> None:
    flat = value.reshape(-1)
    if not torch.equal(flat.long(), torch.arange(flat.numel())):
        raise WeightsImportError(f"{key} is not the index table 0..{flat.numel() - 1} the release's code makes")


def _shape_message(key: str, value: torch.Tensor, to: str, expected: torch.Tensor, path: str) -> str:
    message = (f"{path}: {key} has shape {list(value.shape)}, the model built for it expects {list(expected.shape)} "
               f"({to})")
    if key.endswith("added_cls"):
        return message + ": this project's backbone has 3 proxy tokens besides the video CLS (add_cls_num 3)"
    if key.endswith("token_embedding.weight"):
        return message + ": the tokenizer's size differs from the checkpoint's vocabulary; pass the tokenizer it was " \
                         "trained with (--tokenizer)"
    return message + ": pass --config with the checkpoint's CLIP config (by default it is inferred from the shapes)"


def _unknown_message(unknown: list[str], source: str, path: str) -> str:
    reasons = []
    qformer = any(re.search(r"^generator\.(Qformer|Qformer_proj)\.", key) for key in unknown)
    for key in unknown:
        for pattern, what in UNSUPPORTED.items():
            if what == ANONYMOUS and qformer and key == "generator.query_tokens":
                what = QFORMER  # the Q-Former's own query tokens
            if re.search(pattern, key) and what not in reasons:
                reasons.append(what)
    shown = ", ".join(unknown[:5]) + (f" ... ({len(unknown)} keys)" if len(unknown) > 5 else "")
    hint = f" They belong to {'; '.join(reasons)}, which this project does not implement." if reasons else ""
    expected = ("'clipmodel.*'" if source == "clipvip" else
                "'encoder.clipmodel.*', 'generator.clip_reconstructor.*' and the XPool 'fusioner.*'")
    return f"{path}: keys the {source} mapping does not know: {shown}.{hint} Expected {expected}."
