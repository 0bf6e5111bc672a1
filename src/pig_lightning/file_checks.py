"""What an input file really is, before it is parsed: a Git LFS pointer instead of the file, JSON
objects that repeat a key, captions that are blank once invisible characters are removed."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class LFSPointerError(ValueError):
    """A file is a Git LFS pointer: the repository was cloned without fetching its large files."""


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice; ``json`` would silently keep the last value."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def refuse_lfs_pointer(path: str | Path) -> None:
    """Raise :class:`LFSPointerError` when ``path`` is a Git LFS pointer file."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(LFS_POINTER))
    except OSError:
        return  # missing or unreadable: the caller's own error says so
    if head == LFS_POINTER:
        raise LFSPointerError(f"{path} is a Git LFS pointer (a small text file that stands for the real one), not "
                              "the file itself: fetch it with `git lfs pull` in the repository it came from")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json``: a dict, or :class:`DuplicateKeyError` naming the repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def visible(text: str) -> str:
    """``text`` without surrounding white space and without invisible format characters (zero-width
    space and joiners, byte-order marks, word joiners: Unicode category Cf)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()
