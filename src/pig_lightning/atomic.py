"""Atomic file writes: a file either appears complete under its name or not at all.

Everything this project writes that a later run trusts (annotation files, reports, gallery
shards, preprocessed videos, settings) goes through :func:`atomic_path`: the content is written
to a hidden temporary file in the same folder and renamed into place, so an interrupted run
never leaves a file that looks finished. :func:`file_sha256` is how such files are identified
(gallery provenance, exported model checksums).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMP_MARKER = ".partial"


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block succeeds and
    is removed when it fails. ``suffix`` (e.g. ``.mp4``) lets writers that pick a format from the
    file name see the right one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temporary_name(path: Path, suffix: str = "") -> Path:
    """A unique hidden name next to ``path``. (Not ``mkstemp``: its 0600 mode would make shared
    data sets unreadable to others; files created by name follow the umask.)"""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_MARKER}{suffix}")


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is a leftover of an interrupted :func:`atomic_path` write."""
    name = Path(path).name
    return name.startswith(".") and TEMP_MARKER in name


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = None) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """The sha256 of a file (read in 1 MiB blocks), or its first ``limit`` hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:limit] if limit else digest.hexdigest()


def check_output_file(output: str | Path, option: str = "--output") -> None:
    """Refuse, before any work, an output file that is a folder or cannot be written."""
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"{option} {output} is a folder; give a file name inside it")
    parent = output.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {output}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {output}: the folder {parent} is not writable")
