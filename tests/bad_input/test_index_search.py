"""index and search: galleries checked at load, nothing half-made, queries cut with a word."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pig_lightning.retrieval import Gallery, build_index

from tests.helpers import synthetic_rows, write_jsonl


def _edit_gallery(gallery: Path, target: Path, embeddings=None, **metadata_edits) -> Path:
    from safetensors import safe_open

    with safe_open(str(gallery), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = load_file(str(gallery))
    for key, value in metadata_edits.items():
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    save_file({"embeddings": tensors["embeddings"] if embeddings is None else embeddings}, str(target),
              metadata=metadata)
    return target


def _search(run, index, ckpt, *extra):
    return run("search", "--index", index, "--ckpt_path", ckpt, *(extra if extra != () else ("--query", "a red circle")))


def test_a_nan_row_is_refused_at_load(gallery, ckpt, tmp_path, run):
    embeddings = load_file(str(gallery))["embeddings"].clone()
    embeddings[3, 0] = float("nan")
    embeddings[7, 5] = float("inf")
    bad = _edit_gallery(gallery, tmp_path / "nan.safetensors", embeddings)
    result = _search(run, bad, ckpt)
    assert result.code == 2 and "2 of 10 videos have non-finite (NaN or infinite) embeddings" in result.err
    assert "Traceback" not in result.err and result.out == ""


def test_index_never_writes_non_finite_embeddings(ckpt, synthetic_root, tmp_path, monkeypatch):
    from pig_lightning.module import RetrievalModule

    def broken(self, frames):
        out = torch.ones(frames.shape[0], 32)
        out[0, 0] = float("nan")
        return out

    monkeypatch.setattr(RetrievalModule, "encode_videos", broken)
    out = tmp_path / "g.safetensors"
    with pytest.raises(ValueError, match=r"produced non-finite \(NaN or infinite\) embeddings for 2 of 10 videos"):
        build_index(ckpt, Path(synthetic_root) / "val.jsonl", out, batch_size=5, num_workers=0, progress=False)
    assert not out.exists() and not any((tmp_path / "g.safetensors.shards").glob("*.safetensors"))


@pytest.mark.parametrize("edit, expected", [
    (dict(embeddings=torch.zeros(10, 16)), "the embeddings are 16 wide, its metadata says 32"),
    (dict(video_ids=json.dumps(["a"] * 10)), "video id 'a' appears twice in the gallery"),
    (dict(video_ids=json.dumps(["a", "b"])), "2 video ids for 10 embeddings"),
    (dict(video_ids=None), "the gallery metadata lacks 'video_ids'"),
    (dict(model="{not json"), "the gallery metadata 'model' is not valid JSON"),
    (dict(format="something/2"), "is not a pig-lightning gallery (format 'something/2')"),
    (dict(embeddings=torch.zeros(10, dtype=torch.int64)), "gallery embeddings must be a float [videos, dim]"),
], ids=["width", "duplicate-ids", "id-count", "no-ids", "bad-json", "format", "ints"])
def test_a_malformed_gallery_is_refused(gallery, ckpt, tmp_path, run, edit, expected):
    bad = _edit_gallery(gallery, tmp_path / "bad.safetensors", **edit)
    result = _search(run, bad, ckpt)
    assert result.code == 2 and expected in result.err, result.err


def test_a_gallery_of_the_wrong_width_with_matching_metadata(gallery, ckpt, tmp_path, run):
    model = json.loads(_metadata(gallery)["model"]) | {"embed_dim": 16}
    bad = _edit_gallery(gallery, tmp_path / "w.safetensors", torch.zeros(10, 16), model=json.dumps(model))
    result = _search(run, bad, ckpt)
    assert result.code == 2 and "model.embed_dim: gallery 16 vs checkpoint 32" in result.err


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


@pytest.mark.parametrize("make, expected", [
    (lambda p, ckpt: p.write_text("video1 0.1 0.2\n"), "is not a pig-lightning gallery: it is not a safetensors file"),
    (lambda p, ckpt: p.write_bytes(Path(ckpt).read_bytes()), "is a checkpoint (or another torch.save file), not a gallery"),
    (lambda p, ckpt: p.mkdir(), "is a folder, not a gallery file"),
    (lambda p, ckpt: None, "gallery file not found"),
    (lambda p, ckpt: save_file({"w": torch.zeros(2)}, str(p)), "is not a pig-lightning gallery (format None)"),
], ids=["text", "checkpoint", "folder", "missing", "other-safetensors"])
def test_a_wrong_file_as_gallery_is_named(ckpt, tmp_path, run, make, expected):
    bad = tmp_path / "g.safetensors"
    make(bad, ckpt)
    result = _search(run, bad, ckpt)
    assert result.code == 2 and expected in result.err and len(result.err.strip().splitlines()) == 1


def test_a_truncated_gallery(gallery, ckpt, tmp_path, run):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(gallery.read_bytes()[:-100])
    result = _search(run, cut, ckpt)
    assert result.code == 2 and "is not a readable gallery file (truncated or corrupt)" in result.err


def test_a_long_query_is_cut_with_a_word_and_not_echoed_whole(gallery, ckpt, run, caplog):
    query = "a red circle moves left " * 2000
    with caplog.at_level(logging.WARNING):
        result = _search(run, gallery, ckpt, "--query", query, "--query", "a blue cross", "--top_k", "1")
    assert result.code == 0
    assert [r.getMessage().split(" (")[0] for r in caplog.records if "cut to" in r.getMessage()] == [
        "query 1 cut to 20 tokens"]
    assert f"... ({len(query):,} characters)" in result.out and len(result.out) < 1000


@pytest.mark.parametrize("extra, expected", [
    (("--query", "a red circle", "--top_k", "0"), "top-k must be >= 1, got 0"),
    (("--query", "   "), "empty query at position(s) [0]"),
    (("--top_k", "3"), "give at least one --query or a --queries_file"),
    (("--queries_file", "absent.txt"), "queries file not found: absent.txt"),
    (("--query", "x", "--backend", "annoy"), "invalid choice: 'annoy'"),
], ids=["top-k-0", "blank-query", "no-query", "no-queries-file", "bad-backend"])
def test_bad_search_arguments(gallery, ckpt, run, extra, expected):
    result = _search(run, gallery, ckpt, *extra)
    assert result.code == 2 and expected in result.err, result.err


def test_a_binary_queries_file(gallery, ckpt, tmp_path, run):
    (tmp_path / "q.bin").write_bytes(b"\xff\xfe\x00\x81" * 20)
    result = _search(run, gallery, ckpt, "--queries_file", tmp_path / "q.bin")
    assert result.code == 2 and "is not UTF-8 text" in result.err


# ----- index ------------------------------------------------------------------------------------
def _index(run, ckpt, videos, output, *extra):
    return run("index", "--ckpt_path", ckpt, "--videos", videos, "--output", output, "--num_workers", "0", *extra)


def test_an_output_folder_is_refused_before_any_work(ckpt, synthetic_root, tmp_path, run):
    (tmp_path / "out").mkdir()
    result = _index(run, ckpt, f"{synthetic_root}/val.jsonl", tmp_path / "out")
    assert result.code == 2 and "--output" in result.err and "is a folder; give a file name" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .shards left behind


def test_an_output_below_a_file_is_refused(ckpt, synthetic_root, tmp_path, run):
    (tmp_path / "file").write_text("x")
    result = _index(run, ckpt, f"{synthetic_root}/val.jsonl", tmp_path / "file" / "g.safetensors")
    assert result.code == 2 and "is not a folder" in result.err


@pytest.mark.parametrize("extra, expected", [
    (("--num_workers", "-1"), "--num_workers must be >= 0, got -1"),
    (("--batch_size", "0"), "--batch_size must be >= 1, got 0"),
    (("--shard_size", "0"), "--shard_size must be >= 1, got 0"),
    (("--format", "msvd"), "captions_file"),
], ids=["workers", "batch", "shard", "format-needs-options"])
def test_bad_index_numbers_and_options(ckpt, synthetic_root, tmp_path, run, extra, expected):
    result = _index(run, ckpt, f"{synthetic_root}/val.jsonl", tmp_path / "g.safetensors", *extra)
    assert result.code == 2 and expected in result.err, result.err
    assert not (tmp_path / "g.safetensors").exists()


def test_paths_outside_the_root_are_warned_about_or_refused(ckpt, synthetic_root, tmp_path, run, caplog):
    rows = synthetic_rows(synthetic_root)[:2]
    (tmp_path / "elsewhere").mkdir()
    for row in rows:
        shutil.copy(Path(synthetic_root) / row["video"], tmp_path / "elsewhere")
    rows[0]["video"] = str(tmp_path / "elsewhere" / Path(rows[0]["video"]).name)  # absolute, elsewhere
    rows[1]["video"] = "../elsewhere/" + Path(rows[1]["video"]).name
    (tmp_path / "root").mkdir()
    listing = write_jsonl(tmp_path / "root" / "list.jsonl", rows)
    refused = _index(run, ckpt, listing, tmp_path / "r.safetensors", "--outside_root", "refuse")
    assert refused.code == 2 and "2 of 2 video paths lie outside the video root" in refused.err
    assert "refused (--outside_root=refuse)" in refused.err and not (tmp_path / "r.safetensors").exists()
    with caplog.at_level(logging.WARNING):
        warned = _index(run, ckpt, listing, tmp_path / "w.safetensors")
    assert warned.code == 0 and any("lie outside the video root" in r.getMessage() for r in caplog.records)


def test_duplicate_ids_in_the_video_list(ckpt, synthetic_root, tmp_path, run):
    rows = synthetic_rows(synthetic_root)[:2]
    rows[1]["video_id"] = rows[0]["video_id"]
    listing = write_jsonl(tmp_path / "dup.jsonl", rows)
    result = _index(run, ckpt, listing, tmp_path / "g.safetensors", "--video_root", synthetic_root)
    assert result.code == 2 and f"video_id {rows[0]['video_id']!r} already used on line 1" in result.err


def _listing_with_a_broken_second_video(synthetic_root, tmp_path, count: int) -> tuple[list[dict], Path]:
    """``count`` synthetic rows whose second video is 1,000 zero bytes (``broken.mp4``), and their listing."""
    rows = synthetic_rows(synthetic_root)[:count]
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    rows[1]["video"] = str(tmp_path / "broken.mp4")
    return rows, write_jsonl(tmp_path / "list.jsonl", rows)


def test_a_broken_video_with_strict_names_the_file_and_leaves_no_gallery(ckpt, synthetic_root, tmp_path, run):
    rows, listing = _listing_with_a_broken_second_video(synthetic_root, tmp_path, 2)
    result = _index(run, ckpt, listing, tmp_path / "g.safetensors", "--video_root", synthetic_root,
                    "--outside_root", "allow", "--strict")
    assert result.code == 2 and "broken.mp4" in result.err and "Traceback" not in result.err
    errors = [line for line in result.err.replace("\r", "\n").splitlines() if "error:" in line]  # not tqdm's bars
    assert len(errors) == 1 and f"video_id {rows[1]['video_id']!r}" in errors[0]
    assert not (tmp_path / "g.safetensors").exists() and not (tmp_path / "g.safetensors.skipped.json").exists()


def test_a_broken_video_is_skipped_and_listed_by_default(ckpt, synthetic_root, tmp_path, run):
    rows, listing = _listing_with_a_broken_second_video(synthetic_root, tmp_path, 3)
    result = _index(run, ckpt, listing, tmp_path / "g.safetensors", "--video_root", synthetic_root,
                    "--outside_root", "allow")
    assert result.code == 0 and "Traceback" not in result.err
    assert "2 videos" in result.out and "1 videos could not be decoded and were skipped" in result.out
    skipped = json.loads((tmp_path / "g.safetensors.skipped.json").read_text())
    assert [(s["video_id"], Path(s["path"]).name) for s in skipped] == [(rows[1]["video_id"], "broken.mp4")]
    assert Gallery.load(tmp_path / "g.safetensors").video_ids == [rows[0]["video_id"], rows[2]["video_id"]]


def test_index_warns_when_resize_differs_from_training(ckpt, synthetic_root, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        build_index(ckpt, Path(synthetic_root) / "val.jsonl", tmp_path / "g.safetensors", num_workers=0,
                    progress=False, resize="crop")
    assert "resize: the checkpoint was trained with squash, the gallery is built with crop" in caplog.text
    assert Gallery.load(tmp_path / "g.safetensors").preprocessing["resize"] == "crop"
