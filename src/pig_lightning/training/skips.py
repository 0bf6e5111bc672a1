"""Count and report training videos skipped because they could not be decoded.

With ``data.source.on_decode_error: skip`` the training dataset replaces an unreadable video by another
and records ``(file, reason)`` in the batch (``batch["decode_skips"]``). This callback makes the
event visible: ``data/skipped_videos`` (per epoch, summed over processes) in TensorBoard, the
file names as TensorBoard text and a console warning at the end of every epoch that had any
(the data-loader workers also warn for each file as it happens).
"""

from __future__ import annotations

import logging

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

log = logging.getLogger(__name__)


class DecodeSkipMonitor(Callback):
    def __init__(self) -> None:
        self.epoch_skips: list[tuple[str, str]] = []
        self.total = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        skips = batch.get("decode_skips", []) if isinstance(batch, dict) else []
        # counted on the host: a value logged per step would be a new device tensor (a copy) per step
        self.epoch_skips.extend((str(path), str(reason)) for path, reason in skips)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        skips = self.epoch_skips
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[list[tuple[str, str]]] = [[] for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, skips)
            skips = [s for part in gathered for s in part]
        self.epoch_skips = []
        self.total += len(skips)
        # every process holds the gathered list: the same sum everywhere, logged once per epoch
        pl_module.log("data/skipped_videos", float(len(skips)), on_step=False, on_epoch=True, batch_size=1)
        if not skips or not trainer.is_global_zero:
            return
        lines = [f"{path}: {reason}" for path, reason in skips]
        log.warning("epoch %d: %d training videos could not be decoded and were replaced (%d so far):\n  %s",
                    trainer.current_epoch, len(skips), self.total, "\n  ".join(lines))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("data/skipped_videos", "  \n".join(lines), global_step=trainer.global_step)
