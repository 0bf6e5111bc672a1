"""Model folders: a whole trained (or imported) model as plain files, nothing to unpickle.

A model folder holds

* ``config.json``: ``{"format": "pig-lightning-model/1", "tower": {class_path, init_args}, "data": {...}}``:
  how to build the tower (its class path and arguments, the backbone's full CLIP config inline) and
  the data settings the model needs (``num_frames``, ``image_size``, ``max_text_length``, ``resize``,
  ``interpolation``);
* ``model.safetensors``: every tensor of the module's ``state_dict`` (names ``tower.*``);
* the tokenizer's files (``tokenizer.json``, ``vocab.json``, ...), which the backbone loads from the
  folder itself;
* a provenance file: ``export_info.json`` (``pig-lightning export --format model``) or
  ``import_report.json`` (``pig-lightning import-weights``), and ``SHA256SUMS`` with ``--checksums``.

:func:`pig_lightning.load_model` rebuilds the module from it; ``index``, ``search``, ``Retriever``
and ``model.init_checkpoint`` take such a folder wherever they take a checkpoint. Only classes of
this package are instantiated from ``config.json`` (a folder from elsewhere cannot name another
callable). This module reads and writes the files; it imports nothing above the models.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pig_lightning.atomic import write_json_atomic
from pig_lightning.settings import DataSettings
from pig_lightning.weights.checkpoint_file import sniff
from pig_lightning.weights.hf_folder import check_output_folder, folder_in_place, verify_checksums

FORMAT = "pig-lightning-model/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_ALLOWED_MODULE = "pig_lightning."


class ModelFolderError(ValueError):
    """A folder given as a model folder is not one, or does not fit; the message says why."""


# ----- recognising and reading -------------------------------------------------------------------
def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder whose ``config.json`` is a pig-lightning model config."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (ValueError, AttributeError, OSError):
        return False


def read_spec(folder: str | Path) -> dict[str, Any]:
    """The folder's ``config.json``, checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"model folder not found: {folder}")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ModelFolderError(f"{folder} is not a model folder: it has no {CONFIG_NAME} (written by "
                               "`pig-lightning export --format model` or `pig-lightning import-weights`)")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFolderError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ModelFolderError(
            f"{path} is not a pig-lightning model config (no \"format\": \"{FORMAT}\"); a Hugging Face CLIP "
            "folder (`pig-lightning export` without --format model) is used as a backbone's `pretrained:`"
        )
    tower = spec.get("tower")
    if not isinstance(tower, dict) or not isinstance(tower.get("class_path"), str):
        raise ModelFolderError(f"{path}: \"tower\" must be {{\"class_path\": ..., \"init_args\": {{...}}}}")
    if not (folder / WEIGHTS_NAME).is_file():
        raise ModelFolderError(f"{folder} lacks {WEIGHTS_NAME}")
    return spec


def read_folder_state(folder: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a model folder (safetensors: nothing is unpickled)."""
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / WEIGHTS_NAME), device=str(device))


def read_weights(path: str | Path) -> dict[str, Any]:
    """Weights to start from (``model.init_checkpoint``): a model folder, a safetensors file, or a
    file written by ``torch.save`` read with ``weights_only=True`` (tensors and plain data only;
    anything else raises :class:`pickle.UnpicklingError`). Returns a dict with the tensors under
    ``"state_dict"``. A checkpoint of the CLIP-ViP or PIG release is named as such, with the command
    that converts it."""
    path = Path(path)
    if path.is_dir():
        read_spec(path)
        return {"state_dict": read_folder_state(path)}
    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if sniff(path) in ("safetensors", "gallery"):
        from safetensors.torch import load_file

        state: Any = {"state_dict": load_file(str(path))}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    tensors = state.get("state_dict", state) if isinstance(state, dict) else None
    keys = [k for k in tensors if isinstance(k, str)] if isinstance(tensors, dict) else []
    if not any(k.startswith("tower.") for k in keys):
        for prefix, source, name in (("encoder.clipmodel.", "pig", "PIG"), ("clipmodel.", "clipvip", "CLIP-ViP")):
            if any(k.startswith(prefix) for k in keys):
                raise ModelFolderError(
                    f"{path} is a checkpoint of the {name} release (keys '{prefix}...'), not of pig-lightning: "
                    f"convert it once with `pig-lightning import-weights --source {source} --input {path} "
                    "--output DIR` and start from DIR"
                )
    return state


# ----- building the tower --------------------------------------------------------------------------
def _resolve(class_path: str) -> type:
    if not class_path.startswith(_ALLOWED_MODULE) or "." not in class_path:
        raise ModelFolderError(f"class_path {class_path!r}: a model folder may only name classes of pig_lightning")
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ModelFolderError(f"class_path {class_path!r} does not exist in this version of pig_lightning") from exc
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelFolderError(f"class_path {class_path!r} is not a model class")
    return cls


def instantiate(spec: Any) -> Any:
    """``{"class_path": ..., "init_args": {...}}`` (nested) -> the object; anything else as is."""
    if isinstance(spec, dict) and "class_path" in spec:
        extra = set(spec) - {"class_path", "init_args"}
        if extra:
            raise ModelFolderError(f"{spec['class_path']}: unexpected entries {sorted(extra)} beside class_path/init_args")
        cls = _resolve(spec["class_path"])
        args = {k: instantiate(v) for k, v in (spec.get("init_args") or {}).items()}
        return cls(**args)
    return spec


def _backbone_args(tower: dict[str, Any]) -> dict[str, Any] | None:
    backbone = (tower.get("init_args") or {}).get("backbone")
    if isinstance(backbone, dict) and isinstance(backbone.get("init_args"), dict):
        return backbone["init_args"]
    return None


def build_tower(tower_spec: dict[str, Any], tokenizer: str, fast: bool = True) -> nn.Module:
    """The tower of ``tower_spec`` with its backbone's tokenizer read from ``tokenizer``. With
    ``fast``, weights are allocated but not initialised (the caller loads all of them)."""
    spec = copy.deepcopy(tower_spec)
    backbone = _backbone_args(spec)
    if backbone is not None:
        backbone["tokenizer"] = tokenizer
        backbone["pretrained"] = None
    if not fast:
        return instantiate(spec)
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return instantiate(spec)


def read_model_folder(folder: str | Path) -> tuple[dict[str, Any], nn.Module, dict[str, torch.Tensor]]:
    """A model folder's checked ``config.json``, its tower (built, weights not yet loaded) and its
    tensors; :func:`pig_lightning.load_model` puts them together."""
    folder = Path(folder)
    spec = read_spec(folder)
    verify_checksums(folder)
    return spec, build_tower(spec["tower"], str(folder)), read_folder_state(folder)


def check_fits(result, folder: str | Path) -> None:
    """Raise unless ``load_state_dict(..., strict=False)`` found every tensor and nothing else."""
    if result.missing_keys or result.unexpected_keys:
        raise ModelFolderError(f"{Path(folder) / WEIGHTS_NAME} does not fit its {CONFIG_NAME}: missing "
                               f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")


def weights_file(path: str | Path) -> Path:
    """The file that identifies a model: a checkpoint file itself, a model folder's weights."""
    path = Path(path)
    return path / WEIGHTS_NAME if path.is_dir() else path


# ----- writing -----------------------------------------------------------------------------------
def tower_spec_of(module) -> dict[str, Any]:
    """How to rebuild ``module``'s tower: its recorded ``class_path``/``init_args`` (``hparams.tower``) with
    the backbone's CLIP config inline (not a path or hub id), no tokenizer path, and the linked data values."""
    spec = module.hparams.get("tower")
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ModelFolderError(
            f"the module does not record how to build its tower {type(module.tower).__name__} (it was built in "
            "Python, not from a config): a model folder cannot describe it"
        )
    spec = json.loads(json.dumps(spec, default=str))
    spec.setdefault("init_args", {})["num_frames"] = module.tower.num_frames
    backbone = getattr(module.tower, "backbone", None)
    args = _backbone_args(spec)
    if args is not None and backbone is not None and hasattr(backbone, "clip"):
        args["config"] = backbone.clip.config.to_dict()
        args["pretrained"] = None
        args.pop("tokenizer", None)
        args["image_size"] = backbone.image_size
        args["max_text_length"] = backbone.max_text_length
    return spec


def write_model_folder(output: str | Path, tower_spec: dict[str, Any], state: dict[str, torch.Tensor],
                       tokenizer, data: dict[str, Any], notes: dict[str, Any], model_source: str | None = None,
                       overwrite: bool = False, checksums: bool = False) -> Path:
    """Write a model folder (under a temporary name, renamed into place when complete). ``notes``:
    extra JSON files by name (provenance)."""
    from safetensors.torch import save_file

    output = Path(output)
    check_output_folder(output, overwrite)
    with folder_in_place(output, checksums) as tmp:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "pig_lightning": FORMAT})
        tokenizer.save_pretrained(str(tmp))
        config = {"format": FORMAT, "tower": tower_spec,
                  "data": DataSettings.from_mapping(data).to_dict(),
                  "model_source": model_source, "weights": WEIGHTS_NAME}
        # the tokenizer does not write config.json; ours must not be overwritten by anything
        write_json_atomic(tmp / CONFIG_NAME, config, indent=2)
        for name, content in notes.items():
            write_json_atomic(tmp / name, content, indent=2)
    return output


__all__ = [
    "FORMAT", "ModelFolderError", "build_tower", "check_fits", "is_model_folder", "read_folder_state",
    "read_model_folder", "read_spec", "read_weights", "tower_spec_of", "weights_file", "write_model_folder",
]
