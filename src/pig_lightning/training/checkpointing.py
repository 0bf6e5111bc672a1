"""Two checkpoints with two jobs, both written atomically.

* ``best-epoch{E}-step{S}.ckpt`` (:class:`BestCheckpoint`): the model to evaluate and ship, chosen
  by the monitored metric (``val/t2v/R@1``). It is *not* the state to resume from.
* ``last.ckpt`` (:class:`LatestCheckpoint`): the latest training state, written at every epoch
  end (``every_epoch``), every ``every_n_train_steps`` steps, every ``every_minutes`` of training,
  at the end of training and when the run is stopped by SIGTERM (cloud preemption, SLURM's end of
  time) or Ctrl-C. Resume from it (``--ckpt_path last``). On a GPU a B/32 PIG state is ~1.85 GiB:
  the GPU recipes write it every 30 minutes, not at each ~1-minute epoch.

Lightning's own ``save_last=True`` only copies a checkpoint when one was saved at that step, so
with a monitored top-1 it holds the last *improvement*: a run that stopped improving at epoch 40
and crashed at epoch 90 would restart from epoch 40. :class:`LatestCheckpoint` always writes.

A checkpoint is written next to its final name and moved into place (``os.replace``) once
complete, so a kill during the write leaves the previous file intact, never a cut-off one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

LAST_NAME = "last"
PARTIAL_SUFFIX = ".partial"
RNG_KEY = "rng_states"
CLOCK_EVERY_N_STEPS = 20  # how often ranks agree on rank 0's clock (a broadcast, so not every step)


class AtomicSave:
    """``ModelCheckpoint._save_checkpoint`` through a temporary file and an atomic rename."""

    def _save_checkpoint(self, trainer, filepath: str) -> None:  # type: ignore[override]
        partial = str(filepath) + PARTIAL_SUFFIX
        super()._save_checkpoint(trainer, partial)  # type: ignore[misc]  # collective: every rank calls it
        if trainer.is_global_zero:
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, filepath)
        trainer.strategy.barrier("AtomicSave._save_checkpoint")
        self._last_checkpoint_saved = filepath  # type: ignore[attr-defined]


class BestCheckpoint(AtomicSave, ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (monitored top-k), written atomically; never writes ``last``."""


class LatestCheckpoint(AtomicSave, ModelCheckpoint):
    """``last.ckpt``: the latest training state, to resume from.

    Args:
        every_n_train_steps: also write it every this many optimiser steps (mid-epoch), so a
            crash loses at most that many steps; 0 writes it at epoch ends only.
        dirpath: its folder; by default the run's ``checkpoints/`` folder, as ``BestCheckpoint``.
        save_on_sigterm: write it when the run is stopped by SIGTERM or Ctrl-C.
        every_epoch: write it at every epoch end (an epoch-end state resumes bit-exactly; on a GPU
            an epoch of MSR-VTT is about a minute, so the GPU recipes turn this off).
        every_minutes: also write it when this many minutes of training passed since the last
            write (0: never by time). Rank 0's clock decides, shared with the other ranks every
            ``CLOCK_EVERY_N_STEPS`` steps (a broadcast), so all of them save together.
        save_on_train_end: write it when training ends (``max_epochs``/``max_steps`` reached, or
            early stopping), unless that step was just saved.

    The checkpoint also carries the random-number generators' states (torch, numpy, python),
    so a run resumed at an epoch boundary draws the same dropout masks as an uninterrupted one.
    """

    def __init__(self, every_n_train_steps: int = 500, dirpath: str | None = None, save_on_sigterm: bool = True,
                 every_epoch: bool = True, every_minutes: float = 0.0, save_on_train_end: bool = True):
        if every_n_train_steps < 0:
            raise ValueError(f"resume_checkpoint.every_n_train_steps must be >= 0, got {every_n_train_steps}")
        if every_minutes < 0:
            raise ValueError(f"resume_checkpoint.every_minutes must be >= 0, got {every_minutes}")
        super().__init__(dirpath=dirpath, monitor=None, save_top_k=0, save_last=True,
                         every_n_train_steps=every_n_train_steps or None, save_on_train_epoch_end=True,
                         enable_version_counter=False)
        self.save_on_sigterm = save_on_sigterm
        self.every_epoch = every_epoch
        self.every_minutes = every_minutes
        self.save_on_train_end = save_on_train_end
        self._last_time_save = time.monotonic()
        self._mid_epoch = True  # is the state being saved inside an epoch (see _rng_restore_point)
        self._pending_rng: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return "LatestCheckpoint"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._mid_epoch = not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._time_to_save(trainer) and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._mid_epoch = True

    def _time_to_save(self, trainer) -> bool:
        if not self.every_minutes or trainer.global_step % CLOCK_EVERY_N_STEPS:
            return False
        due = time.monotonic() - self._last_time_save >= 60 * self.every_minutes
        return bool(trainer.strategy.broadcast(due, src=0))

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_time_save = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.every_epoch or self._should_skip_saving_checkpoint(trainer):
            return
        self._mid_epoch = False
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._mid_epoch = True

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.save_on_train_end or trainer.global_step == self._last_global_step_saved:
            return
        self._mid_epoch = not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch  # max_steps can stop mid-epoch
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._mid_epoch = True

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_rng is not None:
            _set_rng_states(self._pending_rng)
            self._pending_rng = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not self.save_on_sigterm or not isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            return
        if trainer.sanity_checking or trainer.global_step == self._last_global_step_saved:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        rank_zero_info(f"stopped by {type(exception).__name__}: saved the training state to {self.last_model_path}")

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        fit_state = ((checkpoint.get("loops") or {}).get("fit_loop") or {}).get("state_dict") or {}
        self._loader_states = fit_state.get("combined_loader")

    def on_train_start(self, trainer, pl_module) -> None:
        """Hand the training loader its saved position (``ResumableDataLoader``). Lightning does it
        only when the loader is built after the loops are restored; ``configure_optimizers``
        builds it before (``estimated_stepping_batches``), so the position would be ignored."""
        states, self._loader_states = getattr(self, "_loader_states", None), None
        combined = trainer.fit_loop._combined_loader
        if states and combined is not None:
            combined._load_state_dicts(states)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), RNG_KEY: {**_rng_states(), "at_batch_start": self._mid_epoch}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The generators resume where they were: set now for a state saved at an epoch end (the
        next epoch's loader draws its seed after this, as in the uninterrupted run); for a state
        saved inside an epoch, at the first training batch, after the resumed loader drew its seed
        (the uninterrupted run drew it before the save)."""
        state_dict = dict(state_dict)
        rng = state_dict.pop(RNG_KEY, None)
        super().load_state_dict(state_dict)
        if rng is None:
            return
        if rng.get("at_batch_start"):
            self._pending_rng = rng
        else:
            _set_rng_states(rng)


def _rng_states() -> dict[str, Any]:
    """Generator states as tensors and plain numbers, so the checkpoint still loads with
    ``torch.load(weights_only=True)``."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
              "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def is_complete_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a whole ``torch.save`` zip archive (every member's CRC checks out)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False
