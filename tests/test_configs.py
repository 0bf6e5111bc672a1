"""Every config under conf/ builds and trains one step (tiny set, so it stays fast)."""

from pathlib import Path

import pytest
import yaml

from pig_lightning.commands.train import run_cli

from tests.helpers import SMALL_SYNTHETIC, TINY_CLIP

pytestmark = pytest.mark.slow  # trains or launches processes

CONF = Path(__file__).resolve().parents[1] / "conf"
DEMO_CONFIGS = sorted(CONF.glob("demo*.yaml"))


def test_there_are_demo_configs_for_each_tower():
    assert {p.stem for p in DEMO_CONFIGS} >= {"demo", "demo_pig", "demo_clipvip"}


@pytest.mark.parametrize("config", DEMO_CONFIGS, ids=lambda p: p.stem)
def test_demo_config_builds_and_trains_a_step(config, synthetic_root, tmp_path, monkeypatch):
    monkeypatch.chdir(CONF.parent)  # configs name conf/clip/tiny.json relative to the repository
    small = [f"--data.source.{k}={getattr(SMALL_SYNTHETIC, k)}" for k in
             ("num_train", "num_val", "num_test", "captions_per_video", "frame_size", "frames_per_event")]
    cli = run_cli([
        "fit", "--config", str(config),
        f"--data.source.root={synthetic_root}", f"--data.source.synthetic_seed={SMALL_SYNTHETIC.seed}", *small,
        "--data.batch_size=8", "--data.eval_batch_size=10", "--data.num_workers=0",
        "--trainer.limit_train_batches=1", "--trainer.max_epochs=1", "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--test_after_fit=false",
    ])
    assert cli.trainer.global_step == 1
    assert "val/t2v/R@1" in cli.trainer.callback_metrics


RECIPE_CONFIGS = sorted(p for p in CONF.glob("*.yaml") if not p.stem.startswith("demo"))


def test_recipe_configs_exist_for_every_dataset_and_tower():
    names = {p.stem for p in RECIPE_CONFIGS}
    assert names >= {"msrvtt", "msrvtt_b16", "msrvtt_clipvip", "msrvtt_clipvip_equal_budget", "msrvtt_clip4clip",
                     "msrvtt_xpool", "msvd", "vatex", "didemo", "activitynet", "lsmdc"}


@pytest.mark.parametrize("config", RECIPE_CONFIGS, ids=lambda p: p.stem)
def test_recipe_config_parses_and_builds_with_a_tiny_backbone(config, tokenizer_dir, capsys):
    import copy

    from jsonargparse import ArgumentParser

    from pig_lightning.module import RetrievalModule

    # 1. the whole file (trainer, model, data) validates against the CLI schema
    with pytest.raises(SystemExit) as info:
        run_cli(["fit", "--config", str(config), "--print_config"])
    assert info.value.code in (0, None)
    capsys.readouterr()
    # 2. the model section builds, with the data's shared values, on a tiny random CLIP
    raw = yaml.safe_load(config.read_text())
    data = raw["data"]
    tower = raw["model"]["tower"]
    backbone = tower["init_args"]["backbone"]["init_args"]
    tiny = copy.deepcopy(TINY_CLIP)
    tiny["text_config"]["max_position_embeddings"] = 77  # as real CLIP: the recipes' lengths must fit
    backbone.update(pretrained=None, config=tiny, tokenizer=tokenizer_dir, image_size=32,
                    max_text_length=data["max_text_length"])
    tower["init_args"]["num_frames"] = data["num_frames"]
    raw["model"]["init_checkpoint"] = None  # a recipe's starting weights (msrvtt_from_clipvip.yaml) are B/32
    parser = ArgumentParser()
    parser.add_class_arguments(RetrievalModule, "model")
    model = parser.instantiate_classes(parser.parse_object({"model": raw["model"]})).model
    assert model.hparams.lr == raw["model"]["lr"]
    assert model.tower.kind in ("hybrid", "two-tower", "single-tower")


def _recipe(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def test_msrvtt_recipes_follow_the_release():
    """PIG as the release ran it (4 x 32, lr 3e-6, evaluation every 50 steps), its CLIP-ViP baseline
    as the release ran it (1 x 32, lr 1e-6, every 100 steps), and the equal-budget baseline that
    differs from PIG's recipe in the tower only (docs/reproducing.md)."""
    pig, baseline, equal = _recipe("msrvtt"), _recipe("msrvtt_clipvip"), _recipe("msrvtt_clipvip_equal_budget")
    for recipe, devices, batch, lr, every in ((pig, 4, 32, 3e-6, 50), (baseline, 1, 32, 1e-6, 100),
                                              (equal, 4, 32, 3e-6, 50)):
        assert recipe["trainer"]["devices"] * recipe["data"]["batch_size"] == devices * batch
        assert recipe["trainer"]["devices"] == devices and recipe["model"]["lr"] == lr
        assert recipe["trainer"]["val_check_interval"] == every and recipe["trainer"]["check_val_every_n_epoch"] is None
        assert recipe["model"]["gradient_scale"] == "horovod" and recipe["model"]["dsl"] is True
        assert recipe["trainer"]["gradient_clip_val"] == 1.0
    assert baseline["model"]["tower"]["class_path"] == "pig_lightning.models.VideoCLSTower"
    assert equal["model"]["tower"]["class_path"] == "pig_lightning.models.VideoCLSTower"
    assert pig["model"]["tower"]["class_path"] == "pig_lightning.models.PIGTower"
    strip = lambda r: {**r, "model": {k: v for k, v in r["model"].items() if k != "tower"},  # noqa: E731
                       "trainer": {**r["trainer"], "logger": None}}
    assert strip(equal) == strip(pig)
    assert equal["model"]["tower"]["init_args"]["backbone"] == pig["model"]["tower"]["init_args"]["backbone"]


@pytest.mark.parametrize("name", ["msrvtt", "msrvtt_clipvip", "msrvtt_clipvip_equal_budget", "msrvtt_b16"])
def test_dsl_results_never_select_the_checkpoint(name, capsys):
    with pytest.raises(SystemExit):
        run_cli(["fit", "--config", str(CONF / f"{name}.yaml"), "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["dsl"] is True
    assert config["checkpoint"]["monitor"] == "val/t2v/R@1"


def test_validation_every_n_steps_across_epochs(synthetic_root, tmp_path, monkeypatch):
    """The release's cadence as the recipes set it (val_check_interval counted over global steps):
    with 3 steps per epoch and an evaluation every 2 steps, the evaluations fall at steps 2, 4, 6,
    two of them mid-epoch, each over the whole validation set."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(CONF.parent)
    small = [f"--data.source.{k}={getattr(SMALL_SYNTHETIC, k)}" for k in
             ("num_train", "num_val", "num_test", "captions_per_video", "frame_size", "frames_per_event")]
    cli = run_cli([
        "fit", "--config", str(CONF / "demo.yaml"),
        f"--data.source.root={synthetic_root}", f"--data.source.synthetic_seed={SMALL_SYNTHETIC.seed}", *small,
        "--data.batch_size=8", "--data.eval_batch_size=10", "--data.num_workers=0",
        "--trainer.max_epochs=2", "--trainer.val_check_interval=2", "--trainer.check_val_every_n_epoch=null",
        "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--test_after_fit=false",
    ])
    assert cli.trainer.global_step == 6  # 24 videos / 8 per batch, 2 epochs
    events = EventAccumulator(cli.trainer.logger.log_dir)
    events.Reload()
    # after global steps 2, 4, 6; Lightning logs an evaluation at the 0-based index of the batch before it
    assert [e.step for e in events.Scalars("val/t2v/R@1")] == [1, 3, 5]
    assert [e.value for e in events.Scalars("val/num_videos")] == [SMALL_SYNTHETIC.num_val] * 3


@pytest.mark.parametrize("config", [p for p in RECIPE_CONFIGS if "accelerator: gpu" in p.read_text()], ids=lambda p: p.stem)
def test_gpu_recipes_redraw_the_progress_bar_as_often_as_they_log(config):
    """At refresh rate 1 the bar reads the loss from the GPU at every step (a host sync per step)."""
    trainer = yaml.safe_load(config.read_text())["trainer"]
    bars = [c for c in trainer.get("callbacks", []) if c["class_path"].endswith("TQDMProgressBar")]
    assert len(bars) == 1 and bars[0]["init_args"]["refresh_rate"] == trainer["log_every_n_steps"] > 1


@pytest.mark.parametrize("config", [p for p in RECIPE_CONFIGS if "val_check_interval: " in p.read_text()],
                         ids=lambda p: p.stem)
def test_recipes_that_validate_every_few_steps_draw_pictures_at_every_tenth_validation(config):
    """Rank 0 draws while the other ranks wait: at every validation of a 50-step cadence that is
    a pause every 50 steps; once in 10 keeps the pictures and loses little."""
    raw = yaml.safe_load(config.read_text())
    assert raw["qualitative"]["every_n_validations"] == 10


@pytest.mark.parametrize("config", [p for p in RECIPE_CONFIGS if "accelerator: gpu" in p.read_text()], ids=lambda p: p.stem)
def test_gpu_recipes_write_the_training_state_by_time_not_every_epoch(config):
    """~1.85 GiB written and fsynced after each ~1-minute epoch would cost more than the epoch's
    GPU work spends on some of its steps; every 30 minutes and at the end loses at most that."""
    raw = yaml.safe_load(config.read_text())["resume_checkpoint"]
    assert raw == {"every_epoch": False, "every_n_train_steps": 0, "every_minutes": 30}


@pytest.mark.parametrize("config", [p for p in RECIPE_CONFIGS if "accelerator: gpu" in p.read_text()], ids=lambda p: p.stem)
def test_gpu_recipes_let_float32_products_use_tensor_cores(config):
    assert yaml.safe_load(config.read_text())["float32_matmul_precision"] == "high"


@pytest.mark.parametrize("config", [p for p in RECIPE_CONFIGS if "accelerator: gpu" in p.read_text()
                                    and "strategy: auto" not in p.read_text()], ids=lambda p: p.stem)
def test_multi_gpu_recipes_use_the_ddp_strategy_with_bucket_views(config):
    strategy = yaml.safe_load(config.read_text())["trainer"]["strategy"]
    assert strategy["class_path"] == "pig_lightning.training.DDP"
    assert strategy["init_args"] == {"gradient_as_bucket_view": True, "comm_hook": "none"}
