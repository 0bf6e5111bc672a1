"""Checkpoints: self-contained, and any other file given as one is named as what it is."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pig_lightning.module import RetrievalModule
from pig_lightning.retrieval import Retriever

from tests.helpers import run_config, synthetic_rows, write_jsonl


def test_the_checkpoint_alone_rebuilds_the_model_from_anywhere(ckpt, synthetic_root, tmp_path, monkeypatch, run):
    """Its CLIP config file and tokenizer folder were deleted (fixture); the checkpoint is moved
    again, the videos copied elsewhere, and index + search run from a third folder."""
    elsewhere = tmp_path / "machine2"
    (elsewhere / "videos").mkdir(parents=True)
    moved = shutil.copy(ckpt, elsewhere / "m.ckpt")
    rows = synthetic_rows(synthetic_root)[:3]
    for row in rows:
        shutil.copy(Path(synthetic_root) / row["video"], elsewhere / "videos" / Path(row["video"]).name)
        row["video"] = Path(row["video"]).name
    write_jsonl(elsewhere / "videos" / "list.jsonl", rows)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    model = RetrievalModule.load_from_checkpoint(moved)
    assert model.tower.backbone.model_source == "random init from a CLIPConfig"
    assert model.trained_settings == {"num_frames": 4, "image_size": 32, "max_text_length": 20,
                                      "resize": "squash", "interpolation": "BICUBIC", "frame_positions": "truncate"}
    indexed = run("index", "--ckpt_path", moved, "--videos", elsewhere / "videos" / "list.jsonl",
                  "--output", "g.safetensors", "--num_workers", "0")
    assert indexed.code == 0 and "wrote g.safetensors: 3 videos" in indexed.out, indexed.err
    found = run("search", "--index", "g.safetensors", "--ckpt_path", moved, "--query", rows[0]["captions"][0],
                "--top_k", "2")
    assert found.code == 0 and found.out.count("synth") == 2, found.err
    assert Retriever("g.safetensors", moved).search(["a red circle"], k=1)[0][0][0] in {r["video_id"] for r in rows}


def test_test_with_other_frames_than_training_warns_with_both_values(ckpt, synthetic_root, tokenizer_dir, tmp_path,
                                                                      caplog, tiny_clip_config):
    from pig_lightning.commands.train import run_cli

    config = run_config(tmp_path, synthetic_root, tokenizer_dir, tiny_clip_config, num_frames=2, resize="crop")
    with caplog.at_level(logging.WARNING):
        run_cli(["test", "--config", str(config), "--ckpt_path", str(ckpt)])
    [message] = [r.getMessage() for r in caplog.records if "differ from the checkpoint's training" in r.getMessage()]
    assert "num_frames: trained with 4, this run uses 2" in message
    assert "resize: trained with squash, this run uses crop" in message


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("epoch=3\n"), "is not a pig-lightning checkpoint: it is a text file"),
    (lambda p: p.write_bytes(b"\x00\x01\xff\xfe" * 10), "is not a pig-lightning checkpoint: it is a binary file"),
    (lambda p: p.write_bytes(b""), "is not a pig-lightning checkpoint: the file is empty"),
    (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
    (lambda p: None, "checkpoint not found"),
    (lambda p: torch.save({"weights": torch.zeros(2)}, p), "a PyTorch file without a 'state_dict'"),
    (lambda p: torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"lr": 1}}, p),
     "no tower in its hyper-parameters"),
    (lambda p: save_file({"w": torch.zeros(2)}, str(p)), "it is a safetensors weights file"),
], ids=["text", "binary", "empty", "folder", "missing", "plain-torch", "other-lightning", "safetensors"])
def test_a_wrong_file_as_checkpoint_is_named(tmp_path, synthetic_root, run, make, expected):
    bad = tmp_path / "bad.ckpt"
    make(bad)
    result = run("index", "--ckpt_path", bad, "--videos", f"{synthetic_root}/val.jsonl",
                 "--output", tmp_path / "g.safetensors")
    assert result.code == 2 and expected in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "g.safetensors").exists() and not (tmp_path / "g.safetensors.shards").exists()


def test_a_gallery_as_checkpoint(gallery, tmp_path, run):
    result = run("search", "--index", gallery, "--ckpt_path", gallery, "--query", "a red circle")
    assert result.code == 2 and f"{gallery} is a gallery (written by `pig-lightning index`), not a checkpoint" in result.err


def test_a_truncated_checkpoint(ckpt, tmp_path, run):
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    result = run("export", "--ckpt_path", cut, "--output", tmp_path / "clip")
    assert result.code == 2 and "is not a readable checkpoint: the file is truncated or corrupt" in result.err


def test_a_bad_ckpt_path_for_test_leaves_no_run_folder(synthetic_root, tokenizer_dir, tiny_clip_config, tmp_path, run):
    config = run_config(tmp_path, synthetic_root, tokenizer_dir, tiny_clip_config)
    (tmp_path / "notes.txt").write_text("hello\n")
    result = run("test", "--config", config, "--ckpt_path", tmp_path / "notes.txt")
    assert result.code == 2 and "notes.txt is not a pig-lightning checkpoint" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "runs").exists()


def test_load_from_checkpoint_of_a_text_file_raises_a_clear_error(tmp_path):
    (tmp_path / "x.ckpt").write_text("{}")
    with pytest.raises(ValueError, match="is not a pig-lightning checkpoint: it is a text file"):
        RetrievalModule.load_from_checkpoint(tmp_path / "x.ckpt")


def test_the_checkpoint_carries_config_tokenizer_and_settings(ckpt):
    entry = torch.load(ckpt, weights_only=True, mmap=True)["pig_lightning"]
    assert entry["format"] == "pig-lightning-checkpoint/1"
    assert entry["clip_config"]["projection_dim"] == 32 and "tokenizer.json" in entry["tokenizer"]["files"]
    assert json.loads(entry["tokenizer"]["files"]["tokenizer.json"])  # the files themselves, not a path


def test_a_safetensors_header_length_starting_with_0x80_is_not_a_pickle(tmp_path):
    """A gallery whose metadata is 3,712 bytes long starts with the byte 0x80, as a pickle does."""
    import torch
    from safetensors.torch import save_file

    from pig_lightning.weights.checkpoint_file import sniff

    for pad in range(0, 300):
        path = tmp_path / "g.safetensors"
        save_file({"embeddings": torch.zeros(2, 4)}, str(path),
                  metadata={"format": "pig-lightning-gallery/1", "pad": "x" * (3600 + pad)})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80" and sniff(path) == "gallery"
