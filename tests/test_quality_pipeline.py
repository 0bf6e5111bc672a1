"""The quality benchmark's path end to end, on a small budget: stage 1 (CLIP pretraining on the
synthetic images) -> ``pig-lightning export`` -> stage 2 (fine-tuning on the multi-event videos)."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoTokenizer, CLIPModel

from pig_lightning.cli import main
from pig_lightning.commands.train import run_cli
from pig_lightning.data.worlds.scenes import SceneImagesConfig, SceneVideosConfig, make_scene_images, make_scene_videos

pytestmark = pytest.mark.slow  # trains or launches processes

ROOT = Path(__file__).resolve().parents[1]
IMAGES = SceneImagesConfig(num_train=512, num_val=32, seed=5)
SHIPPED = ROOT / "assets" / "clip-tiny-scenes"  # the full stage 1, shipped
VIDEOS = SceneVideosConfig(num_train=96, num_val=24, num_test=40, frames_per_event=4, frame_size=32, seed=5)


def _trainer(tmp_path: Path, name: str, epochs: int) -> dict:
    return {
        "accelerator": "cpu", "devices": 1, "max_epochs": epochs, "num_sanity_val_steps": 0,
        "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 5,
        "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                   "init_args": {"save_dir": str(tmp_path / "runs"), "name": name, "default_hp_metric": False}},
    }


def _fit(tmp_path: Path, name: str, config: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run_cli(["fit", "--config", str(path)])
    return tmp_path / "runs" / name / "version_0"


@pytest.fixture(scope="module")
def stage1(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("quality")
    images = make_scene_images(tmp / "images", IMAGES, num_workers=2)
    videos = make_scene_videos(tmp / "videos", VIDEOS, num_workers=2)
    torch.manual_seed(0)
    run = _fit(tmp, "pretrain", {
        "seed_everything": 0,
        "trainer": {**_trainer(tmp, "pretrain", 2), "limit_val_batches": 0},
        "checkpoint": {"monitor": None},
        "model": {"lr": 2e-3, "weight_decay": 0.1, "warmup_ratio": 0.05, "tower": {
            "class_path": "pig_lightning.models.MeanPoolingTower",
            "init_args": {"backbone": {"class_path": "pig_lightning.models.FrameCLIPBackbone",
                                       "init_args": {"config": str(ROOT / "conf/quality/clip.json"),
                                                     "logit_scale_init": 2.6593}}}}},
        "data": {"source": {"class_path": "pig_lightning.data.SceneImages", "init_args": {
            "root": str(images), "num_train": IMAGES.num_train, "num_val": IMAGES.num_val, "synthetic_seed": IMAGES.seed}},
            "num_frames": 1, "train_sampling": "uniform", "image_size": 32, "max_text_length": 24, "batch_size": 128,
            "num_workers": 0},
    })
    exported = tmp / "clip"
    main(["export", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--output", str(exported)])
    return {"tmp": tmp, "videos": videos, "exported": exported}


def _finetune(stage1: dict, name: str, backbone: dict, tower: str = "MeanPoolingTower") -> Path:
    """Fine-tune on the videos (3 epochs) and test the best checkpoint; the run folder."""
    tmp = stage1["tmp"]
    run = _fit(tmp, name, {
        "seed_everything": 0,
        "test_after_fit": True,
        "trainer": _trainer(tmp, name, 3),
        "model": {"lr": 2e-4, "weight_decay": 0.2, "warmup_ratio": 0.05, "tower": {
            "class_path": f"pig_lightning.models.{tower}",
            "init_args": {"backbone": backbone}}},
        "data": {"source": {"class_path": "pig_lightning.data.SceneVideos", "init_args": {
            "root": str(stage1["videos"]), "synthetic_seed": VIDEOS.seed,
            **{k: getattr(VIDEOS, k) for k in ("num_train", "num_val", "num_test", "frames_per_event", "frame_size")}}},
            "tokenizer": str(stage1["exported"]), "num_frames": 8, "image_size": 32, "max_text_length": 24,
            "batch_size": 16, "eval_batch_size": 20, "num_workers": 0},
    })
    return run


@pytest.fixture(scope="module")
def finetuned(stage1) -> dict[str, Path]:
    """Mean pooling from the shipped pretrained CLIP and from random weights, PIG from the stage-1 export."""
    return {
        "from_pretrained": _finetune(stage1, "from_pretrained", {
            "class_path": "pig_lightning.models.FrameCLIPBackbone", "init_args": {"pretrained": str(SHIPPED)}}),
        "from_random": _finetune(stage1, "from_random", {
            "class_path": "pig_lightning.models.FrameCLIPBackbone",
            "init_args": {"config": str(ROOT / "conf/quality/clip.json")}}),
        "pig": _finetune(stage1, "pig", {
            "class_path": "pig_lightning.models.VideoProxyBackbone",
            "init_args": {"pretrained": str(stage1["exported"])}}, tower="PIGTower"),
    }


def _metrics(run: Path) -> dict:
    return json.loads((run / "test_report.json").read_text())["metrics"]


def test_exported_stage1_clip_loads_in_plain_transformers(stage1):
    exported = stage1["exported"]
    model = CLIPModel.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert model.config.vision_config.image_size == 32 and model.config.text_config.max_position_embeddings == 64
    ids = tokenizer(["a big red circle on the left", "a small blue cross at the top"], padding=True, return_tensors="pt")
    with torch.no_grad():
        text = model.text_projection(model.text_model(**ids).pooler_output)
    assert text.shape == (2, 64) and torch.isfinite(text).all()


def test_pretrained_start_beats_random_start_on_a_small_budget(finetuned):
    pretrained, random = _metrics(finetuned["from_pretrained"]), _metrics(finetuned["from_random"])
    # 40 test videos, 160 queries: chance MnR is 20.5
    assert pretrained["t2v/MnR"] < 0.75 * random["t2v/MnR"], (pretrained, random)
    assert pretrained["t2v/R@5"] > random["t2v/R@5"] + 10, (pretrained, random)


def test_pig_fine_tunes_from_the_folder_stage1_exported(stage1, finetuned):
    metrics = _metrics(finetuned["pig"])
    assert metrics["num_videos"] == VIDEOS.num_test and metrics["num_texts"] == 4 * VIDEOS.num_test
    # the hybrid tower starts from stage 1: its generator is a copy of the exported text transformer
    from pig_lightning.models import PIGTower, VideoProxyBackbone

    exported = str(stage1["exported"])
    tower = PIGTower(VideoProxyBackbone(pretrained=exported, tokenizer=exported, image_size=32, max_text_length=24),
                     num_frames=8)
    text_layers = CLIPModel.from_pretrained(exported).text_model.encoder.layers
    for copied, original in zip(tower.generator.layers.state_dict().items(), text_layers.state_dict().items()):
        assert torch.equal(copied[1], original[1]), copied[0]


def test_compare_prints_both_runs_with_their_online_cost(finetuned, capsys):
    main(["compare", str(finetuned["pig"]), str(finetuned["from_pretrained"])])
    lines = capsys.readouterr().out.splitlines()
    pig = next(line for line in lines if "PIGTower (hybrid)" in line)
    meanp = next(line for line in lines if "MeanPoolingTower (two-tower)" in line)
    # scoring = one 64-d dot product per test video for both: 2 x 64 x 40 FLOPs; one vector stored
    assert pig.split()[-2] == meanp.split()[-2] == f"{2 * 64 * 40 / 1e6:.3f}"
    assert pig.split()[-1] == meanp.split()[-1] == "64"


def test_compare_refuses_a_folder_without_a_report(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no test report" in capsys.readouterr().err


def test_pig_logs_its_pseudo_query_diagnostics_at_every_validation_and_in_the_test_report(finetuned):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = _metrics(finetuned["pig"])
    names = ("diag/text2pseudo_query/R@1", "diag/text2video_cls/R@1", "diag/pseudo_query/cos_gap")
    for name in names:
        assert name in metrics, sorted(metrics)
    assert 0 <= metrics["diag/text2pseudo_query/R@1"] <= 100
    assert abs(metrics["diag/pseudo_query/cos_own"] - metrics["diag/pseudo_query/cos_other"]
               - metrics["diag/pseudo_query/cos_gap"]) < 1e-5
    events = EventAccumulator(str(finetuned["pig"]))
    events.Reload()
    for name in names:  # one value per validation (3 epochs)
        assert len(events.Scalars(f"val/{name}")) == 3, name
    # a tower without an offline query logs none of them
    assert not any(k.startswith("diag/") for k in _metrics(finetuned["from_pretrained"]))
