"""Multi-node DDP as a cluster launches it, on one machine: two ``torchrun`` "nodes" (gloo, CPU)."""

import json
import os
import signal
import time

import pytest
import torch

from pig_lightning.commands.train import run_cli

from tests.helpers import write_config
from .callbacks import read_records
from .launch import kill_matching, torchrun_nodes, wait

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_two_nodes_train_together(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root, max_steps=6, val_check_interval=3)
    procs = torchrun_nodes(config, "--data.batch_size=4", "--test_after_fit=true",
                           callbacks=(f"RecordRun:path={tmp_path}/record",))
    for code, out, _ in wait(procs, timeout=240):
        assert code == 0, out[-3000:]
    nodes = [read_records(tmp_path / "record", rank) for rank in (0, 1)]
    # one global step count and identical weights on both nodes at the end
    assert nodes[0][-1]["final_step"] == nodes[1][-1]["final_step"] == 6
    assert nodes[0][-1]["world_size"] == 2 and nodes[0][-1]["weights"] == nodes[1][-1]["weights"]
    # each node reads its own share of every epoch: disjoint, and together the epoch's batches
    for r0, r1 in zip(nodes[0][:-1], nodes[1][:-1]):
        assert r0["step"] == r1["step"] and not set(r0["videos"]) & set(r1["videos"])
    # checkpoints and TensorBoard events written once, by global rank 0
    versions = sorted(p.name for p in (tmp_path / "runs" / "t").iterdir())
    assert versions == ["version_0"]
    run_dir = tmp_path / "runs" / "t" / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    # the 2-node test of the best checkpoint equals a 1-process test of the same file
    report = json.loads((run_dir / "test_report.json").read_text())
    single = run_cli(["test", "--config", str(config), "--ckpt_path", report["checkpoint"],
                      f"--trainer.logger.init_args.save_dir={tmp_path / 'single'}"])
    for key, value in report["metrics"].items():
        assert single.trainer.callback_metrics[f"test/{key}"].item() == pytest.approx(value, abs=1e-4), key
    assert report["metrics"]["num_videos"] == 10


def test_a_dead_node_ends_the_other_promptly(tmp_path, synthetic_root):
    """Rank 1 is killed at step 2: rank 0 fails its next collective ('connection closed by peer')
    and exits with the one-line error instead of waiting."""
    config = write_config(tmp_path, synthetic_root, max_steps=6)
    procs = torchrun_nodes(config, "--data.batch_size=4", callbacks=("KillAt:step=2,rank=1",))
    (code0, out0, t0), (code1, _, _) = wait(procs, timeout=120)
    assert code0 != 0 and code1 != 0
    assert "pig-lightning fit: error:" in out0
    assert "Connection closed by peer" in out0 or "Connection reset by peer" in out0  # whichever gloo sees first
    assert t0 < 90, f"node 0 took {t0:.0f} s to exit"


def test_a_frozen_node_ends_the_other_after_the_configured_timeout(tmp_path, synthetic_root):
    """Rank 1 stops (SIGSTOP: alive, silent, as a hung host). Rank 0 gives up after the process
    group's timeout, set with the strategy (``--trainer.strategy.timeout``), not gloo's 30 minutes."""
    config = write_config(tmp_path, synthetic_root, max_steps=6)
    procs = torchrun_nodes(config, "--data.batch_size=4",
                           "--trainer.strategy=lightning.pytorch.strategies.DDPStrategy",
                           "--trainer.strategy.timeout=0:00:15", callbacks=("KillAt:step=2,rank=1,signal_name=SIGSTOP",))
    try:
        code0, out0, t0 = wait(procs[:1], timeout=150)[0]
    finally:
        kill_matching(str(config))  # the stopped worker and its launcher
        procs[1].communicate()
    assert code0 != 0 and "pig-lightning fit: error:" in out0, out0[-3000:]
    assert "Timed out waiting 15000ms" in out0
    assert t0 < 100, f"node 0 took {t0:.0f} s to exit"


def test_a_nan_on_one_node_is_skipped_by_both(tmp_path, synthetic_root):
    """``model.on_nonfinite_loss: skip`` under DDP: rank 1's batch of step 1 is poisoned; both ranks
    learn it (one all-reduced flag), both skip, and both end with the same weights."""
    config = write_config(tmp_path, synthetic_root, max_steps=4, val_check_interval=None, check_val_every_n_epoch=1)
    procs = torchrun_nodes(config, "--data.batch_size=4", "--model.on_nonfinite_loss=skip",
                           callbacks=("PoisonBatch:step=1,rank=1", f"RecordRun:path={tmp_path}/record"))
    for code, out, _ in wait(procs, timeout=240):
        assert code == 0, out[-3000:]
        assert "skipping the step: non-finite loss at global step 1" in out
    nodes = [read_records(tmp_path / "record", rank)[-1] for rank in (0, 1)]
    assert nodes[0]["final_step"] == nodes[1]["final_step"] == 4 and nodes[0]["weights"] == nodes[1]["weights"]


def test_nodes_and_devices_that_do_not_match_the_launcher_are_refused(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root, max_steps=2)
    procs = torchrun_nodes(config, "--data.batch_size=4", "--trainer.num_nodes=1")  # 2 launched
    for code, out, seconds in wait(procs, timeout=120):
        assert code != 0 and seconds < 100
        assert ("pig-lightning fit: error: You set `devices=1` and `num_nodes=1` in Lightning, but the product "
                "(1 * 1) does not match the world size (2)") in out
