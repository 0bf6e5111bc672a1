"""A non-finite loss ends the run with what is needed to find it, or is skipped, counted and bounded."""


import pytest
import torch

from pig_lightning.cli import main
from pig_lightning.commands.train import run_cli
from pig_lightning.nonfinite import NonFiniteLossError

from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes

POISON = "--trainer.callbacks+=tests.training.callbacks.PoisonBatch"


def test_a_nan_loss_stops_with_the_step_terms_and_videos(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root)
    with pytest.raises(NonFiniteLossError) as info:
        run_cli(["fit", "--config", str(config), POISON, "--trainer.callbacks.step=2"])
    message = str(info.value)
    assert "non-finite loss at global step 2 (rank 0)" in message
    assert "loss nan" in message and "contrastive nan" in message
    assert "synth000" in message  # the batch's video ids, as in the annotation file


def test_the_command_line_reports_it_in_one_line(tmp_path, synthetic_root, capsys):
    config = write_config(tmp_path, synthetic_root)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(config), POISON, "--trainer.callbacks.step=1"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "pig-lightning fit: error: NonFiniteLossError: non-finite loss at global step 1" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_skip_counts_and_logs_and_training_goes_on(tmp_path, synthetic_root, caplog):
    config = write_config(tmp_path, synthetic_root, max_steps=3, val_check_interval=None,
                          check_val_every_n_epoch=1)
    cli = run_cli(["fit", "--config", str(config), "--model.on_nonfinite_loss=skip", POISON,
                   "--trainer.callbacks.step=1"])
    assert cli.trainer.global_step == 3  # the skipped step counts for the schedule
    assert cli.trainer.callback_metrics["train/nonfinite_skips"] == 1
    assert "skipping the step: non-finite loss at global step 1" in caplog.text
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def test_skip_stops_after_the_limit(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root)
    with pytest.raises(NonFiniteLossError, match=r"after 2 skipped steps \(model.max_nonfinite_skips\)"):
        run_cli(["fit", "--config", str(config), "--model.on_nonfinite_loss=skip", "--model.max_nonfinite_skips=2",
                 POISON, "--trainer.callbacks.step=0", "--trainer.callbacks.every=true"])


def test_a_skipped_step_changes_neither_weights_nor_optimiser_state(tmp_path, synthetic_root):
    """Two runs of one step each from the same start: one skips its only step, and must end with
    the initial weights and an untouched optimiser (no moments, no weight decay)."""
    config = write_config(tmp_path, synthetic_root, max_steps=1, val_check_interval=None, check_val_every_n_epoch=1)
    skipped = run_cli(["fit", "--config", str(config), "--model.on_nonfinite_loss=skip", POISON,
                       "--trainer.callbacks.step=0", f"--trainer.logger.init_args.save_dir={tmp_path / 'a'}"])
    fresh = run_cli(["fit", "--config", str(config), "--trainer.max_steps=0",
                     f"--trainer.logger.init_args.save_dir={tmp_path / 'b'}"])
    for (name, a), (_, b) in zip(skipped.model.state_dict().items(), fresh.model.state_dict().items()):
        assert torch.equal(a, b), name
    optimizer = skipped.trainer.optimizers[0]
    assert all(not state for state in optimizer.state.values())


def test_a_nan_at_the_last_step_is_still_raised_and_never_saved(tmp_path, synthetic_root):
    """The default check reads a step's flag later (the next step, a validation, a checkpoint, the
    end): a NaN in the very last step still stops the run, before its weights reach a file."""
    config = write_config(tmp_path, synthetic_root, max_steps=3, val_check_interval=None, check_val_every_n_epoch=1)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at global step 2 "):
        run_cli(["fit", "--config", str(config), POISON, "--trainer.callbacks.step=2"])
    for ckpt in tmp_path.rglob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt
