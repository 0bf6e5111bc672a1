"""Galleries record where each video came from (root, relative path, clip start/end) for
playback; galleries written before that load without it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.retrieval import Gallery
from pig_lightning.retrieval.gallery import FORMAT, merge_shards
from pig_lightning.retrieval.indexer import GalleryItem, source_of


def small_gallery(ids, **extra) -> Gallery:
    return Gallery(torch.randn(len(ids), 4).half(), list(ids), {"tower": "T", "embed_dim": 4}, {"num_frames": 2}, **extra)


def test_index_records_root_paths_and_clips(served_gallery, synthetic_root):
    gallery = Gallery.load(served_gallery)
    records = read_jsonl(Path(synthetic_root) / "val.jsonl")
    assert gallery.video_root == os.path.abspath(synthetic_root)
    assert gallery.sources == [{"path": r.video, "start": None, "end": None} for r in records]
    assert all((Path(gallery.video_root) / s["path"]).is_file() for s in gallery.sources)


def test_source_of_a_clip_and_of_a_file_outside_the_root(tmp_path):
    root = tmp_path / "root"
    assert source_of(GalleryItem("a", root / "sub" / "a.mp4", 1.5, 4.0), root) == \
        {"path": "sub/a.mp4", "start": 1.5, "end": 4.0}
    outside = tmp_path / "elsewhere" / "b.mp4"
    assert source_of(GalleryItem("b", root / ".." / "elsewhere" / "b.mp4"), root)["path"] == str(outside)


def test_round_trip_and_old_galleries(tmp_path):
    sources = [{"path": "a.mp4", "start": 0.5, "end": 2.0}, {"path": "b.mp4", "start": None, "end": None}]
    saved = small_gallery(["a", "b"], video_root="/data/videos", sources=sources).save(tmp_path / "new.safetensors")
    loaded = Gallery.load(saved)
    assert loaded.video_root == "/data/videos" and loaded.sources == sources
    old = small_gallery(["a", "b"]).save(tmp_path / "old.safetensors")  # what earlier versions wrote
    assert Gallery.load(old).sources is None and Gallery.load(old).video_root is None


@pytest.mark.parametrize("sources, message", [
    ("not json", "not valid JSON"),
    (json.dumps([{"path": "a.mp4"}]), "one entry per video"),
    (json.dumps([{"path": 3}, {"path": "b"}]), "'sources' entry must be"),
    (json.dumps([{"path": "a", "start": "x"}, {"path": "b"}]), "'sources' entry must be"),
    (json.dumps([{"path": "a", "start": True}, {"path": "b"}]), "'sources' entry must be"),
    ('[{"path": "a", "start": NaN}, {"path": "b"}]', "'sources' entry must be"),
    ('[{"path": "a", "end": Infinity}, {"path": "b"}]', "'sources' entry must be"),
])
def test_malformed_sources_are_refused(tmp_path, sources, message):
    path = tmp_path / "bad.safetensors"
    save_file({"embeddings": torch.zeros(2, 4)}, str(path),
              metadata={"format": FORMAT, "video_ids": json.dumps(["a", "b"]), "model": "{}", "preprocessing": "{}",
                        "sources": sources})
    with pytest.raises(ValueError, match=message):
        Gallery.load(path)


def test_merge_keeps_sources_only_when_every_shard_has_them():
    one = small_gallery(["a"], video_root="/r", sources=[{"path": "a.mp4", "start": None, "end": None}])
    two = small_gallery(["b"], video_root="/r", sources=[{"path": "b.mp4", "start": 1.0, "end": 2.0}])
    merged = merge_shards([one, two])
    assert merged.video_root == "/r" and [s["path"] for s in merged.sources] == ["a.mp4", "b.mp4"]
    assert merge_shards([one, small_gallery(["b"])]).sources is None
    assert merge_shards([one, small_gallery(["b"], video_root="/other", sources=two.sources)]).sources is None
