"""``pig-lightning import-weights``: the releases' checkpoints (their exact key names and shapes, at a tiny
width) imported, and what the project computes from them checked against the releases' forward."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from pig_lightning.cli import main
from pig_lightning.weights.hf_folder import load_tokenizer
from pig_lightning.models import PIGTower, VideoProxyBackbone
from pig_lightning.module import RetrievalModule
from pig_lightning.load import load_model
from pig_lightning.weights.release import infer_clip_config

from tests.helpers import TINY_CLIP
from . import release_reference as ref

T = 4  # the checkpoints' temporal_size
CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from pig_lightning.data.worlds.synthetic import write_tokenizer_folder

    folder = str(write_tokenizer_folder(tmp_path_factory.mktemp("tok")))
    return folder, load_tokenizer(folder)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "tiny_clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return str(path)


def run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(["import-weights", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def import_(capsys, tmp_path, tok, config_file, state, source, name="ckpt.pt", *extra):
    path = tmp_path / name
    torch.save(state, path)
    out = tmp_path / f"{source}_model"
    code, stdout, stderr = run(capsys, "--source", source, "--input", path, "--output", out, "--config", config_file,
                               "--tokenizer", tok[0], *extra)
    assert code == 0, stderr
    return out, stdout


def texts(tokenizer):
    batch = tokenizer(["a red circle moves left", "a green square"], padding="max_length", max_length=12,
                      truncation=True, return_tensors="pt")
    eot = (batch["input_ids"] == tokenizer.eos_token_id).int().argmax(dim=1)  # first EOT (the release: argmax)
    return batch["input_ids"], batch["attention_mask"], eot


def double(state):
    return {k: v.double() if v.is_floating_point() else v for k, v in state.items()}


def test_pig_release_checkpoint_computes_what_the_release_computes(tmp_path, capsys, tok, config_file):
    state = ref.release_state_dict("pig", TINY_CLIP, len(tok[1]), T, seed=1)
    folder, stdout = import_(capsys, tmp_path, tok, config_file, state, "pig")
    assert "mapped" in stdout and "import_report.json" in stdout
    module = load_model(folder).eval().double()
    tower = module.tower
    assert isinstance(tower, PIGTower) and tower.num_frames == T and tower.backbone.temporal_embedding.shape == (T, 32)

    sd = double(state)
    torch.manual_seed(0)
    video = torch.randn(3, T, 3, 32, 32, dtype=torch.float64)
    bos, eos = tok[1].bos_token_id, tok[1].eos_token_id
    with torch.no_grad():
        final, pseudo, chosen, probs = ref.pig_forward(sd, TINY_CLIP, video, bos, eos)
        # proxy-token layout, temporal embedding, frame CLS: the input tokens before the first layer
        tokens_ref, m, per_frame = ref.vip_embeddings(sd, "encoder.clipmodel.", video, 8)
        assert (m, per_frame) == (4, 17)
        torch.testing.assert_close(tower.backbone.embed(video), tokens_ref, rtol=0, atol=1e-12)
        # block attention of every layer: the global rows' last-layer probabilities and every token
        out = tower.backbone.forward_video(video)
        tokens_all, probs_all, _, _ = ref.vision_forward(sd, "encoder.clipmodel.", TINY_CLIP, video)
        torch.testing.assert_close(out.tokens, tokens_all, rtol=0, atol=1e-10)
        torch.testing.assert_close(out.global_attention, probs, rtol=0, atol=1e-12)
        # token selection, generator input order, pseudo-query, fusion, the stored vector
        ours_selected = tower.select_tokens(out)
        torch.testing.assert_close(ours_selected, out.tokens[torch.arange(3)[:, None], chosen], rtol=0, atol=0)
        video_emb, ours_pseudo = tower.video_outputs(video)
        torch.testing.assert_close(ours_pseudo, pseudo, rtol=0, atol=1e-10)
        torch.testing.assert_close(video_emb, F.normalize(final, dim=-1), rtol=0, atol=1e-10)
        torch.testing.assert_close(module.encode_videos(video), F.normalize(final, dim=-1), rtol=0, atol=1e-10)
        # the text tower (online) and the logit scale
        ids, mask, eot = texts(tok[1])
        text_ref = ref.text_forward(sd, "encoder.clipmodel.", TINY_CLIP, ids, mask, eot)
        torch.testing.assert_close(module.encode_texts(ids, mask), F.normalize(text_ref, dim=-1), rtol=0, atol=1e-10)
    assert tower.logit_scale.item() == pytest.approx(4.2)

    report = json.loads((folder / "import_report.json").read_text())
    accounted = {m["from"] for m in report["mapped"]} | {d["key"].split(" (")[0] for d in report["dropped"]}
    assert accounted == set(state) and report["counts"]["keys_in_file"] == len(state)
    assert report["derived"] == []
    assert {d["key"] for d in report["dropped"] if "position_ids" in d["key"]} == {
        "encoder.clipmodel.text_model.embeddings.position_ids", "encoder.clipmodel.vision_model.embeddings.position_ids",
        "generator.clip_reconstructor.embeddings.position_ids"}
    config = json.loads((folder / "config.json").read_text())
    assert config["tower"]["class_path"] == "pig_lightning.models.PIGTower"
    assert config["data"] == {"num_frames": T, "image_size": 32, "max_text_length": 32, "resize": "squash",
                              "interpolation": "BICUBIC"}


@pytest.mark.parametrize("frames", [T, 3])
def test_clipvip_post_pretrained_checkpoint_is_pig_layout_with_frame_cls_from_class_embedding(
        tmp_path, capsys, tok, config_file, frames):
    # XPretrain's VidCLIP: no cls_in_frames, and apex O2 saved the weights in fp16
    state = {k: (v.half() if v.is_floating_point() else v)
             for k, v in ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=2, frame_cls=None).items()}
    out, stdout = import_(capsys, tmp_path, tok, config_file, state, "clipvip")
    assert "derived tower.backbone.frame_cls" in stdout and "float16" in stdout
    module = load_model(out).eval().double()
    report = json.loads((out / "import_report.json").read_text())
    assert [d["to"] for d in report["derived"]] == ["tower.backbone.frame_cls"]
    assert report["converted_dtypes"]

    sd = double(state)
    class_embedding = sd["clipmodel.vision_model.embeddings.class_embedding"]
    torch.manual_seed(1)
    video = torch.randn(2, frames, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        # the PIG release starting from this checkpoint: cls_in_frames := class_embedding (setup_pig_model)
        tokens, _, _, _ = ref.vision_forward(sd, "clipmodel.", TINY_CLIP, video, frame_cls_value=class_embedding)
        torch.testing.assert_close(module.encode_videos(video), F.normalize(tokens[:, 0], dim=-1), rtol=0, atol=1e-10)
        ids, mask, eot = texts(tok[1])
        text_ref = ref.text_forward(sd, "clipmodel.", TINY_CLIP, ids, mask, eot)
        torch.testing.assert_close(module.encode_texts(ids, mask), F.normalize(text_ref, dim=-1), rtol=0, atol=1e-10)


def test_pig_started_from_an_imported_clipvip_folder(tmp_path, capsys, tok, config_file):
    state = ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=3, frame_cls=None)
    out, _ = import_(capsys, tmp_path, tok, config_file, state, "clipvip")
    backbone = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tok[0], image_size=32, max_text_length=16,
                                  temporal_frames=T)
    pig = RetrievalModule(PIGTower(backbone, num_frames=T), init_checkpoint=str(out)).tower
    text_layer = state["clipmodel.text_model.encoder.layers.1.mlp.fc2.weight"]
    assert torch.equal(pig.backbone.clip.text_model.encoder.layers[1].mlp.fc2.weight, text_layer)
    assert torch.equal(pig.generator.layers[1].mlp.fc2.weight, text_layer)  # copied from the loaded text tower
    assert torch.equal(pig.backbone.frame_cls, state["clipmodel.vision_model.embeddings.class_embedding"])


def test_mlp_mapper_and_per_frame_cls_with_equal_rows(tmp_path, capsys, tok, config_file):
    state = ref.release_state_dict("pig", TINY_CLIP, len(tok[1]), T, seed=4, frame_cls="per_frame", mapper="MLP")
    key = "encoder.clipmodel.vision_model.embeddings.cls_in_frames"
    state[key] = state[key][:1].expand(T, -1).clone()  # as setup_pig_model initialises it, untrained
    out, _ = import_(capsys, tmp_path, tok, config_file, state, "pig")
    module = load_model(out).eval().double()
    assert module.tower.generator_options["mapper"] == "mlp"
    torch.manual_seed(2)
    video = torch.randn(2, T, 3, 32, 32, dtype=torch.float64)
    sd = double(state)
    sd[key] = sd[key][0]
    with torch.no_grad():
        final, *_ = ref.pig_forward(sd, TINY_CLIP, video, tok[1].bos_token_id, tok[1].eos_token_id, mapper="MLP")
        torch.testing.assert_close(module.encode_videos(video), F.normalize(final, dim=-1), rtol=0, atol=1e-10)


def error_of(capsys, tmp_path, tok, config_file, state, source="pig", *extra) -> str:
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    code, _, err = run(capsys, "--source", source, "--input", path, "--output", tmp_path / "out_bad",
                       "--config", config_file, "--tokenizer", tok[0], *extra)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pig-lightning import-weights: error: "), lines
    assert not (tmp_path / "out_bad").exists()
    return lines[0]


def test_unknown_missing_or_misshapen_keys_are_errors_naming_them(tmp_path, capsys, tok, config_file):
    good = ref.release_state_dict("pig", TINY_CLIP, len(tok[1]), T, seed=5)
    state = dict(good, alpha=torch.tensor(0.5), **{"fusioner.extra.weight": torch.zeros(2)})
    message = error_of(capsys, tmp_path, tok, config_file, state)
    assert "alpha" in message and "fusioner.extra.weight" in message and "two_matrix" in message

    state = {k: v for k, v in good.items() if k != "fusioner.layer_norm3.bias"}
    assert "tower.fusion.norm_final.bias" in error_of(capsys, tmp_path, tok, config_file, state)

    key = "encoder.clipmodel.vision_model.embeddings.temporal_embedding"
    state = dict(good, **{key: good[key][0]})  # [T, D] instead of [1, T, D]
    assert key in error_of(capsys, tmp_path, tok, config_file, state)

    key = "encoder.clipmodel.vision_model.embeddings.cls_in_frames"
    state = dict(good, **{key: torch.randn(T, 32)})  # per-frame, trained apart
    assert "use_different_frame_cls" in error_of(capsys, tmp_path, tok, config_file, state)

    key = "encoder.clipmodel.visual_projection.weight"
    state = dict(good, **{key: torch.randn(16, 32)})
    message = error_of(capsys, tmp_path, tok, config_file, state)
    assert key in message and "[16, 32]" in message and "[32, 32]" in message

    assert "--source pig" in error_of(capsys, tmp_path, tok, config_file, good, "clipvip")
    clipvip = ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=5)
    assert "--source clipvip" in error_of(capsys, tmp_path, tok, config_file, clipvip, "pig")


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)  # what full unpickling would run


class _Config:  # an object the release might have saved beside the weights
    lr = 3e-6


def test_a_file_that_needs_unpickling_is_refused_without_running_it(tmp_path, capsys, tok, config_file):
    marker = tmp_path / "payload_ran"
    state = ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=6)
    message = error_of(capsys, tmp_path, tok, config_file, {"model_state_dict": state, "x": _RunsCode(str(marker))},
                       "clipvip")
    assert "refused" in message and "--trust_checkpoint" in message and "run" in message
    assert not marker.exists()
    # model.init_checkpoint reads the same way
    with pytest.raises((ValueError, pickle.UnpicklingError)):
        RetrievalModule(PIGTower(VideoProxyBackbone(config=TINY_CLIP, tokenizer=tok[0], image_size=32,
                                                    max_text_length=16), num_frames=T),
                        init_checkpoint=str(tmp_path / "bad.pt"))
    assert not marker.exists()


def test_trust_checkpoint_converts_a_file_with_other_objects_once(tmp_path, capsys, tok, config_file):
    state = ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=7)
    wrapped = {"model_state_dict": state, "cfg": _Config(), "global_step": 7}
    error_of(capsys, tmp_path, tok, config_file, wrapped, "clipvip")
    out, _ = import_(capsys, tmp_path, tok, config_file, wrapped, "clipvip", "trusted.pt", "--trust_checkpoint")
    report = json.loads((out / "import_report.json").read_text())
    assert report["read_with"].endswith("--trust_checkpoint")
    assert report["container"] == "state dict under 'model_state_dict'"
    assert {d["key"] for d in report["dropped"]} >= {"cfg", "global_step"}
    assert torch.equal(load_model(out).tower.backbone.proxy_tokens,
                       state["clipmodel.vision_model.embeddings.added_cls"])


def test_a_release_file_given_as_init_checkpoint_names_the_import_command(tmp_path, tok):
    path = tmp_path / "pretrain_clipvip_base_32.pt"
    torch.save(ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=8), path)
    with pytest.raises(ValueError, match=r"CLIP-ViP release.*import-weights --source clipvip"):
        RetrievalModule(PIGTower(VideoProxyBackbone(config=TINY_CLIP, tokenizer=tok[0], image_size=32,
                                                    max_text_length=16), num_frames=T), init_checkpoint=str(path))


def test_clip_config_is_inferred_from_the_shapes_with_openai_conventions():
    config = {"projection_dim": 64,
              "text_config": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 3,
                              "num_attention_heads": 2, "max_position_embeddings": 40},
              "vision_config": {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                                "num_attention_heads": 1, "image_size": 48, "patch_size": 16}}
    state = ref.release_state_dict("pig", config, 300, 12, seed=9)
    inferred = infer_clip_config(state, "encoder.clipmodel.")
    assert inferred["projection_dim"] == 64
    for part in ("text_config", "vision_config"):
        assert {k: inferred[part][k] for k in config[part]} == config[part]
    assert inferred["text_config"]["vocab_size"] == 300


def test_the_from_clipvip_recipe_is_msrvtt_started_from_an_imported_folder(tmp_path, capsys, tok):
    from jsonargparse import ArgumentParser

    recipe = yaml.safe_load((CONF / "msrvtt_from_clipvip.yaml").read_text())
    base = yaml.safe_load((CONF / "msrvtt.yaml").read_text())
    assert recipe["model"].pop("init_checkpoint") == "weights/clipvip_b32"
    recipe["trainer"]["logger"] = base["trainer"]["logger"] = None
    assert recipe == base  # conf/msrvtt.yaml's settings, only the starting weights differ
    header = (CONF / "msrvtt_from_clipvip.yaml").read_text().split("seed_everything")[0]
    assert "CLIP-ViP AUTHORS' practice" in header and "NOT the PIG release's" in header
    # its model section builds (tiny CLIP in place of B/32) and starts from an imported CLIP-ViP folder
    tiny = json.loads(json.dumps(TINY_CLIP))
    tiny["text_config"]["max_position_embeddings"] = 77
    (tmp_path / "tiny77.json").write_text(json.dumps(tiny))
    state = ref.release_state_dict("clipvip", tiny, len(tok[1]), 12, seed=10, frame_cls=None)
    folder, _ = import_(capsys, tmp_path, tok, str(tmp_path / "tiny77.json"), state, "clipvip")
    model = yaml.safe_load((CONF / "msrvtt_from_clipvip.yaml").read_text())["model"]
    model["init_checkpoint"] = str(folder)
    model["tower"]["init_args"]["backbone"]["init_args"].update(pretrained=None, config=tiny, tokenizer=tok[0],
                                                                image_size=32, max_text_length=50)
    model["tower"]["init_args"]["num_frames"] = 12
    parser = ArgumentParser()
    parser.add_class_arguments(RetrievalModule, "model")
    pig = parser.instantiate_classes(parser.parse_object({"model": model})).model.tower
    assert isinstance(pig, PIGTower)
    layer = "clipmodel.text_model.encoder.layers.0.self_attn.q_proj.weight"
    assert torch.equal(pig.generator.layers[0].self_attn.q_proj.weight, state[layer])
    assert torch.equal(pig.backbone.frame_cls, state["clipmodel.vision_model.embeddings.class_embedding"])
    assert torch.equal(pig.backbone.temporal_embedding, state["clipmodel.vision_model.embeddings.temporal_embedding"][0])
    assert pig.logit_scale.item() == pytest.approx(4.2)  # the post-trained value, not the recipe's 4.60



def test_pig_bos_eos_come_from_the_clip_weights_the_release_started_from(tmp_path, capsys, tok, config_file):
    """The release computes its generator's BOS/EOS from the OpenAI CLIP token table and never saves them;
    the file's generator table is what weight decay left of it."""
    from transformers import CLIPModel

    from pig_lightning.weights.hf_folder import clip_config_from

    state = ref.release_state_dict("pig", TINY_CLIP, len(tok[1]), T, seed=2)
    table = "generator.clip_reconstructor.embeddings.token_embedding.weight"
    state[table] = state[table] * 0.998  # what multi-GPU weight decay does to the saved table
    torch.manual_seed(3)
    clip = CLIPModel(clip_config_from(TINY_CLIP, tok[1]))
    clip.save_pretrained(tmp_path / "openai_clip")
    bos, eos = tok[1].bos_token_id, tok[1].eos_token_id
    default, stdout = import_(capsys, tmp_path, tok, config_file, state, "pig")
    assert "generator BOS/EOS: rows" in stdout and "file's generator token table" in stdout
    assert torch.equal(load_model(default).tower.generator.special_tokens, state[table][[bos, eos]])
    out = tmp_path / "from_clip"
    code, stdout, stderr = run(capsys, "--source", "pig", "--input", tmp_path / "ckpt.pt", "--output", out,
                               "--config", config_file, "--tokenizer", tok[0], "--special_tokens_from",
                               tmp_path / "openai_clip")
    assert code == 0, stderr
    expected = clip.text_model.embeddings.token_embedding.weight.detach()[[bos, eos]]
    assert torch.equal(load_model(out).tower.generator.special_tokens, expected)
    report = json.loads((out / "import_report.json").read_text())
    assert "openai_clip (as the release computes them at construction)" in report["generator_bos_eos_from"]
    code, _, stderr = run(capsys, "--source", "pig", "--input", tmp_path / "ckpt.pt", "--output", tmp_path / "x",
                          "--config", config_file, "--tokenizer", tok[0], "--special_tokens_from", tmp_path / "nowhere")
    assert code == 2 and "--special_tokens_from" in stderr and "nowhere" in stderr


def test_learnable_tokens_of_the_anonymous_submission_are_named_as_such(tmp_path, capsys, tok, config_file):
    good = ref.release_state_dict("pig", TINY_CLIP, len(tok[1]), T, seed=5)
    message = error_of(capsys, tmp_path, tok, config_file, dict(good, **{"generator.bos_tokens": torch.zeros(2, 32)}))
    assert "generator.bos_tokens" in message and "anonymous-submission" in message and "Qformer" not in message
    qformer = dict(good, **{"generator.query_tokens": torch.zeros(1, 4, 32),
                            "generator.Qformer.bert.embeddings.word_embeddings.weight": torch.zeros(8, 32)})
    message = error_of(capsys, tmp_path, tok, config_file, qformer)
    assert "Bert-Qformer" in message and "anonymous-submission" not in message



def test_xpretrain_clipvip_without_frame_cls_computes_what_clipvip_computes(tmp_path, capsys, tok, config_file):
    state = ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=4, frame_cls=None)
    own, stdout = import_(capsys, tmp_path, tok, config_file, state, "clipvip", "ckpt.pt", "--without_frame_cls")
    assert "frame CLS: none" in stdout
    module = load_model(own).eval().double()
    assert "tower.backbone.frame_cls" not in module.state_dict()
    assert json.loads((own / "import_report.json").read_text())["derived"] == []
    sd = double(state)
    torch.manual_seed(2)
    video = torch.randn(2, T, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        tokens, _, m, per_frame = ref.vision_forward(sd, "clipmodel.", TINY_CLIP, video, with_frame_cls=False)
        assert (m, per_frame) == (4, 16)  # patches only
        clipvip = F.normalize(tokens[:, 0], dim=-1)
        torch.testing.assert_close(module.encode_videos(video), clipvip, rtol=0, atol=1e-10)
        (tmp_path / "default").mkdir()
        pig_layout, _ = import_(capsys, tmp_path / "default", tok, config_file, state, "clipvip")
        other = load_model(pig_layout).eval().double().encode_videos(video)
        assert (other - clipvip).abs().max() > 1e-4  # the frame CLS changes what the model computes
    torch.save(ref.release_state_dict("clipvip", TINY_CLIP, len(tok[1]), T, seed=4), tmp_path / "pig_code.pt")
    code, _, stderr = run(capsys, "--source", "clipvip", "--input", tmp_path / "pig_code.pt", "--output",
                          tmp_path / "x", "--config", config_file, "--tokenizer", tok[0], "--without_frame_cls")
    assert code == 2 and "--without_frame_cls" in stderr and "has one (cls_in_frames)" in stderr
    with pytest.raises(ValueError, match="needs frame_cls: true"):
        PIGTower(VideoProxyBackbone(config=TINY_CLIP, tokenizer=tok[0], image_size=32, max_text_length=12,
                                    temporal_frames=T, frame_cls=False), num_frames=T, num_selected=4)
