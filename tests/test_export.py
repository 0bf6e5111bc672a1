"""``pig-lightning export``: checkpoints trained here -> plain Hugging Face CLIP folders."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from transformers import AutoTokenizer, CLIPModel

from pig_lightning.atomic import is_temporary
from pig_lightning.cli import main
from pig_lightning.commands.train import run_cli
from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.weights.hf_folder import ModelSourceError, load_clip_model, load_tokenizer
from pig_lightning.models import FrameCLIPBackbone
from pig_lightning.models.towers import DotProductTower
from pig_lightning.load import load_model

from tests.helpers import BACKBONES, TINY_CLIP, train, write_config

pytestmark = pytest.mark.slow  # trains or launches processes

@pytest.fixture(scope="module")
def meanp_ckpt(tiny_checkpoint) -> Path:
    return tiny_checkpoint("meanp")


def export(*args) -> None:
    main(["export", *map(str, args)])


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if is_temporary(p)]


def error_of(capsys, *args) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        export(*args)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pig-lightning export: error: "), lines
    return lines[0]


def test_exported_clip_encodes_exactly_as_the_trained_backbone(meanp_ckpt, synthetic_root, tmp_path):
    out = tmp_path / "clip"
    export("--ckpt_path", meanp_ckpt, "--output", out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "export_info.json"} <= {p.name for p in out.iterdir()}
    assert not leftovers(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {p.name: 0o666 & ~umask for p in out.iterdir()}
    module = load_model(meanp_ckpt)
    backbone = module.tower.backbone
    clip = CLIPModel.from_pretrained(out).eval()

    captions = [r.captions[0] for r in read_jsonl(Path(synthetic_root) / "train.jsonl")[:4]]
    tokenizer = AutoTokenizer.from_pretrained(out)
    trained_tokenizer = load_tokenizer(backbone.tokenizer_source)
    tokens = tokenizer(captions, padding=True, return_tensors="pt")
    assert torch.equal(tokens["input_ids"], trained_tokenizer(captions, padding=True, return_tensors="pt")["input_ids"])
    assert tokenizer.batch_decode(tokens["input_ids"]) == trained_tokenizer.batch_decode(tokens["input_ids"])
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, len(tokenizer)) == (
        trained_tokenizer.bos_token_id, trained_tokenizer.eos_token_id, trained_tokenizer.pad_token_id,
        len(trained_tokenizer))

    frames = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        text = clip.get_text_features(**tokens).pooler_output
        image = clip.get_image_features(pixel_values=frames.flatten(0, 1)).pooler_output
        torch.testing.assert_close(text, backbone.encode_text(tokens["input_ids"], tokens["attention_mask"]))
        torch.testing.assert_close(image.view(2, 4, -1), backbone.encode_frames(frames))
        torch.testing.assert_close(F.normalize(text, dim=-1), module.encode_texts(**tokens))
        per_frame = F.normalize(image.view(2, 4, -1), dim=-1)
        torch.testing.assert_close(F.normalize(per_frame.mean(1), dim=-1), module.encode_videos(frames))
    assert clip.logit_scale.item() == backbone.logit_scale.item()
    assert backbone.logit_scale.item() != pytest.approx(4.6052, abs=1e-4)  # trained away from its initial ln 100

    info = json.loads((out / "export_info.json").read_text())
    assert info["checkpoint_sha256"] == hashlib.sha256(meanp_ckpt.read_bytes()).hexdigest()
    assert info["source_checkpoint"] == str(meanp_ckpt.resolve())
    assert info["tower"] == "pig_lightning.models.towers.MeanPoolingTower"
    saved = torch.load(meanp_ckpt, map_location="cpu", weights_only=True)
    assert info["global_step"] == saved["global_step"] == 2 and info["epoch"] == saved["epoch"]
    assert info["not_exported"] == {}


def test_exported_folder_is_a_backbone_source(meanp_ckpt, synthetic_root, tmp_path):
    out = tmp_path / "clip"
    export("--ckpt_path", meanp_ckpt, "--output", out)
    trained = load_model(meanp_ckpt).tower.backbone.clip.state_dict()
    rebuilt = FrameCLIPBackbone(pretrained=str(out), tokenizer=str(out), image_size=32, max_text_length=20,
                                logit_scale_init=None)
    assert rebuilt.clip.state_dict().keys() == trained.keys()
    for name, value in rebuilt.clip.state_dict().items():
        assert torch.equal(value, trained[name]), name

    # and in a run config: `pretrained: DIR` + `tokenizer: DIR` (linked from the data module)
    config = write_config(tmp_path, synthetic_root, limit_val_batches=1)
    data = yaml.safe_load(config.read_text())
    data["model"]["tower"]["init_args"]["backbone"]["init_args"] = {"pretrained": str(out), "logit_scale_init": None}
    init = data["data"]
    data["data"] = {"source": {"class_path": "pig_lightning.data.AnnotationFiles", "init_args": {
        "video_root": synthetic_root, "val_annotations": f"{synthetic_root}/val.jsonl"}}, "tokenizer": str(out),
        **{k: init[k] for k in ("num_frames", "image_size", "max_text_length", "eval_batch_size", "num_workers")}}
    config.write_text(yaml.safe_dump(data))
    cli = run_cli(["validate", "--config", str(config)])
    for name, value in cli.model.tower.backbone.clip.state_dict().items():
        assert torch.equal(value, trained[name]), name


@pytest.mark.parametrize("tower, backbone, dropped", [
    ("pig_lightning.models.PIGTower", "proxy", {"tower.backbone.proxy_tokens", "tower.backbone.frame_cls",
                                                "tower.backbone.temporal_embedding", "tower.generator",
                                                "tower.fusion"}),
    ("pig_lightning.models.VideoCLSTower", "proxy", {"tower.backbone.proxy_tokens", "tower.backbone.frame_cls",
                                                     "tower.backbone.temporal_embedding"}),
    ("pig_lightning.models.XPoolTower", "frame", {"tower.pool"}),
])
def test_towers_with_own_parts_export_their_clip_and_list_the_rest(tmp_path, synthetic_root, tower, backbone,
                                                                   dropped):
    ckpt = train(tmp_path, synthetic_root, tower, BACKBONES[backbone], steps=1)
    out = tmp_path / "clip"
    export("--ckpt_path", ckpt, "--output", out)
    module = load_model(ckpt)
    info = json.loads((out / "export_info.json").read_text())
    assert set(info["not_exported"]) == dropped
    state = module.state_dict()
    for prefix, count in info["not_exported"].items():
        assert count == sum(v.numel() for k, v in state.items() if k == prefix or k.startswith(prefix + "."))
    exported = CLIPModel.from_pretrained(out).state_dict()
    trained = module.tower.backbone.clip.state_dict()
    assert exported.keys() == trained.keys()
    for name, value in exported.items():
        assert torch.equal(value, trained[name]), name


def test_output_folder_rules(meanp_ckpt, tmp_path, capsys):
    out = tmp_path / "clip"
    out.mkdir()
    export("--ckpt_path", meanp_ckpt, "--output", out)  # an existing empty folder is fine
    assert (out / "model.safetensors").is_file()
    (out / "mine.txt").write_text("keep me")
    message = error_of(capsys, "--ckpt_path", meanp_ckpt, "--output", out)
    assert str(out) in message and "--overwrite" in message
    assert (out / "mine.txt").read_text() == "keep me"
    export("--ckpt_path", meanp_ckpt, "--output", out, "--overwrite")
    assert not (out / "mine.txt").exists() and (out / "model.safetensors").is_file()
    CLIPModel.from_pretrained(out)
    # never delete the checkpoint's own folder
    message = error_of(capsys, "--ckpt_path", meanp_ckpt, "--output", meanp_ckpt.parent, "--overwrite")
    assert "would delete the checkpoint" in message and meanp_ckpt.is_file()
    (tmp_path / "file").write_text("x")
    assert "not a folder" in error_of(capsys, "--ckpt_path", meanp_ckpt, "--output", tmp_path / "file")
    assert not leftovers(tmp_path)


def test_bad_checkpoints_are_named_in_one_line(tmp_path, capsys):
    out = tmp_path / "clip"
    message = error_of(capsys, "--ckpt_path", tmp_path / "absent.ckpt", "--output", out)
    assert "checkpoint not found" in message and "absent.ckpt" in message
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    message = error_of(capsys, "--ckpt_path", tmp_path / "notes.txt", "--output", out)
    assert "notes.txt is not a pig-lightning checkpoint: it is a text file" in message
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    assert "plain.pt is not a pig-lightning checkpoint" in error_of(capsys, "--ckpt_path", tmp_path / "plain.pt",
                                                                "--output", out)
    assert not out.exists() and not leftovers(tmp_path)


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["EXPORT_TEST_MARKER"]),))


def test_checkpoints_are_never_unpickled_unsafely(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("EXPORT_TEST_MARKER", str(marker))
    torch.save({"state_dict": {}, "payload": _Payload()}, tmp_path / "evil.ckpt")
    message = error_of(capsys, "--ckpt_path", tmp_path / "evil.ckpt", "--output", tmp_path / "clip")
    assert "evil.ckpt is not a pig-lightning checkpoint" in message and "never unpickled" in message
    assert not marker.exists() and not (tmp_path / "clip").exists()


def test_command_line_exit_code_and_help(tmp_path, capsys, monkeypatch):
    from pig_lightning.cli import main

    (tmp_path / "notes.txt").write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", "notes.txt", "--output", "clip"])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("pig-lightning export: error: notes.txt is not a pig-lightning checkpoint: it is a text file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(SystemExit) as info:
        export("--help")
    assert info.value.code == 0
    assert "--overwrite" in capsys.readouterr().out


# ----- a tower without a CLIP backbone ----------------------------------------------------------
class BagOfWordsBackbone(nn.Module):
    """Not CLIP: summed word vectors and the mean colour of the frames."""

    def __init__(self, tokenizer: str = "", image_size: int = 32, max_text_length: int = 20, dim: int = 8):
        super().__init__()
        self.tokenizer_source, self.image_size, self.max_text_length = tokenizer, image_size, max_text_length
        self.words = nn.EmbeddingBag(512, dim, mode="sum")
        self.colours = nn.Linear(3, dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def encode_text(self, input_ids, attention_mask):
        return self.words(input_ids, per_sample_weights=attention_mask.float())


class BagOfWordsTower(DotProductTower):
    kind = "two-tower"

    def __init__(self, backbone: BagOfWordsBackbone, num_frames: int = 4):
        super().__init__(backbone, num_frames)

    def encode_videos(self, frames):
        return F.normalize(self.backbone.colours(frames.mean(dim=(1, 3, 4))), dim=-1)


def test_tower_without_clip_is_named(tmp_path, synthetic_root, capsys):
    ckpt = train(tmp_path, synthetic_root, f"{__name__}.BagOfWordsTower", f"{__name__}.BagOfWordsBackbone",
                 steps=1, dim=8)
    message = error_of(capsys, "--ckpt_path", ckpt, "--output", tmp_path / "clip")
    assert "BagOfWordsTower" in message and "no CLIP backbone" in message
    assert not (tmp_path / "clip").exists() and not leftovers(tmp_path)


# ----- loading: tokenizer and model must belong together -------------------------------------------
def test_tokenizer_larger_than_the_model_vocabulary_names_both_and_the_setting(tmp_path, tiny_clip_config,
                                                                                tokenizer_dir):
    cfg = dict(tiny_clip_config, text_config=dict(tiny_clip_config["text_config"], vocab_size=50))
    load_clip_model(config=cfg).save_pretrained(tmp_path / "small_vocab")
    with pytest.raises(ModelSourceError) as info:
        load_clip_model(pretrained=str(tmp_path / "small_vocab"), tokenizer=load_tokenizer(tokenizer_dir))
    message = str(info.value)
    for part in (str(tmp_path / "small_vocab" / "config.json"), "vocab_size 50", tokenizer_dir,
                 f"{len(load_tokenizer(tokenizer_dir))} tokens",
                 "data.tokenizer", "model.tower.init_args.backbone.init_args.tokenizer", "do not belong together"):
        assert part in message, part


def test_end_of_text_id_outside_the_model_vocabulary_is_refused(tmp_path, tiny_clip_config, tokenizer_dir):
    """A tokenizer no larger than the vocabulary whose end-of-text id still has no embedding."""
    holes = tmp_path / "tokenizer_with_holes"
    shutil.copytree(tokenizer_dir, holes)
    (holes / "vocab.json").unlink()
    spec = json.loads((holes / "tokenizer.json").read_text())
    eos = len(spec["model"]["vocab"]) + 100
    spec["model"]["vocab"]["<|endoftext|>"] = eos
    for token in spec["added_tokens"]:
        if token["content"] == "<|endoftext|>":
            token["id"] = eos
    spec["post_processor"]["sep"][1] = eos
    (holes / "tokenizer.json").write_text(json.dumps(spec))
    tokenizer = load_tokenizer(str(holes))
    assert tokenizer.eos_token_id == eos and len(tokenizer) <= eos
    cfg = dict(tiny_clip_config, text_config=dict(tiny_clip_config["text_config"], vocab_size=len(tokenizer)))
    load_clip_model(config=cfg).save_pretrained(tmp_path / "clip")
    with pytest.raises(ModelSourceError, match=rf"tokenizer_with_holes.*eos id {eos} is outside"):
        load_clip_model(pretrained=str(tmp_path / "clip"), tokenizer=tokenizer)
    load_clip_model(pretrained=str(tmp_path / "clip"), tokenizer=load_tokenizer(tokenizer_dir))  # this one fits


def test_checksums_are_written_and_checked_when_the_folder_is_loaded(meanp_ckpt, tmp_path):
    from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer

    out = tmp_path / "clip"
    export("--ckpt_path", str(meanp_ckpt), "--output", str(out), "--checksums")
    listed = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(listed) and "export_info.json" not in listed
    tokenizer = load_tokenizer(str(out))
    load_clip_model(pretrained=str(out), tokenizer=tokenizer)
    config = out / "config.json"
    config.write_text(config.read_text().replace('"projection_dim"', '"projection_dim" ', 1))
    with pytest.raises(ModelSourceError, match="config.json does not match its checksum"):
        load_clip_model(pretrained=str(out), tokenizer=tokenizer)
