"""Callbacks the process-level tests add with ``--trainer.callbacks+=tests.training.callbacks.X``
(importable from the repository root): a fault at a chosen point, and records of what ran."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class KillAt(Callback):
    """Send ``signal`` to this process at the start of ``epoch`` or after optimiser step ``step``;
    ``rank`` limits it to one global rank (-1: every rank)."""

    def __init__(self, epoch: int = -1, step: int = -1, signal_name: str = "SIGKILL", rank: int = -1):
        self.epoch, self.step, self.signal_name, self.rank = epoch, step, signal_name, rank

    def _fire(self, trainer) -> None:
        if self.rank < 0 or trainer.global_rank == self.rank:
            print(f"KillAt: {self.signal_name} to rank {trainer.global_rank} at {time.time():.3f}", flush=True)
            os.kill(os.getpid(), getattr(signal, self.signal_name))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.epoch >= 0 and trainer.current_epoch == self.epoch:
            self._fire(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.step >= 0 and trainer.global_step == self.step:
            self._fire(trainer)


class RecordRun(Callback):
    """Append one JSON line per training batch (rank, step, epoch, video indices) to ``path``, and at
    the end of fit the digest of the weights on this rank."""

    def __init__(self, path: str):
        self.path = path

    def _write(self, record: dict) -> None:
        with open(f"{self.path}.rank{record['rank']}", "a") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._write({"rank": trainer.global_rank, "step": trainer.global_step, "epoch": trainer.current_epoch,
                     "batch_idx": batch_idx, "videos": batch["video_index"].tolist()})

    def on_fit_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self._write({"rank": trainer.global_rank, "final_step": trainer.global_step, "weights": digest.hexdigest(),
                     "world_size": trainer.world_size})


def read_records(path: str | Path, rank: int = 0) -> list[dict]:
    file = Path(f"{path}.rank{rank}")
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def state_dict_of(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


class PoisonBatch(Callback):
    """Put a NaN into the frames of the batch of optimiser step ``step`` (every step from it on
    with ``every``; on global rank ``rank`` only, -1: all): the loss of that step is non-finite."""

    def __init__(self, step: int = 0, every: bool = False, rank: int = -1):
        self.step, self.every, self.rank = step, every, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank >= 0 and trainer.global_rank != self.rank:
            return
        if trainer.global_step == self.step or (self.every and trainer.global_step >= self.step):
            batch["frames"][0, 0, 0, 0, 0] = float("nan")
