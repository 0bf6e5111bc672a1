"""``pig-lightning import-weights``: a CLIP-ViP or PIG release checkpoint -> a model folder.

The file is read with ``torch.load(weights_only=True)`` (or as safetensors): tensors and plain data
only, nothing in it can run. A file that needs full unpickling is refused, with how to convert it once,
deliberately (``--trust_checkpoint``). Its keys are mapped by :mod:`pig_lightning.weights.release`;
the result is a model folder (:mod:`pig_lightning.weights.folder`) that ``model.init_checkpoint``,
``index``, ``search`` and ``Retriever`` take, with ``import_report.json`` listing every key: mapped
(to what, how), derived or dropped (why).
"""

from __future__ import annotations

import json
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

from pig_lightning.atomic import file_sha256
from pig_lightning.weights.checkpoint_file import sniff
from pig_lightning.weights.folder import build_tower, write_model_folder
from pig_lightning.weights.hf_folder import (ModelSourceError, check_output_folder, clip_config_from,
                                             load_clip_model, load_tokenizer)
from pig_lightning.weights.release import (RELEASES, WeightsImportError, check_source, infer_clip_config,
                                           map_release, temporal_size, unwrap, video_mapper_kind)

REPORT_NAME = "import_report.json"
DEFAULT_TOKENIZER = "openai/clip-vit-base-patch32"

#: what a release checkpoint does not record and is taken from the release's MSR-VTT recipe
ASSUMED = {
    "clipvip": ["3 proxy tokens + video CLS (add_cls_num 3)", "temporal embedding interpolated with align_corners=False"],
    "pig": ["3 proxy tokens + video CLS (add_cls_num 3)", "temporal embedding interpolated with align_corners=False",
            "generator input [video CLS, proxies, frame CLS, 16 ITS patches] (num_selected_tokens 16, "
            "select_attention_scores_type max)", "BOS and EOS around the mapped tokens (use_bos_embeds 1)",
            "fusion: one head, attn_temp 1, dropout 0.1 (fusioner_config of the release recipe)"],
}


def read_input(path: Path, source: str, trust: bool) -> tuple[Any, str, str]:
    """``(object, file format, how it was read)``; weights only unless ``trust``."""
    if not path.is_file():
        raise WeightsImportError(f"--input {path} not found" if not path.exists() else f"--input {path} is not a file")
    if sniff(path) in ("safetensors", "gallery"):
        from safetensors.torch import load_file

        return load_file(str(path)), "safetensors", "safetensors"
    is_zip = zipfile.is_zipfile(path)
    kind = "torch.save (zip)" if is_zip else "torch.save (legacy)"
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip), kind, \
            "torch.load(weights_only=True)"
    except pickle.UnpicklingError as exc:
        if not trust:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsImportError(
                f"{path}: refused. It holds objects other than tensors and plain data (torch.load weights_only=True: "
                f"{reason[:200]}), and unpickling it fully would run whatever code the file carries. If you trust its "
                f"source, convert it once, deliberately: pig-lightning import-weights --source {source} --input {path} "
                "--output DIR --trust_checkpoint; the folder written holds tensors only (safetensors) and is safe to "
                "load from then on"
            ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsImportError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    print(f"warning: --trust_checkpoint: unpickling {path} fully (it may run code it carries)", file=sys.stderr)
    return torch.load(path, map_location="cpu", weights_only=False), kind, "torch.load(weights_only=False), --trust_checkpoint"


def load_config(config: str | None, tensors: dict[str, torch.Tensor], source: str) -> tuple[dict[str, Any], str]:
    """The CLIP config (a dict for ``CLIPConfig``) and where it came from."""
    if config is None:
        return infer_clip_config(tensors, RELEASES[source]["clip_prefix"]), \
            "inferred from the tensor shapes (OpenAI CLIP conventions: 64-wide heads, quick_gelu)"
    path = Path(config)
    if path.is_file():
        try:
            return json.loads(path.read_text()), f"--config {config}"
        except ValueError as exc:
            raise WeightsImportError(f"--config {config}: not valid JSON ({exc})") from exc
    from transformers import CLIPConfig

    try:
        return CLIPConfig.from_pretrained(config).to_dict(), f"--config {config}"
    except (OSError, ValueError) as exc:
        raise WeightsImportError(f"--config {config}: not a CLIPConfig JSON file, nor a folder or hub id with a CLIP "
                                 f"config.json ({exc.__class__.__name__})") from exc


def tower_spec(source: str, clip_config: dict[str, Any], tensors: dict[str, torch.Tensor], num_frames: int | None,
               max_text_length: int, frame_cls: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tower spec without tokenizer, data settings)`` for the checkpoint."""
    temporal = temporal_size(tensors, source) or 12
    vision = clip_config.get("vision_config") or {}
    text = clip_config.get("text_config") or {}
    image_size = int(vision.get("image_size", 224))
    max_text_length = min(max_text_length, int(text.get("max_position_embeddings", 77)))
    frames = num_frames or temporal
    backbone = {"class_path": "pig_lightning.models.VideoProxyBackbone", "init_args": {
        "config": clip_config, "image_size": image_size, "max_text_length": max_text_length,
        "num_proxies": 3, "temporal_frames": temporal, "temporal_align_corners": False,
        "logit_scale_init": None, **({} if frame_cls else {"frame_cls": False})}}  # logit_scale: the checkpoint's
    init_args: dict[str, Any] = {"backbone": backbone, "num_frames": frames}
    if source == "pig":
        init_args.update({"num_selected": 16, "head_reduction": "max", "mapper": video_mapper_kind(tensors),
                          "learnable_special_tokens": False, "generator_projection": False, "fusion_dropout": 0.1,
                          "query": "generator", "token_selection": "informative", "generator_init": "text"})
    data = {"num_frames": frames, "image_size": image_size, "max_text_length": max_text_length,
            "resize": "squash", "interpolation": "BICUBIC"}
    return {"class_path": RELEASES[source]["tower"], "init_args": init_args}, data


def import_weights(source: str, input: str | Path, output: str | Path, config: str | None = None,
                   tokenizer: str = DEFAULT_TOKENIZER, num_frames: int | None = None, max_text_length: int = 50,
                   trust_checkpoint: bool = False, overwrite: bool = False,
                   checksums: bool = False, special_tokens_from: str | None = None,
                   without_frame_cls: bool = False) -> tuple[Path, dict[str, Any]]:
    """Import the release checkpoint ``input`` into the model folder ``output``; returns it and the report.

    ``special_tokens_from`` (PIG): the CLIP (hub id or folder) the release run started from. The release
    computes its generator's BOS/EOS embeddings once, from that CLIP's token table, and never saves
    them; by default they are read from the file's generator token table instead, which weight decay
    shrinks in multi-GPU training (x0.998 over 7,032 steps in the MSR-VTT recipe).

    ``without_frame_cls`` (CLIP-ViP trained with XPretrain's code, whose frames carry no CLS token): the
    backbone is built without frame CLS tokens, so the model computes what CLIP-ViP's own model does
    (by default a frame CLS is derived from ``class_embedding``: the PIG code's layout, PIG's start)."""
    if source not in RELEASES:
        raise WeightsImportError(f"--source must be one of {sorted(RELEASES)}, got {source!r}")
    input, output = Path(input), Path(output)
    check_output_folder(output, overwrite)
    obj, file_format, read_with = read_input(input, source, trust_checkpoint)
    tensors, container, dropped_top = unwrap(obj, str(input))
    check_source(tensors, source, str(input))
    tok = load_tokenizer(tokenizer)
    clip_fields, config_source = load_config(config, tensors, source)
    clip_config = clip_config_from(clip_fields, tok).to_dict()  # vocabulary and special ids follow the tokenizer
    if without_frame_cls:
        has = any(k.endswith("vision_model.embeddings.cls_in_frames") for k in tensors)
        if source != "clipvip" or has:
            raise WeightsImportError(f"--without_frame_cls is for a CLIP-ViP checkpoint without frame CLS (XPretrain's "
                                     f"code); {input} " + ("has one (cls_in_frames)" if has else f"is --source {source}"))
    spec, data = tower_spec(source, clip_config, tensors, num_frames, max_text_length, not without_frame_cls)
    tower = build_tower(spec, tokenizer)
    target = {f"tower.{k}": v for k, v in tower.state_dict().items()}
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    mapping = map_release(tensors, source, target, bos, tok.eos_token_id, str(input))
    special_tokens = None
    if source == "pig":
        special_tokens = _special_tokens(mapping, special_tokens_from, tok, bos, target)
    elif special_tokens_from is not None:
        raise WeightsImportError("--special_tokens_from applies to --source pig (the generator's BOS/EOS)")
    tower.load_state_dict({k.removeprefix("tower."): v for k, v in mapping.state.items()}, strict=True)
    state = {f"tower.{k}": v for k, v in tower.state_dict().items()}
    digest = file_sha256(input)
    report = {
        "source": source,
        "release": RELEASES[source]["what"],
        "input": str(input.resolve()),
        "input_sha256": digest,
        "input_format": file_format,
        "read_with": read_with,
        "container": container,
        "tower": spec["class_path"],
        "clip_config": config_source,
        "tokenizer": tokenizer,
        "data": data,
        "counts": {"keys_in_file": len(tensors), "mapped": len(mapping.mapped), "derived": len(mapping.derived),
                   "dropped": len(mapping.dropped) + len(dropped_top)},
        "converted_dtypes": {k: f"{n} tensors to float32" for k, n in mapping.converted_dtypes.items()},
        "assumed_from_the_release_recipe": ASSUMED[source],
        **({"frame_cls": "none: the frames carry no CLS token, as in CLIP-ViP's own model (--without_frame_cls)"}
           if without_frame_cls else {}),
        **({"generator_bos_eos_from": special_tokens} if special_tokens else {}),
        "mapped": mapping.mapped,
        "derived": mapping.derived,
        "dropped": dropped_top + mapping.dropped,
    }
    model_source = f"{source} release checkpoint {input.name} (sha256 {digest[:16]})"
    write_model_folder(output, spec, state, tok, data, {REPORT_NAME: report}, model_source=model_source,
                       overwrite=overwrite, checksums=checksums)
    return output, report


def _special_tokens(mapping, clip_source: str | None, tok, bos: int, target: dict[str, torch.Tensor]) -> str:
    """Replace the generator's BOS/EOS by the rows of ``clip_source``'s token table, as the release
    computes them; returns where they came from."""
    key = "tower.generator.special_tokens"
    if clip_source is None:
        return (f"rows {bos} and {tok.eos_token_id} of the file's generator token table (the release never reads "
                "that table: it takes BOS/EOS from the CLIP weights it started from, which weight decay does not "
                "change; pass --special_tokens_from with that CLIP for exactly the release's values)")
    try:
        clip = load_clip_model(pretrained=clip_source)
    except ModelSourceError as exc:
        raise WeightsImportError(f"--special_tokens_from {clip_source}: {exc}") from exc
    table = clip.text_model.embeddings.token_embedding.weight.detach()
    rows = table[[bos, tok.eos_token_id]]
    if tuple(rows.shape) != tuple(target[key].shape):
        raise WeightsImportError(f"--special_tokens_from {clip_source}: its token table gives BOS/EOS of shape "
                                 f"{list(rows.shape)}, the generator expects {list(target[key].shape)}: not the CLIP "
                                 "this checkpoint started from")
    mapping.state[key] = rows.to(target[key].dtype)
    return (f"rows {bos} and {tok.eos_token_id} of the text token embedding of {clip_source} (as the release computes "
            "them at construction), not the file's generator token table")


def summary(output: Path, report: dict[str, Any]) -> str:
    counts = report["counts"]
    lines = [f"imported {report['input']} ({report['source']}, {report['read_with']}) into {output}: "
             f"{report['tower'].rsplit('.', 1)[1]}, CLIP config {report['clip_config']}",
             f"  mapped {counts['mapped']} of {counts['keys_in_file']} keys, derived {counts['derived']}, "
             f"dropped {counts['dropped']}"]
    lines += [f"  derived {d['to']}: {d['how']}" for d in report["derived"]]
    reasons: dict[str, int] = {}
    for d in report["dropped"]:
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
    lines += [f"  dropped {n} x: {reason}" for reason, n in reasons.items()]
    lines += [f"  converted {k}: {v}" for k, v in report["converted_dtypes"].items()]
    if "frame_cls" in report:
        lines.append(f"  frame CLS: {report['frame_cls']}")
    if "generator_bos_eos_from" in report:
        lines.append(f"  generator BOS/EOS: {report['generator_bos_eos_from']}")
    lines.append(f"  every key and what became of it: {output / REPORT_NAME}")
    return "\n".join(lines)


