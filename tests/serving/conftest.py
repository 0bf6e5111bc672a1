"""Fixtures of the serve suite: a tiny checkpoint trained here (2 steps) and a gallery of the
synthetic validation videos built from it, with thumbnails, shared by the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pig_lightning.retrieval import build_index, list_videos
from pig_lightning.retrieval.thumbnails import write_thumbnails



@pytest.fixture(scope="session")
def served_ckpt(tiny_checkpoint) -> Path:
    return tiny_checkpoint("meanp")


@pytest.fixture(scope="session")
def served_gallery(tmp_path_factory, synthetic_root, served_ckpt) -> Path:
    """The 10 validation videos, fp16, 2 thumbnails of 16 px each (``<gallery>.thumbs.json``)."""
    out = tmp_path_factory.mktemp("serve_gallery") / "g.safetensors"
    videos = Path(synthetic_root) / "val.jsonl"
    build_index(served_ckpt, videos, out, num_workers=0, progress=False)
    write_thumbnails(list_videos(videos), out, per_video=2, size=16, progress=False)
    return out
