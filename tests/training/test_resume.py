"""Kill and resume as a cluster does it: real ``pig-lightning fit`` processes, killed with SIGKILL
or SIGTERM at chosen points, resumed with ``--ckpt_path last``. The tower is PIG (it has dropout,
so an exact resume needs the random-number states too)."""

import os
import signal
from pathlib import Path

import pytest
import torch

from .callbacks import read_records, state_dict_of
from .runs import pig_config, fit

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

STEPS_PER_EPOCH, EPOCHS = 3, 3  # 24 training videos, batch 8


def checkpoints(tmp_path, version: str = "version_0"):
    return tmp_path / "runs" / "t" / version / "checkpoints"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_root):
    """One whole run; its best checkpoint is chosen on a constant metric (val/num_videos, 'min'),
    so the best is epoch 0 and any checkpoint that copies the best is visibly not the last state."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    config = pig_config(tmp, synthetic_root)
    result = fit(config, "--checkpoint.monitor=val/num_videos", "--checkpoint.mode=min",
                 callbacks=(f"RecordRun:path={tmp}/record",))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, read_records(tmp / "record")


def test_last_ckpt_is_the_latest_state_and_best_is_apart(uninterrupted):
    tmp, records = uninterrupted
    folder = checkpoints(tmp)
    best = [p.name for p in folder.glob("best-*.ckpt")]
    assert best == ["best-epoch000-step000003.ckpt"]  # no later epoch improves a constant metric
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == STEPS_PER_EPOCH * EPOCHS == records[-1]["final_step"]
    assert last["epoch"] == EPOCHS - 1
    best_weights = state_dict_of(folder / best[0])
    assert any(not torch.equal(value, best_weights[name]) for name, value in last["state_dict"].items())
    assert not list(folder.glob("*.partial"))


def test_kill_at_an_epoch_boundary_then_resume_gives_the_same_weights(uninterrupted, tmp_path, synthetic_root):
    whole_tmp, whole = uninterrupted
    config = pig_config(tmp_path, synthetic_root)
    killed = fit(config, "--checkpoint.monitor=val/num_videos", "--checkpoint.mode=min",
                 callbacks=("KillAt:epoch=2",))
    assert killed.returncode == -signal.SIGKILL
    assert torch.load(checkpoints(tmp_path) / "last.ckpt", weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    resumed = fit(config, "--checkpoint.monitor=val/num_videos", "--checkpoint.mode=min", "--ckpt_path", "last",
                  callbacks=(f"RecordRun:path={tmp_path}/record",))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = read_records(tmp_path / "record")
    assert [r["step"] for r in records[:-1]] == list(range(2 * STEPS_PER_EPOCH, EPOCHS * STEPS_PER_EPOCH))
    # the same batches as the uninterrupted run's last epoch, and bit-identical final weights
    assert [r["videos"] for r in records[:-1]] == [r["videos"] for r in whole[2 * STEPS_PER_EPOCH:-1]]
    assert records[-1]["weights"] == whole[-1]["weights"]
    a, b = state_dict_of(checkpoints(tmp_path) / "last.ckpt"), state_dict_of(checkpoints(whole_tmp) / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the resumed run continued in the same version folder (one TensorBoard run)
    assert not (tmp_path / "runs" / "t" / "version_1").exists()


def test_kill_mid_epoch_then_resume_loses_only_the_steps_since_the_checkpoint(uninterrupted, tmp_path,
                                                                               synthetic_root):
    _, whole = uninterrupted
    config = pig_config(tmp_path, synthetic_root)
    every = ("--resume_checkpoint.every_n_train_steps=2",)
    killed = fit(config, *every, callbacks=("KillAt:step=5",))  # last state written at step 4 (epoch 1, batch 0)
    assert killed.returncode == -signal.SIGKILL
    assert torch.load(checkpoints(tmp_path) / "last.ckpt", weights_only=True)["global_step"] == 4
    resumed = fit(config, *every, "--ckpt_path", "last", callbacks=(f"RecordRun:path={tmp_path}/record",))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = read_records(tmp_path / "record")
    steps = [r["step"] for r in records[:-1]]
    assert steps[0] == 4 and records[-1]["final_step"] == EPOCHS * STEPS_PER_EPOCH  # step 5 is redone, no more
    # The interrupted epoch continues with the batches it had not trained on (the training loader
    # is stateful). With a plain DataLoader, Lightning restarted it from batch 0 and dropped its
    # last batch: [whole[3], whole[4]] in place of [whole[4], whole[5]] (measured before the fix).
    assert [r["videos"] for r in records[:-1]] == [r["videos"] for r in whole[4:-1]]
    assert [r["batch_idx"] for r in records[:2]] == [1, 2]
    assert records[-1]["weights"] == whole[-1]["weights"]  # generator states travel too: the same run


def test_sigterm_saves_the_training_state_before_exiting(tmp_path, synthetic_root):
    config = pig_config(tmp_path, synthetic_root)
    result = fit(config, "--resume_checkpoint.every_n_train_steps=0", callbacks=("KillAt:step=4,signal_name=SIGTERM",))
    last = torch.load(checkpoints(tmp_path) / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4, result.stderr[-3000:]  # not the epoch-end state of step 3
    assert "saved the training state" in result.stderr


def test_a_checkpoint_cut_off_while_written_is_never_resumed_from(tmp_path, caplog):
    from pig_lightning.training.resume import find_resume

    older = tmp_path / "runs" / "t" / "version_0" / "checkpoints" / "last.ckpt"
    newer = tmp_path / "runs" / "t" / "version_1" / "checkpoints" / "last.ckpt"
    for path in (older, newer):
        path.parent.mkdir(parents=True)
        torch.save({"global_step": 3, "state_dict": {"w": torch.randn(100)}}, path)
    newer.write_bytes(newer.read_bytes()[:-200])  # as a kill during a non-atomic write leaves it
    os.utime(older, (1, 1))
    found = find_resume(tmp_path / "runs" / "t")
    assert found.path == older and found.version == "version_0" and found.skipped == (newer,)
    assert "incomplete" in caplog.text


def test_an_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """The atomic write: the state goes to last.ckpt.partial and is renamed only when complete."""
    from lightning.pytorch import Trainer

    from pig_lightning.training import LatestCheckpoint

    trainer = Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu", enable_progress_bar=False)
    callback = LatestCheckpoint(dirpath=str(tmp_path))
    (tmp_path / "last.ckpt").write_bytes(b"previous")

    def dies_half_way(path, weights_only=False):
        Path(path).write_bytes(b"half a checkpoi")
        raise KeyboardInterrupt  # the kill

    monkeypatch.setattr(trainer, "save_checkpoint", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        callback._save_checkpoint(trainer, str(tmp_path / "last.ckpt"))
    assert (tmp_path / "last.ckpt").read_bytes() == b"previous"
