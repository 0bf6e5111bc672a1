"""Checkpoint files: what a checkpoint carries besides its weights, and what a file given as one is.

A checkpoint written by ``pig-lightning fit`` carries, under the key ``pig_lightning``, what is
needed to rebuild its model besides the weights: the full CLIP config (not a path to a JSON file),
the tokenizer's files (also for a hub id, whose id is kept too) and the data settings the model
was trained with. :meth:`RetrievalModule.load_from_checkpoint
<pig_lightning.module.RetrievalModule.load_from_checkpoint>` restores them, so ``index``,
``search``, ``export``, :class:`~pig_lightning.retrieval.Retriever` and ``load_from_checkpoint``
work from any folder and on another machine with nothing but the file. The tokenizer files are
written once to a content-addressed folder under the cache (``$PIG_LIGHTNING_CACHE``, default
``$XDG_CACHE_HOME/pig-lightning`` or ``~/.cache/pig-lightning``).

:func:`read_checkpoint` opens a file as a checkpoint and, when it is something else (a gallery,
a text file, a folder, a truncated download, another program's checkpoint), says what it is.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from pig_lightning.atomic import temporary_name
from pig_lightning.file_checks import LFSPointerError, refuse_lfs_pointer

FORMAT = "pig-lightning-checkpoint/1"
KEY = "pig_lightning"
GALLERY_FORMAT = "pig-lightning-gallery/1"  # also in retrieval.gallery (kept import-free here)


class CheckpointError(ValueError):
    """A file given as a checkpoint is not a usable pig-lightning checkpoint; the message says why."""


# ----- what is a file? ----------------------------------------------------------------------------
def sniff(path: str | Path) -> str:
    """``"missing"``, ``"folder"``, ``"empty"``, ``"zip"`` (torch.save), ``"pickle"`` (legacy torch.save),
    ``"gallery"``, ``"safetensors"`` or ``"other"``, from the first bytes of ``path``."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "folder"
    with open(path, "rb") as f:
        head = f.read(8)
        if not head:
            return "empty"
        if head[:4] == b"PK\x03\x04":
            return "zip"
        # safetensors first: its 8-byte header length may start with 0x80 (e.g. 3,712 bytes)
        if len(head) == 8:
            (size,) = struct.unpack("<Q", head)
            if 2 <= size <= min(path.stat().st_size - 8, 100_000_000) and f.read(1) == b"{":
                try:
                    header = json.loads(b"{" + f.read(size - 1))
                except ValueError:
                    header = None
                if isinstance(header, dict):
                    meta = header.get("__metadata__") or {}
                    return "gallery" if meta.get("format") == GALLERY_FORMAT else "safetensors"
        if head[:1] == b"\x80":
            return "pickle"
    return "other"


def _text_or_binary(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file"
    return "a text file"


def read_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = True) -> dict[str, Any]:
    """The checkpoint dict of ``path`` (tensors memory-mapped: cheap to open, also when large),
    or a :class:`CheckpointError` that says what the file is instead."""
    path = Path(path)
    kind = sniff(path)
    if kind == "missing":
        raise CheckpointError(f"checkpoint not found: {path}")
    if kind == "folder":
        raise CheckpointError(f"{path} is a folder, not a checkpoint file (a checkpoint is a .ckpt file written by "
                              "`pig-lightning fit`; a folder written by `pig-lightning export` is used as `pretrained:`)")
    if kind == "empty":
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: the file is empty (0 bytes)")
    if kind == "gallery":
        raise CheckpointError(f"{path} is a gallery (written by `pig-lightning index`), not a checkpoint")
    if kind == "safetensors":
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: it is a safetensors weights file (a "
                              "checkpoint is a .ckpt written by `pig-lightning fit`)")
    if kind == "other":
        try:
            refuse_lfs_pointer(path)
        except LFSPointerError as exc:
            raise CheckpointError(str(exc)) from None
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: it is {_text_or_binary(path)}, "
                              "not a file written by torch.save")
    if kind == "zip" and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a readable checkpoint: the file is truncated or corrupt "
                              "(its zip directory is missing; was the download or copy interrupted?)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap and kind == "zip")
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: it holds objects other than tensors and "
                              "plain data, which are never unpickled (torch.load weights_only=True)") from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt): "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: a PyTorch file without a 'state_dict' "
                              "(pig-lightning reads the .ckpt files `pig-lightning fit` writes)")
    hparams = checkpoint.get("hyper_parameters") or {}
    if KEY not in checkpoint and "tower" not in hparams:
        raise CheckpointError(f"{path} is not a pig-lightning checkpoint: no tower in its hyper-parameters and no "
                              "'pig_lightning' entry (another program's checkpoint?)")
    return checkpoint


# ----- writing: what travels with the weights --------------------------------------------------
def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """The files ``tokenizer.save_pretrained`` writes, by name."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def embedded_entry(backbone, files: dict[str, bytes], training: dict[str, Any]) -> dict[str, Any]:
    """The ``pig_lightning`` entry of a checkpoint for a tower with this ``backbone`` and the
    tokenizer ``files`` (:func:`tokenizer_files`)."""
    return {
        "format": FORMAT,
        "clip_config": backbone.clip.config.to_dict(),
        "model_source": backbone.model_source,
        "tokenizer": {"source": backbone.tokenizer_source, "files": files},
        "training": training,
    }


# ----- loading: rebuild from the entry -----------------------------------------------------------
def cache_dir() -> Path:
    if os.environ.get("PIG_LIGHTNING_CACHE"):
        return Path(os.environ["PIG_LIGHTNING_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pig-lightning"


def materialise_tokenizer(files: dict[str, bytes]) -> Path:
    """A folder holding ``files``, named by their content (written once, atomically)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    for base in (cache_dir(), Path(tempfile.gettempdir()) / "pig-lightning"):
        folder = base / "tokenizers" / digest.hexdigest()[:24]
        if folder.is_dir():
            return folder
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_name(folder)
            tmp.mkdir()
            for name, data in files.items():
                (tmp / Path(name).name).write_bytes(data)
            try:
                os.replace(tmp, folder)
            except OSError:  # another process was first
                shutil.rmtree(tmp, ignore_errors=True)
            return folder
        except OSError:
            continue
    raise CheckpointError(f"could not write the checkpoint's tokenizer files under {cache_dir()} or the temp folder")


def restored_hparams(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Overrides for ``load_from_checkpoint``: the tower rebuilt from the embedded CLIP config and
    tokenizer (no file the run used is needed), and no ``init_checkpoint`` (the weights are in the
    checkpoint). Checkpoints written before the entry existed keep their recorded paths."""
    hparams = checkpoint.get("hyper_parameters") or {}
    tower = hparams.get("tower")
    if not isinstance(tower, dict) or "class_path" not in tower:
        raise CheckpointError(
            f"{path} does not record how to build its tower (the module was built in Python, not from a config): "
            "pass it, RetrievalModule.load_from_checkpoint(path, tower=...)"
        )
    overrides: dict[str, Any] = {"init_checkpoint": None}
    entry = checkpoint.get(KEY)
    backbone = (tower.get("init_args") or {}).get("backbone")
    if isinstance(entry, dict) and isinstance(backbone, dict) and isinstance(backbone.get("init_args"), dict):
        tower = copy.deepcopy(tower)
        init_args = tower["init_args"]["backbone"]["init_args"]
        init_args["config"] = entry["clip_config"]
        init_args["pretrained"] = None
        init_args["tokenizer"] = str(materialise_tokenizer(entry["tokenizer"]["files"]))
        overrides["tower"] = tower
    return overrides


def training_settings(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The data settings a checkpoint was trained with, as recorded (empty for older checkpoints);
    :class:`~pig_lightning.settings.DataSettings` reads them."""
    entry = checkpoint.get(KEY)
    return dict(entry.get("training") or {}) if isinstance(entry, dict) else {}
