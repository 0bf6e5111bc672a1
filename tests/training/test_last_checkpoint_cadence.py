"""When ``last.ckpt`` is written: each epoch end, every N steps, every M minutes (rank 0's clock,
checked every ``CLOCK_EVERY_N_STEPS`` steps) and at the end of training."""

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel

from pig_lightning.training import LatestCheckpoint
from pig_lightning.training.checkpointing import CLOCK_EVERY_N_STEPS


class Recorded(LatestCheckpoint):
    """The callback as users get it, remembering at which global steps it wrote."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.saved_at: list[int] = []

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self.saved_at.append(trainer.global_step)


def fit(tmp_path, epochs=2, **kwargs) -> Recorded:
    callback = Recorded(dirpath=str(tmp_path), **kwargs)
    trainer = Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu", max_epochs=epochs,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, limit_train_batches=32,
                      callbacks=[callback])
    trainer.fit(BoringModel())  # 32 steps an epoch
    assert (tmp_path / "last.ckpt").is_file()
    return callback


def test_by_default_each_epoch_end_and_every_n_steps(tmp_path):
    assert fit(tmp_path, every_n_train_steps=20).saved_at == [20, 32, 40, 60, 64]  # the end was just saved


def test_by_time_and_at_the_end_only(tmp_path):
    callback = fit(tmp_path, every_epoch=False, every_n_train_steps=0, every_minutes=1e-9)
    assert CLOCK_EVERY_N_STEPS == 20 and callback.saved_at == [20, 40, 60, 64]


def test_neither_epochs_nor_steps_nor_time_still_saves_at_the_end(tmp_path):
    assert fit(tmp_path, every_epoch=False, every_n_train_steps=0).saved_at == [64]


def test_a_long_interval_saves_nothing_before_the_end(tmp_path):
    assert fit(tmp_path, every_epoch=False, every_n_train_steps=0, every_minutes=30).saved_at == [64]


def test_negative_minutes_are_refused():
    with pytest.raises(ValueError, match="resume_checkpoint.every_minutes must be >= 0, got -1"):
        LatestCheckpoint(every_minutes=-1)
