"""``pig-lightning explain``: the PNG, numbers that equal the tower's own computation, bad inputs named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from pig_lightning.data.video.readers import load_frames
from pig_lightning.data.video.transforms import to_clip_tensor
from pig_lightning.weights.hf_folder import load_tokenizer
from pig_lightning.models.token_selection import select_informative_tokens
from pig_lightning.load import load_model

from tests.helpers import TINY_CLIP, pig_tower
from tests.helpers import fit_and_keep_only_the_checkpoint, run_config, synthetic_rows


@pytest.fixture(scope="session")
def pig_ckpt(tmp_path_factory, synthetic_root, tokenizer_dir) -> Path:
    """A tiny PIG checkpoint (2 training steps, 4 selected tokens)."""
    project = tmp_path_factory.mktemp("pig_project")
    config_path = run_config(project, synthetic_root, tokenizer_dir, dict(TINY_CLIP))
    config = yaml.safe_load(config_path.read_text())
    config["model"]["tower"] = pig_tower(config["model"]["tower"]["init_args"]["backbone"]["init_args"])
    config_path.write_text(yaml.safe_dump(config))
    return fit_and_keep_only_the_checkpoint(project, config_path, tmp_path_factory.mktemp("pig_moved") / "pig.ckpt")


def _texts(module, captions):
    backbone = module.tower.backbone
    tokens = load_tokenizer(backbone.tokenizer_source)(captions, padding="max_length", truncation=True,
                                                       max_length=backbone.max_text_length, return_tensors="pt")
    return F.normalize(backbone.encode_text(tokens["input_ids"], tokens["attention_mask"]).float(), dim=-1)


@torch.no_grad()
def test_pig_explanation_is_the_towers_own_computation(pig_ckpt, synthetic_root, tmp_path, run):
    row = synthetic_rows(synthetic_root, "val")[2]
    out = tmp_path / "explain.png"
    result = run("explain", "--ckpt_path", pig_ckpt, "--video_id", row["video_id"], "--annotations",
                 f"{synthetic_root}/val.jsonl", "--caption_bank", f"{synthetic_root}/train.jsonl", "--top", "3",
                 "--output", out, "--json")
    assert result.code == 0, result.err
    numbers = json.loads(result.out)
    from PIL import Image

    with Image.open(out) as image:
        image.load()
        assert image.format == "PNG" and image.width > 100
    module = load_model(pig_ckpt)
    tower = module.tower
    frames = to_clip_tensor(load_frames(Path(synthetic_root) / row["video"], tower.num_frames, size=32))[None]
    _, positions = select_informative_tokens(tower.backbone.forward_video(frames), tower.num_selected,
                                             tower.head_reduction)
    selected = numbers["token_selection"]["selected"]
    assert [s["position"] for s in selected] == positions[0].tolist()
    assert [s["rank"] for s in selected] == [1, 2, 3, 4]
    for s in selected:  # frame/patch/box are the position's place in the [CLS, proxies, (frame CLS, patches) x T] layout
        assert s["position"] == 4 + s["frame"] * 17 + 1 + s["patch"] and s["patch"] == 4 * s["row"] + s["col"]
    _, pseudo_query = tower.video_outputs(frames)
    pq = F.normalize(pseudo_query.float(), dim=-1)[0]
    bank = list(dict.fromkeys(c for r in synthetic_rows(synthetic_root, "train") for c in r["captions"]))
    cosines = _texts(module, bank) @ pq
    best = cosines.topk(3)
    assert [r["caption"] for r in numbers["pseudo_query_nearest_captions"]] == [bank[i] for i in best.indices]
    assert [r["cosine"] for r in numbers["pseudo_query_nearest_captions"]] == pytest.approx(best.values.tolist(), abs=1e-5)
    own = _texts(module, row["captions"])
    assert [r["caption"] for r in numbers["own_captions"]] == row["captions"]
    assert [r["pseudo_query_cosine"] for r in numbers["own_captions"]] == pytest.approx((own @ pq).tolist(), abs=1e-5)
    video = tower.encode_videos(frames)[0]
    assert [r["score"] for r in numbers["own_captions"]] == pytest.approx((own @ video).tolist(), abs=1e-5)


def test_two_tower_explanation(ckpt, synthetic_root, tmp_path, run):
    row = synthetic_rows(synthetic_root, "val")[0]
    bank = tmp_path / "bank.txt"
    bank.write_text("a red circle moves left\n\nthe blue square goes up\n" + row["captions"][0] + "\n")
    out = tmp_path / "two.png"
    result = run("explain", "--ckpt_path", ckpt, "--video", Path(synthetic_root) / row["video"], "--captions", bank,
                 "--output", out, "--json")
    assert result.code == 0, result.err
    numbers = json.loads(result.out)
    assert out.stat().st_size > 0 and "token_selection" not in numbers and numbers["kind"] == "two-tower"
    module = load_model(ckpt)
    frames = to_clip_tensor(load_frames(Path(synthetic_root) / row["video"], module.tower.num_frames, size=32))[None]
    with torch.no_grad():
        scores = (_texts(module, [r["caption"] for r in numbers["nearest_captions"]]) @ module.encode_videos(frames)[0])
    assert len(numbers["nearest_captions"]) == 3
    assert [r["score"] for r in numbers["nearest_captions"]] == pytest.approx(scores.tolist(), abs=1e-5)


@pytest.mark.parametrize("args, expected", [
    (["--video", "missing.mp4", "--captions", "{bank}"], "--video not found: missing.mp4"),
    (["--video_id", "nope", "--annotations", "{root}/val.jsonl"], "video id 'nope' is not in"),
    (["--captions", "{bank}"], "give either --video or --video_id"),
    (["--video_id", "x"], "--video_id needs --annotations"),
    (["--video", "{video}"], "no caption bank: give --captions"),
    (["--video", "{video}", "--captions", "{tmp}/none.txt"], "--captions file not found"),
    (["--video", "{video}", "--captions", "{bank}", "--output", "{tmp}"], "--output must be a .png file"),
    (["--video", "{video}", "--captions", "{bank}", "--output", "{tmp}/x.jpg"], "--output must be a .png file"),
    (["--video", "{video}", "--captions", "{bank}", "--ckpt_path", "{gallery}"], "is a gallery"),
], ids=["no-video", "unknown-id", "no-video-given", "id-without-annotations", "no-bank", "no-bank-file",
        "output-folder", "output-jpg", "gallery-as-checkpoint"])
def test_bad_inputs_are_named(ckpt, gallery, synthetic_root, tmp_path, run, args, expected):
    bank = tmp_path / "bank.txt"
    bank.write_text("a red circle\n")
    values = {"bank": bank, "root": synthetic_root, "tmp": tmp_path, "gallery": gallery,
              "video": Path(synthetic_root) / synthetic_rows(synthetic_root, "val")[0]["video"]}
    args = [a.format(**values) for a in args]
    if "--ckpt_path" not in args:
        args = ["--ckpt_path", str(ckpt), *args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "e.png")]
    result = run("explain", *args)
    assert result.code == 2 and expected in result.err, result.err
    assert "Traceback" not in result.err and not (tmp_path / "e.png").exists()
