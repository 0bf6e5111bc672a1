"""The command line end to end: real Trainer runs on the tiny synthetic set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pig_lightning.commands.train import run_cli
from pig_lightning.module import RetrievalModule

from tests.helpers import SMALL_SYNTHETIC, TINY_CLIP
from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes


def test_fit_writes_checkpoints_tensorboard_events_and_the_resolved_config(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root)
    cli = run_cli(["fit", "--config", str(config)])
    run_dir = tmp_path / "runs" / "t" / "version_0"
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("best-epoch") for n in ckpts)
    assert list(run_dir.glob("events.out.tfevents.*"))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["lr"] == 1e-3 and saved["data"]["num_frames"] == 4

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/logit_scale", "val/t2v/R@1", "val/v2t/MdR", "lr-AdamW/decay_x1"):
        assert tag in tags, tag
    assert "hp_metric" not in tags

    # the linked values reached the model and are in its saved hyper-parameters
    backbone_args = cli.model.hparams["tower"]["init_args"]["backbone"]["init_args"]
    assert backbone_args["image_size"] == 32 and backbone_args["max_text_length"] == 20
    assert backbone_args["tokenizer"] == str(Path(synthetic_root) / "tokenizer")
    assert cli.model.hparams["tower"]["init_args"]["num_frames"] == 4

    # the checkpoint rebuilds the module on its own, and test runs from it
    model = RetrievalModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    for (name, a), (_, b) in zip(model.state_dict().items(), cli.model.state_dict().items()):
        assert torch.equal(a, b), name
    test_cli = run_cli(["test", "--config", str(config), "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt")])
    metrics = test_cli.trainer.callback_metrics
    assert metrics["test/num_videos"] == 10 and metrics["test/num_texts"] == 30
    assert 0 <= metrics["test/t2v/R@1"] <= 100 and metrics["test/t2v/MdR"] >= 1

    # best-*.ckpt is for evaluating and shipping: weights and what loading needs, no optimiser state;
    # last.ckpt is for resuming: everything
    from pig_lightning import load_model

    best = next((run_dir / "checkpoints").glob("best-epoch*.ckpt"))
    best_state = torch.load(best, map_location="cpu", weights_only=False)
    last_state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert "optimizer_states" not in best_state and "callbacks" not in best_state
    assert last_state["optimizer_states"] and last_state["callbacks"]
    assert best.stat().st_size < 0.6 * (run_dir / "checkpoints" / "last.ckpt").stat().st_size
    assert load_model(best).trained_settings["num_frames"] == 4


def test_print_config_round_trips(tmp_path, synthetic_root, capsys):
    config = write_config(tmp_path, synthetic_root)
    with pytest.raises(SystemExit) as info:
        run_cli(["fit", "--config", str(config), "--print_config"])
    assert info.value.code in (0, None)
    printed = capsys.readouterr().out
    (tmp_path / "printed.yaml").write_text(printed)
    with pytest.raises(SystemExit):
        run_cli(["fit", "--config", str(tmp_path / "printed.yaml"), "--print_config"])
    assert capsys.readouterr().out == printed
    assert yaml.safe_load(printed)["data"]["num_frames"] == 4


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "pig_lightning", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "extra, edit, expected",
    [
        (["--model.lr_typo", "0.1"], None, "lr_typo"),
        ([], lambda c: c["model"].update(lrr=0.1), "lrr"),
        ([], lambda c: c["data"].update(num_frames="many"), "num_frames"),
    ],
)
def test_bad_config_keys_are_named(tmp_path, synthetic_root, extra, edit, expected, capsys):
    """In this process, through the command's entry point (``python -m pig_lightning`` is run by
    the make-synthetic test below)."""
    from pig_lightning.cli import main

    config = write_config(tmp_path, synthetic_root)
    if edit:
        data = yaml.safe_load(config.read_text())
        edit(data)
        config.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), *extra])
    assert exit_info.value.code not in (0, None)
    assert expected in capsys.readouterr().err


def test_make_synthetic_subcommand(tmp_path):
    result = _cli("make-synthetic", str(tmp_path / "s"), "--num_train", "2", "--num_val", "1", "--num_test", "1",
                  "--frame_size", "32", "--frames_per_event", "2", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s" / "manifest.json").is_file()


def test_bf16_mixed_precision_trains(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root, precision="bf16-mixed", max_steps=2, val_check_interval=None,
                          limit_val_batches=0)
    cli = run_cli(["fit", "--config", str(config), "--checkpoint.monitor", "null"])
    loss = cli.trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    # weights stay fp32 under mixed precision
    assert all(p.dtype == torch.float32 for p in cli.model.parameters())
    # the fixed model tested in fp32 and in bf16-mixed: the same metrics, within bf16's rounding
    import lightning as L

    results = {}
    for precision in ("32-true", "bf16-mixed"):
        trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
        results[precision] = trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    assert set(results["32-true"]) == set(results["bf16-mixed"]) and "test/t2v/R@1" in results["32-true"]
    for key, value in results["32-true"].items():  # R@k in %, 10 test videos; MdR/MnR in ranks
        assert results["bf16-mixed"][key] == pytest.approx(value, abs=10 if "R@" in key else 1), key


def test_validate_writes_a_json_report_with_separate_dsl_keys(tmp_path, synthetic_root):
    import json

    config = write_config(tmp_path, synthetic_root)
    cli = run_cli(["validate", "--config", str(config), "--model.dsl", "true"])
    metrics = cli.trainer.callback_metrics
    assert "val/dsl/t2v/R@1" in metrics and "val/t2v/R@1" in metrics
    report = json.loads((Path(cli.trainer.log_dir) / "val_report.json").read_text())
    assert report["stage"] == "val" and report["num_videos"] == 10 and report["num_texts"] == 30
    assert not any(k.startswith("dsl/") for k in report["metrics"])
    assert set(report["dsl_metrics"]) == {f"dsl/{d}/{m}" for d in ("t2v", "v2t")
                                          for m in ("R@1", "R@5", "R@10", "MdR", "MnR")}
    assert report["metrics"]["t2v/R@1"] == pytest.approx(float(metrics["val/t2v/R@1"]))
    ranks = report["per_query"]["t2v_rank"]
    assert len(ranks) == 30 and all(1 <= r <= 10 for r in ranks)
    assert 100 * sum(r == 1 for r in ranks) / 30 == pytest.approx(report["metrics"]["t2v/R@1"])
    assert report["per_query"]["text_index"] == list(range(30)) and len(report["config_hash"]) == 16
