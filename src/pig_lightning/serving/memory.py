"""A gallery held for serving: one float32 copy in memory, so a query converts nothing."""

from __future__ import annotations


def prepare(retriever) -> None:
    """Keep a float32 copy of an fp16 gallery: without it every query converts the whole gallery
    (the Retriever converts block by block, which saves memory, not time)."""
    import torch

    if retriever.embeddings.dtype in (torch.float16, torch.bfloat16):
        retriever.embeddings = retriever.embeddings.float()
        retriever.gallery.embeddings = retriever.embeddings  # one copy in memory, not the fp16 one beside it
