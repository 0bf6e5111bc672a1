"""``pig-lightning export``: the CLIP inside a trained checkpoint, as a plain Hugging Face folder.

The folder holds the tower's backbone ``CLIPModel`` (``save_pretrained``, safetensors; its
``logit_scale`` as trained), the tokenizer the model was trained with, and ``export_info.json``
(the source checkpoint and its sha256, the tower, epoch/step, and the parameters that were *not*
exported). It loads with ``transformers.CLIPModel.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``, and starts a new run as ``pretrained: DIR`` +
``tokenizer: DIR`` in a backbone config.

Only CLIP is exported: a tower's own parts — PIG's generator and fusion, X-Pool's pooling head,
the seqTransf transformer, CLIP-ViP's proxy tokens, frame CLS and temporal embedding — are listed
in ``export_info.json`` by parameter-name prefix, not written. The folder is written under a
temporary name next to ``DIR`` and renamed into place: it appears complete or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import CLIPModel

from pig_lightning.atomic import file_sha256, write_json_atomic
from pig_lightning.load import load_model
from pig_lightning.settings import DataSettings
from pig_lightning.weights.checkpoint_file import CheckpointError
from pig_lightning.weights.folder import ModelFolderError, tower_spec_of, weights_file, write_model_folder
from pig_lightning.weights.hf_folder import ModelSourceError, check_output_folder, folder_in_place, load_tokenizer

CLIP_PREFIX = "tower.backbone.clip."


class ExportError(ValueError):
    """Bad input to ``export``: the message says what and which file."""


def export_checkpoint(ckpt_path: str | Path, output: str | Path, overwrite: bool = False,
                      checksums: bool = False) -> Path:
    """Write the CLIP of the checkpoint ``ckpt_path`` (and its tokenizer) to the folder ``output``
    (with ``checksums``, also its ``SHA256SUMS``)."""
    ckpt_path, output = Path(ckpt_path), Path(output)
    check_output_folder(output, overwrite, inside=ckpt_path)
    module = load_checkpoint(ckpt_path)
    clip = getattr(getattr(module.tower, "backbone", None), "clip", None)
    if not isinstance(clip, CLIPModel):
        raise ExportError(f"the tower {type(module.tower).__name__} of {ckpt_path} has no CLIP backbone "
                          "(tower.backbone.clip): nothing to export")
    backbone = module.tower.backbone
    tokenizer = load_tokenizer(backbone.tokenizer_source)
    info = export_info(module, ckpt_path)
    with folder_in_place(output, checksums) as tmp:
        clip.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(tmp / "export_info.json", info, indent=2)
    return output


def load_checkpoint(ckpt_path: Path):
    """The module, through the project's checkpoint loading (torch >= 2.6 unpickles only tensors and plain
    data there); any failure names the file."""
    if not ckpt_path.is_file():
        raise ExportError(f"checkpoint not found: {ckpt_path}")
    try:
        return load_model(ckpt_path)
    except ModelSourceError as exc:
        raise ExportError(f"the model of {ckpt_path} could not be rebuilt: {exc}") from exc
    except CheckpointError as exc:  # the file is something else, and the message says what
        raise ExportError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - whatever the file is, say which one and why in one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain data, which are never unpickled"
        else:
            reason = f"{type(exc).__name__}: {reason}"
        raise ExportError(f"{ckpt_path} is not a Lightning checkpoint of pig_lightning's RetrievalModule "
                          f"({reason})") from exc


def dropped_prefixes(names: list[str], kept: str = CLIP_PREFIX) -> list[str]:
    """The shortest name prefixes that cover every name not under ``kept`` and no name under it."""
    kept_names = [n for n in names if n.startswith(kept)]
    prefixes: list[str] = []
    for name in names:
        if name.startswith(kept) or any(name == p or name.startswith(p + ".") for p in prefixes):
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if not any(k.startswith(prefix + ".") for k in kept_names):
                prefixes.append(prefix)
                break
    return prefixes


def export_info(module, ckpt_path: Path) -> dict[str, Any]:
    state = module.state_dict()
    dropped = {p: sum(t.numel() for n, t in state.items() if n == p or n.startswith(p + "."))
               for p in dropped_prefixes(list(state))}
    backbone = module.tower.backbone
    counters = checkpoint_counters(ckpt_path)
    return {
        "source_checkpoint": str(ckpt_path.resolve()),
        "checkpoint_sha256": file_sha256(ckpt_path),
        "tower": f"{type(module.tower).__module__}.{type(module.tower).__name__}",
        "backbone": f"{type(backbone).__module__}.{type(backbone).__name__}",
        "epoch": counters.get("epoch"),
        "global_step": counters.get("global_step"),
        "exported": "tower.backbone.clip (CLIPModel, logit_scale as trained) and the tokenizer "
                    f"{backbone.tokenizer_source!r} the model was trained with",
        "not_exported": dropped,  # parameter-name prefix -> number of values in the checkpoint
        "trained_with": {"model_source": backbone.model_source, "tokenizer": backbone.tokenizer_source,
                         "image_size": backbone.image_size, "max_text_length": backbone.max_text_length,
                         "num_frames": module.tower.num_frames},
        "use_as": "backbone init_args pretrained: <this folder>, tokenizer: <this folder>, "
                  "logit_scale_init: null (the default re-initialises logit_scale to ln 100)",
    }


def checkpoint_counters(ckpt_path: Path) -> dict[str, int]:
    """``epoch`` / ``global_step`` of a checkpoint that already loaded (weights-only, tensors mapped, not read)."""
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - counters are informative only
        return {}
    return {k: checkpoint[k] for k in ("epoch", "global_step") if isinstance(checkpoint.get(k), int)}


def export_model(ckpt_path: str | Path, output: str | Path, overwrite: bool = False, checksums: bool = False) -> Path:
    """``pig-lightning export --format model``: the whole trained model of ``ckpt_path`` as a model folder."""
    ckpt_path, output = Path(ckpt_path), Path(output)
    check_output_folder(output, overwrite, inside=ckpt_path)
    module = load_checkpoint(ckpt_path)
    spec = tower_spec_of(module)
    backbone = getattr(module.tower, "backbone", None)
    if backbone is None or not hasattr(backbone, "tokenizer_source"):
        raise ModelFolderError(f"the tower {type(module.tower).__name__} of {ckpt_path} has no CLIP backbone")
    counters = checkpoint_counters(ckpt_path) if ckpt_path.is_file() else {}
    info = {
        "source_checkpoint": str(ckpt_path.resolve()),
        "checkpoint_sha256": file_sha256(weights_file(ckpt_path)),
        "tower": spec["class_path"],
        "epoch": counters.get("epoch"),
        "global_step": counters.get("global_step"),
        "exported": "every tensor of the model (model.safetensors), how to build it and its data settings "
                    "(config.json), the tokenizer it was trained with",
        "use_as": "--ckpt_path of index/search, Retriever(index, DIR), model.init_checkpoint: DIR, "
                  "pig_lightning.load_model(DIR)",
    }
    return write_model_folder(output, spec, module.state_dict(), load_tokenizer(backbone.tokenizer_source),
                              DataSettings.of_module(module).to_dict(), {"export_info.json": info},
                              model_source=backbone.model_source, overwrite=overwrite, checksums=checksums)
