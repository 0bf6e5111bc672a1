"""A small CLIP-format BPE tokenizer (``vocab.json`` + ``merges.txt``) for the synthetic set.

It covers printable ASCII character by character (so any caption can be encoded) and
merges every word of the synthetic vocabulary into a single token, so a tiny randomly
initialised text tower only has to learn a few dozen word embeddings. The files are
read by the real ``transformers.CLIPTokenizer`` like any CLIP tokenizer folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"


def _apply_bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Segment one word the way a BPE tokenizer does: repeatedly merge the best-ranked pair."""
    pieces = list(word[:-1]) + [word[-1] + END_OF_WORD]
    while len(pieces) > 1:
        pairs = [(ranks.get((a, b), len(ranks)), i) for i, (a, b) in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def write_clip_tokenizer(folder: str | Path, words: Iterable[str]) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` for a CLIP BPE tokenizer into ``folder``.

    Every word in ``words`` (lower-case ASCII) becomes a single token; everything else
    falls back to single characters.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    tokens: list[str] = [BOS_TOKEN, EOS_TOKEN]
    tokens += chars + [c + END_OF_WORD for c in chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in sorted({w.lower() for w in words}):
        if not word or not all(33 <= ord(c) < 127 for c in word):
            raise ValueError(f"tokenizer words must be printable ASCII without spaces, got {word!r}")
        # Merges appended at the lowest priority only combine pieces of words that are not
        # yet single tokens, so words finished earlier keep their segmentation.
        pieces = _apply_bpe(word, ranks)
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
    for left, right in merges:
        merged = left + right
        if merged not in tokens:
            tokens.append(merged)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0, ensure_ascii=True))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n")
    return folder
