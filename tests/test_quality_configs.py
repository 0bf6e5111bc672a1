"""The quality benchmark's configs: one recipe for every tower, built from the shipped pretrained CLIP."""

import copy
from pathlib import Path

import pytest
import yaml

from pig_lightning.commands.train import run_cli
from pig_lightning.data.worlds.scenes import SceneImagesConfig, SceneVideosConfig, make_scene_images, make_scene_videos

pytestmark = pytest.mark.slow  # trains or launches processes

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "conf" / "quality"
TOWERS = ("meanp", "seqtransf", "clipvip", "pig", "xpool")
VIDEOS = SceneVideosConfig(num_train=8, num_val=4, num_test=4, frames_per_event=2, frame_size=32, seed=2)


def _without_tower(config: dict) -> dict:
    out = copy.deepcopy(config)
    tower = out["model"].pop("tower")
    out["trainer"]["logger"]["init_args"].pop("name")
    return {"rest": out, "backbone_weights": tower["init_args"]["backbone"]["init_args"]}


def test_every_tower_has_the_same_data_budget_schedule_and_weights():
    configs = {name: yaml.safe_load((QUALITY / f"{name}.yaml").read_text()) for name in TOWERS}
    reference = _without_tower(configs["meanp"])
    assert reference["backbone_weights"] == {"pretrained": "assets/clip-tiny-scenes"}
    for name, config in configs.items():
        assert _without_tower(config) == reference, name


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    return make_scene_videos(tmp_path_factory.mktemp("quality") / "videos", VIDEOS, num_workers=1)


@pytest.mark.parametrize("tower", TOWERS)
def test_quality_config_trains_a_step_from_the_shipped_clip(tower, video_root, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs name assets/ and conf/ relative to the repository
    sizes = [f"--data.source.{k}={getattr(VIDEOS, k)}" for k in
             ("num_train", "num_val", "num_test", "frames_per_event", "frame_size")]
    cli = run_cli([
        "fit", "--config", str(QUALITY / f"{tower}.yaml"), f"--data.source.root={video_root}",
        f"--data.source.synthetic_seed={VIDEOS.seed}", *sizes, "--data.batch_size=4",
        "--data.eval_batch_size=4", "--data.num_workers=0", "--trainer.limit_train_batches=1",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--test_after_fit=false",
    ])
    assert cli.trainer.global_step == 1
    assert cli.model.tower.backbone.model_source == "assets/clip-tiny-scenes"


def test_stage1_config_trains_a_step(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    images = make_scene_images(tmp_path / "images", SceneImagesConfig(num_train=16, num_val=4, seed=2), num_workers=1)
    cli = run_cli([
        "fit", "--config", str(QUALITY / "pretrain_clip.yaml"), f"--data.source.root={images}",
        "--data.source.num_train=16", "--data.source.num_val=4", "--data.source.synthetic_seed=2",
        "--data.batch_size=8", "--data.num_workers=0", "--trainer.limit_train_batches=1",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ])
    assert cli.trainer.global_step == 1 and cli.datamodule.num_frames == 1
    assert "val/t2v/R@1" in cli.trainer.callback_metrics
