"""Hugging Face folders: CLIP models and tokenizers read from a hub id, a local folder or a config;
folders written in place with their ``SHA256SUMS``, and those checksums verified on reading.

Model weights and tokenizers are never fetched implicitly in tests or CI
(``HF_HUB_OFFLINE=1``); when something is not found, the error says what was looked for
and how to provide it. transformers 5 can silently return a 2-token tokenizer for an
unreachable id or an empty folder, so the tokenizer size is checked after loading.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, CLIPConfig, CLIPModel

from pig_lightning.atomic import file_sha256, temporary_name

MIN_TOKENIZER_SIZE = 16
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


class ModelSourceError(OSError):
    """A model or tokenizer could not be found or is unusable."""


def _how_to_provide(kind: str, source: str) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    where = "the Hugging Face cache (HF_HUB_OFFLINE=1 is set)" if offline else "the Hugging Face hub or cache"
    return (
        f"could not load the {kind} {source!r}: it is not a local folder and was not found in {where}. "
        f"Provide a local folder written by `save_pretrained` (on a machine with network: "
        f"`hf download {source} --local-dir <folder>`), pre-fill the HF cache, "
        + ("or build a randomly initialised CLIP from a config (`config:`)." if kind == "CLIP model" else
           "or point `tokenizer` at a folder holding vocab.json and merges.txt.")
    )


def load_tokenizer(source: str):
    """A tokenizer from a hub id or a local folder; checks that it is a real vocabulary."""
    path = Path(source).expanduser()
    local = path.exists() or source.startswith((".", "/", "~"))
    if local and not path.is_dir():
        raise ModelSourceError(f"tokenizer folder not found: {path}")
    if local and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelSourceError(
            f"the folder {path} holds no tokenizer: expected one of {', '.join(TOKENIZER_FILES)} "
            "(a folder written by `save_pretrained`)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if local else source)
    except (OSError, ValueError) as exc:
        if local:
            raise ModelSourceError(f"could not load a tokenizer from the folder {path}: {exc}") from exc
        raise ModelSourceError(_how_to_provide("tokenizer", source)) from exc
    if len(tokenizer) < MIN_TOKENIZER_SIZE:
        if local:
            raise ModelSourceError(
                f"the tokenizer folder {path} yielded only {len(tokenizer)} tokens: it lacks vocab.json/merges.txt "
                "or tokenizer.json"
            )
        raise ModelSourceError(_how_to_provide("tokenizer", source) + f" (got a {len(tokenizer)}-token stub)")
    if tokenizer.eos_token_id is None:
        raise ModelSourceError(f"the tokenizer {source!r} has no end-of-text token, which CLIP pools at")
    return tokenizer


def clip_config_from(config: str | dict[str, Any], tokenizer=None) -> CLIPConfig:
    """A ``CLIPConfig`` from a JSON file (``CLIPConfig.to_json_file``) or a dict of its fields.

    With a tokenizer, the text vocabulary and special-token ids follow it, so a randomly
    initialised model pools at the tokenizer's end-of-text token.
    """
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ModelSourceError(f"CLIP config file not found: {path}")
        try:
            fields = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelSourceError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    else:
        fields = json.loads(json.dumps(config))  # deep copy of plain data
    text = dict(fields.pop("text_config", {}) or {})
    vision = dict(fields.pop("vision_config", {}) or {})
    if tokenizer is not None:
        text["vocab_size"] = len(tokenizer)
        text["eos_token_id"] = tokenizer.eos_token_id
        text["bos_token_id"] = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        text["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return CLIPConfig(text_config=text, vision_config=vision, **fields)


def load_clip_model(pretrained: str | None = None, config: str | dict[str, Any] | None = None,
                    tokenizer=None) -> CLIPModel:
    """Exactly one of ``pretrained`` (hub id or ``save_pretrained`` folder) or ``config``."""
    if (pretrained is None) == (config is None):
        raise ValueError("give exactly one of `pretrained` (hub id or local folder) or `config` (random weights)")
    if config is not None:
        return CLIPModel(clip_config_from(config, tokenizer))
    path = Path(pretrained).expanduser()
    local = path.exists() or pretrained.startswith((".", "/", "~"))
    if local and not path.is_dir():
        raise ModelSourceError(f"CLIP model folder not found: {path}")
    if local:
        verify_checksums(path)
    try:
        model = CLIPModel.from_pretrained(str(path) if local else pretrained)
    except OSError as exc:
        if local:
            raise ModelSourceError(f"could not load a CLIP model from the folder {path}: {exc}") from exc
        raise ModelSourceError(_how_to_provide("CLIP model", pretrained)) from exc
    if tokenizer is not None:
        check_tokenizer_fits(tokenizer, model, str(path / "config.json") if local else f"{pretrained!r} (hub id)")
    return model


CHECKSUMS = "SHA256SUMS"
NOT_CHECKSUMMED = ("export_info.json", CHECKSUMS)  # export_info.json names local paths


class OutputFolderError(ValueError):
    """A folder to write is a file, holds something and may not be replaced, or holds the input."""


def check_output_folder(output: str | Path, overwrite: bool, inside: str | Path | None = None,
                        inside_name: str = "the checkpoint") -> None:
    """Refuse to write ``output`` when it is a file, or a folder with files and no ``overwrite``, or
    when replacing it would delete ``inside`` (the file being read, named ``inside_name``)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputFolderError(f"--output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise OutputFolderError(f"--output {output} exists and is not empty; pass --overwrite to replace it")
        if inside is not None and output.resolve() in Path(inside).resolve().parents:
            raise OutputFolderError(f"--overwrite would delete {inside_name} {inside}, which is inside {output}")


def write_checksums(folder: Path) -> None:
    """``SHA256SUMS`` (``sha256sum`` format) of the model and tokenizer files of ``folder`` (not the
    export notes, which name local paths); :func:`verify_checksums` checks them on loading."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in NOT_CHECKSUMMED)
    lines = [f"{file_sha256(folder / name)}  {name}" for name in names]
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n")


@contextmanager
def folder_in_place(output: Path, checksums: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``output`` to write into; when the block ends without an error it
    becomes ``output`` (``SHA256SUMS`` with ``checksums``, the usual permissions, an atomic
    replace), and it is removed in any case."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(output)
    tmp.mkdir()
    try:
        yield tmp
        if checksums:
            write_checksums(tmp)
        follow_umask(tmp)
        replace_folder(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def follow_umask(folder: Path) -> None:
    """Give the written files the usual permissions (safetensors writes ``model.safetensors`` 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def replace_folder(tmp: Path, output: Path) -> None:
    """Rename the finished ``tmp`` to ``output``; an existing ``output`` is moved aside first and
    deleted only after the rename, or put back when it fails."""
    if not output.exists():
        os.rename(tmp, output)
        return
    old = temporary_name(output)
    os.rename(output, old)
    try:
        os.rename(tmp, output)
    except BaseException:
        os.rename(old, output)
        raise
    shutil.rmtree(old, ignore_errors=True)


def verify_checksums(folder: Path) -> None:
    """Check the files a folder's ``SHA256SUMS`` lists (``sha256sum`` format), if it has one.

    A model folder shipped with the project (e.g. the quality benchmark's pretrained tiny CLIP)
    carries one, so a changed or corrupted file is refused before it is loaded.
    """
    listing = folder / CHECKSUMS
    if not listing.is_file():
        return
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        expected, _, name = line.strip().partition("  ")
        if len(expected) != 64 or not name:
            raise ModelSourceError(f"{listing}:{number}: expected '<sha256>  <file name>', got {line!r}")
        target = folder / name.lstrip("*")
        if not target.is_file():
            raise ModelSourceError(f"{listing}:{number}: {target} is missing")
        digest = file_sha256(target)
        if digest != expected:
            raise ModelSourceError(
                f"{target} does not match its checksum in {listing} (sha256 {digest}, expected {expected}): the "
                "file was changed or corrupted; regenerate the folder with the command its README names"
            )


def check_tokenizer_fits(tokenizer, model: CLIPModel, model_name: str) -> None:
    """Raise when ``tokenizer`` produces ids the CLIP text tower has no embedding for: more
    tokens than its ``vocab_size``, or an end/start-of-text id outside it."""
    vocab_size = model.config.text_config.vocab_size
    special = {"eos": tokenizer.eos_token_id, "bos": tokenizer.bos_token_id}
    outside = {name: i for name, i in special.items() if i is not None and not 0 <= i < vocab_size}
    if len(tokenizer) <= vocab_size and not outside:
        return
    if len(tokenizer) > vocab_size:
        problem = f"the tokenizer has {len(tokenizer)} tokens"
    else:
        ids = " and ".join(f"{name} id {i}" for name, i in outside.items())
        problem = f"the tokenizer's {ids} {'is' if len(outside) == 1 else 'are'} outside the model's vocabulary"
    raise ModelSourceError(
        f"the tokenizer {tokenizer.name_or_path!r} and the CLIP model {model_name} (text vocab_size {vocab_size}) "
        f"do not belong together: {problem}. Use the tokenizer the model was trained with: set "
        "`data.tokenizer` (the CLI passes it on to `model.tower.init_args.backbone.init_args.tokenizer`; in Python, "
        "the backbone's `tokenizer`) to it; for a folder written by `pig-lightning export`, the folder itself"
    )
