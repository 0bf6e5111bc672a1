"""``pig-lightning export --format model``: a trained model as a folder that index, search, Retriever
and model.init_checkpoint take in place of the checkpoint; checkpoints are read weights-only."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from pig_lightning.cli import main
from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.weights.hf_folder import load_tokenizer
from pig_lightning.models import PIGTower, VideoProxyBackbone
from pig_lightning.module import RetrievalModule
from pig_lightning.retrieval import Gallery, Retriever, build_index
from pig_lightning.load import load_model
from pig_lightning.weights import ModelFolderError

from tests.helpers import TINY_CLIP

pytestmark = pytest.mark.slow  # trains or launches processes


@pytest.fixture(scope="module")
def pig_ckpt(tiny_checkpoint) -> Path:
    return tiny_checkpoint("pig")


@pytest.fixture(scope="module")
def folder(pig_ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "pig_model"
    main(["export", "--ckpt_path", str(pig_ckpt), "--output", str(out), "--format", "model"])
    return out


def batch(synthetic_root):
    tokenizer = load_tokenizer(str(Path(synthetic_root) / "tokenizer"))
    captions = [r.captions[0] for r in read_jsonl(Path(synthetic_root) / "test.jsonl")[:3]]
    tokens = tokenizer(captions, padding="max_length", max_length=20, truncation=True, return_tensors="pt")
    torch.manual_seed(0)
    return torch.rand(3, 4, 3, 32, 32), tokens["input_ids"], tokens["attention_mask"]


def test_exported_folder_holds_the_whole_model_and_computes_as_the_checkpoint(pig_ckpt, folder, synthetic_root):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "export_info.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["tower"]["class_path"] == "pig_lightning.models.PIGTower"
    backbone = config["tower"]["init_args"]["backbone"]
    assert backbone["class_path"] == "pig_lightning.models.VideoProxyBackbone"
    assert backbone["init_args"]["config"]["vision_config"]["hidden_size"] == 32 and "tokenizer" not in backbone["init_args"]
    assert config["data"] == {"num_frames": 4, "image_size": 32, "max_text_length": 20, "resize": "squash",
                              "interpolation": "BICUBIC", "frame_positions": "truncate"}
    load_tokenizer(str(folder))  # the tokenizer loads from the folder itself

    from_ckpt, from_folder = load_model(pig_ckpt), load_model(folder)
    assert from_folder.trained_settings == config["data"]
    ckpt_state, folder_state = from_ckpt.state_dict(), from_folder.state_dict()
    assert list(ckpt_state) == list(folder_state)
    assert all(torch.equal(ckpt_state[k], folder_state[k]) for k in ckpt_state)
    frames, ids, mask = batch(synthetic_root)
    with torch.no_grad():
        assert torch.equal(from_ckpt.encode_videos(frames), from_folder.encode_videos(frames))
        assert torch.equal(from_ckpt.encode_texts(ids, mask), from_folder.encode_texts(ids, mask))


def test_index_search_and_retriever_take_the_folder(pig_ckpt, folder, synthetic_root, tmp_path, capsys):
    videos = Path(synthetic_root) / "test.jsonl"
    by_ckpt = build_index(pig_ckpt, videos, tmp_path / "c.safetensors", num_workers=0, dtype="float32", progress=False)
    by_folder = build_index(folder, videos, tmp_path / "f.safetensors", num_workers=0, dtype="float32", progress=False)
    assert torch.equal(Gallery.load(by_ckpt).embeddings, Gallery.load(by_folder).embeddings)
    queries = [r.captions[0] for r in read_jsonl(videos)[:4]]
    assert Retriever(by_folder, folder).search(queries, k=3) == Retriever(by_ckpt, pig_ckpt).search(queries, k=3)
    capsys.readouterr()
    main(["search", "--index", str(by_folder), "--ckpt_path", str(folder), "--query", queries[0], "--json"])
    assert json.loads(capsys.readouterr().out)["query"] == queries[0]
    # the gallery names the weights it was built with: the folder's model.safetensors
    with pytest.raises(ValueError, match="checkpoint_sha256"):
        Retriever(by_folder, pig_ckpt)


def test_init_checkpoint_takes_the_folder(folder, pig_ckpt, synthetic_root):
    tokenizer = str(Path(synthetic_root) / "tokenizer")
    backbone = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer, image_size=32, max_text_length=20,
                                  temporal_frames=4)
    started = RetrievalModule(PIGTower(backbone, num_frames=4), init_checkpoint=str(folder))
    trained = load_model(pig_ckpt).state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in started.state_dict().items())


def test_a_folder_names_only_classes_of_the_package_and_must_fit_its_weights(folder, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    shutil.copytree(folder, evil)
    config = json.loads((evil / "config.json").read_text())
    config["tower"] = {"class_path": "os.mkdir", "init_args": {"path": str(marker)}}
    (evil / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="may only name classes of pig_lightning"):
        load_model(evil)
    assert not marker.exists()
    config["tower"] = json.loads((folder / "config.json").read_text())["tower"]
    config["tower"]["init_args"]["backbone"]["init_args"]["temporal_frames"] = 6
    (evil / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"evil.*does not fit.*temporal_embedding"):
        load_model(evil)


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_checkpoints_written_here_load_weights_only_and_others_never_run(pig_ckpt, synthetic_root, tmp_path,
                                                                          monkeypatch):
    checkpoint = torch.load(pig_ckpt, map_location="cpu", weights_only=True)  # everything in it is plain data
    assert "state_dict" in checkpoint and "hyper_parameters" in checkpoint
    marker = tmp_path / "payload_ran"
    checkpoint["callbacks"] = {"x": _RunsCode(str(marker))}
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    # even with the environment asking torch to unpickle everything it is not told otherwise about
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for command in (["export", "--ckpt_path", str(evil), "--output", str(tmp_path / "o1"), "--format", "model"],
                    ["export", "--ckpt_path", str(evil), "--output", str(tmp_path / "o2")],
                    ["index", "--ckpt_path", str(evil), "--videos", str(Path(synthetic_root) / "test.jsonl"),
                     "--output", str(tmp_path / "g.safetensors"), "--num_workers", "0"]):
        with pytest.raises(SystemExit) as info:
            main(command)
        assert info.value.code == 2
    backbone = VideoProxyBackbone(config=TINY_CLIP, tokenizer=str(Path(synthetic_root) / "tokenizer"), image_size=32,
                                  max_text_length=20, temporal_frames=4)
    with pytest.raises(ValueError, match="refused"):
        RetrievalModule(PIGTower(backbone, num_frames=4), init_checkpoint=str(evil))
    assert not marker.exists()
