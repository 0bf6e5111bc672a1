"""A non-finite loss stops the run with what is needed to find the cause, or is skipped and counted.

The check runs after the backward pass, before the optimiser step
(:meth:`~pig_lightning.module.RetrievalModule.on_before_optimizer_step`): reading the loss on the
host right after the forward pass would make the GPU finish the forward pass before the backward
pass is even queued, at every step. On several processes every rank learns whether *any* rank's
loss is non-finite (one scalar all-reduce per step), so all of them stop, or all skip the update,
together: a rank that raised alone would leave the others waiting in the next collective.
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


def nonfinite_on_any_rank(loss: torch.Tensor) -> bool:
    """Whether any value of ``loss`` is NaN/inf on any process (one all-reduce, one read)."""
    flag = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


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
