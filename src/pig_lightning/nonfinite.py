"""A non-finite loss stops the run with what is needed to find the cause, or is skipped and counted.

The check is made after the backward pass, before the optimiser step
(:meth:`~pig_lightning.module.RetrievalModule.on_before_optimizer_step`). On several processes
every rank learns whether *any* rank's loss is non-finite (one scalar all-reduce per step, queued
on the device), so all of them stop, or all skip the update, together: a rank that raised alone
would leave the others waiting in the next collective.

Reading that flag on the host makes the CPU wait for the GPU to finish the backward pass, so the
next step's work is queued late, at every step. By default (``on_nonfinite_loss: raise``) it is
therefore read one step later (:class:`PendingCheck`: copied to pinned host memory without waiting,
read at the next step, when its GPU work is long done), and before anything that would keep or
show the weights: a validation, a checkpoint, the end of an epoch or of training. The run stops
with the bad step's number, terms and videos; its update was applied, but never saved. ``skip``
must know before the update whether to skip it, so it reads the flag at once (one wait a step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist


class NonFiniteLossError(FloatingPointError):
    """The training loss was NaN or infinite."""


@dataclass
class StepPart:
    """One batch of an optimiser step, kept on its device until the step's losses are checked
    (after the backward pass: checking earlier would wait for the forward pass to finish)."""

    terms: dict[str, torch.Tensor]  # "loss", "contrastive", the tower's other losses (detached)
    video_index: torch.Tensor | None  # None: a batch built without the data module's indices
    batch_size: int


def nonfinite_flag(loss: torch.Tensor) -> torch.Tensor:
    """``[1.0]`` when any value of ``loss`` is NaN/inf on any process, else ``[0.0]``: a device
    tensor (one all-reduce), not read."""
    flag = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag


@dataclass
class PendingCheck:
    """A step's all-reduced flag on its way to the host, with what the error message needs."""

    flag: torch.Tensor  # on the host (pinned) once ``ready`` has passed
    ready: "torch.cuda.Event | None"  # None: the flag was on the CPU already
    parts: list[StepPart]
    step: int

    @classmethod
    def start(cls, flag: torch.Tensor, parts: list[StepPart], step: int) -> "PendingCheck":
        """Queue the copy of ``flag`` to the host behind the step's work, without waiting for it."""
        if not flag.is_cuda:
            return cls(flag, None, parts, step)
        host = torch.empty(flag.shape, dtype=flag.dtype, pin_memory=True)
        host.copy_(flag, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
        return cls(host, ready, parts, step)

    def nonfinite(self) -> bool:
        if self.ready is not None and not self.ready.query():  # at the next step it has long passed
            self.ready.synchronize()
        return bool(self.flag.item() > 0)


def describe(step: int, rank: int, terms: Mapping[str, torch.Tensor], video_ids: Sequence[str]) -> str:
    values = ", ".join(f"{name} {float(value.detach()):.6g}" for name, value in terms.items())
    shown = ", ".join(video_ids[:16]) + (f" (+{len(video_ids) - 16} more)" if len(video_ids) > 16 else "")
    return f"non-finite loss at global step {step} (rank {rank}): {values}; this rank's batch: videos {shown}"


def batch_video_ids(trainer, video_index: torch.Tensor | None) -> list[str]:
    """The ids of a training batch's videos (their dataset indices when the ids are not at hand)."""
    if video_index is None:
        return ["(unknown: the batch has no video_index)"]
    indices = [int(i) for i in video_index.tolist()]
    datasets = getattr(getattr(trainer, "datamodule", None), "_datasets", None) or {}
    records = getattr(datasets.get("train"), "records", None)
    if records is None:
        return [f"#{i}" for i in indices]
    return [records[i].video_id for i in indices]
