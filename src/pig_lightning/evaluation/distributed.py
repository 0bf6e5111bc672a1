"""Exact retrieval evaluation on any number of processes.

Every process embeds its share of the evaluation set (a ``DistributedSampler`` share, padded with
duplicates to equal length). :class:`EvaluationCollector` keeps what a process embedded with the
dataset indices; :func:`evaluate` turns the collections of all processes into the metrics of the
whole set, each video and caption counted once:

* towers with vector embeddings (two-tower, hybrid) gather every embedding to every process as
  tensors (:func:`gather_rows`: one collective per tensor, no pickling) and rank the whole set;
* a single tower (token sets per video, a cross-attention per pair) gathers only the text
  embeddings; every process scores all texts against its own videos and the ranks are combined
  with two reductions (:func:`_sharded_ranks`).

Peers gather with ``all_gather_object``, which pickles every rank's embeddings through one
process: the known bottleneck of their evaluation at 1M vectors (``docs/eval_gather.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

from pig_lightning.evaluation.diagnostics import offline_query_diagnostics
from pig_lightning.evaluation.metrics import (
    DSLSimilarity,
    EmbeddingSimilarity,
    retrieval_ranks,
    summarize_ranks,
    video_block_ranks,
)

FIELDS = ("video_index", "video_emb", "text_index", "text_video", "text_emb")
Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_rows(tensors: dict[str, torch.Tensor], device: torch.device | str = "cpu"
                ) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Every process's rows of each tensor, concatenated in rank order, and each rank's row count
    (the first dimension may differ between ranks; all tensors of one call share it). Tensors
    travel as tensors (padded to the longest rank), on ``device`` (CUDA for NCCL)."""
    if not distributed():
        first = next(iter(tensors.values()))
        return dict(tensors), [len(first)]
    world = dist.get_world_size()
    count = torch.tensor([len(next(iter(tensors.values())))], device=device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    counts_list = [int(c.item()) for c in counts]
    longest = max(counts_list)
    out = {}
    for name, tensor in tensors.items():
        local = tensor.to(device)
        if len(local) < longest:
            local = torch.cat([local, local.new_zeros((longest - len(local), *local.shape[1:]))])
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        out[name] = torch.cat([p[:n] for p, n in zip(parts, counts_list)]).to(tensor.device)
    return out, counts_list


def unique_first(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique values of ``index`` and, for each, the position of its first occurrence."""
    values, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index))
    first = torch.full((len(values),), len(index), dtype=torch.long).scatter_reduce(
        0, inverse, positions, reduce="amin"
    )
    return values, first


class EvaluationCollector:
    """What one process embedded during an evaluation epoch, with the dataset indices."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {name: [] for name in FIELDS}
        self.extras: dict[str, list[torch.Tensor]] = {}  # per-video diagnostics (evaluation/diagnostics.py)

    def add(self, batch: dict[str, torch.Tensor], video_emb: torch.Tensor, text_emb: torch.Tensor,
            extras: dict[str, torch.Tensor] | None = None) -> None:
        self.parts["video_index"].append(batch["video_index"].cpu())
        self.parts["video_emb"].append(video_emb.float().cpu())
        self.parts["text_index"].append(batch["text_index"].cpu())
        self.parts["text_video"].append(batch["video_index"][batch["text_video"]].cpu())
        self.parts["text_emb"].append(text_emb.float().cpu())
        for name, value in (extras or {}).items():
            self.extras.setdefault(name, []).append(value.detach().float().cpu())

    def local(self) -> dict[str, torch.Tensor]:
        return {name: torch.cat(parts) for name, parts in self.parts.items()}

    def local_extras(self) -> dict[str, torch.Tensor]:
        return {f"extra/{name}": torch.cat(parts) for name, parts in self.extras.items()}


@contextmanager
def exact_float32_matmuls():
    """Full float32 matrix products inside (``torch.set_float32_matmul_precision("highest")``),
    whatever the run chose for training (``--float32_matmul_precision high``: TF32 on a GPU, ~10
    mantissa bits, enough to reorder near-tied scores); the previous setting is restored after."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def evaluate(collected: EvaluationCollector, score: Score, kind: str, device: torch.device | str,
             v2t_protocol: str = "group", dsl: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics of the whole evaluation set (the same on every process) and the per-query ranks,
    scored with exact float32 matrix products (:func:`exact_float32_matmuls`)."""
    with exact_float32_matmuls():
        return _evaluate(collected, score, kind, device, v2t_protocol, dsl)


def _evaluate(collected: EvaluationCollector, score: Score, kind: str, device: torch.device | str,
              v2t_protocol: str, dsl: bool) -> tuple[dict[str, float], dict[str, Any]]:
    if distributed() and kind == "single-tower":
        return _evaluate_sharded(collected.local(), score, device, v2t_protocol, dsl)
    local, extras = collected.local(), collected.local_extras()
    data, _ = gather_rows({**{k: local[k] for k in ("video_index", "video_emb")}, **extras}, device)
    texts_data, _ = gather_rows({k: local[k] for k in ("text_index", "text_video", "text_emb")}, device)
    data.update(texts_data)
    # Distributed samplers pad with duplicates: keep the first copy of every index, in order.
    video_index, first = unique_first(data["video_index"])
    videos = data["video_emb"][first]
    text_index, first_t = unique_first(data["text_index"])
    texts = data["text_emb"][first_t]
    text_video = torch.searchsorted(video_index, data["text_video"][first_t]).to(device)
    # scored block by block: the [texts x videos] matrix is never held whole
    sim = EmbeddingSimilarity(texts.to(device), videos.to(device), score)
    ranks = retrieval_ranks(sim, text_video, v2t_protocol)
    dsl_ranks = retrieval_ranks(DSLSimilarity(sim), text_video, v2t_protocol) if dsl else None
    metrics, per_query = summarise(ranks, dsl_ranks, video_index, text_index, text_video)
    if extras:
        metrics.update(offline_query_diagnostics(
            texts.to(device), text_video, {k.removeprefix("extra/"): data[k][first].to(device) for k in extras}))
    return metrics, per_query


def summarise(ranks: dict[str, torch.Tensor], dsl_ranks: dict[str, torch.Tensor] | None, video_index: torch.Tensor,
              text_index: torch.Tensor, text_video: torch.Tensor) -> tuple[dict[str, float], dict[str, Any]]:
    metrics = {**summarize_ranks(ranks["t2v"], "t2v"), **summarize_ranks(ranks["v2t"], "v2t")}
    if dsl_ranks is not None:
        metrics.update(summarize_ranks(dsl_ranks["t2v"], "dsl/t2v"))
        metrics.update(summarize_ranks(dsl_ranks["v2t"], "dsl/v2t"))
    metrics["num_videos"] = float(len(video_index))
    metrics["num_texts"] = float(len(text_index))
    per_query = {
        "text_index": text_index.tolist(),
        "text_video_index": video_index[text_video.cpu()].tolist(),
        "t2v_rank": ranks["t2v"].tolist(),
        "video_index": video_index.tolist(),
        "v2t_rank": ranks["v2t"].tolist(),
    }
    return metrics, per_query


def _evaluate_sharded(local: dict[str, torch.Tensor], score: Score, device: torch.device | str, v2t_protocol: str,
                      dsl: bool) -> tuple[dict[str, float], dict[str, Any]]:
    """Single tower on several processes: texts are gathered, video token sets stay where they
    were encoded, and every process scores all texts against its own videos.

    t2v: the positive score is shared (max-reduce) and the videos scoring at least as high are
    counted on every process (sum-reduce); v2t needs only a video's own column, so each process
    ranks its videos and the ranks are gathered. Padding duplicates are scored by one process
    only (the first that holds them).
    """
    rank = dist.get_rank()
    videos, video_counts = gather_rows({"video_index": local["video_index"]}, device)
    texts_all, _ = gather_rows({k: local[k] for k in ("text_index", "text_video", "text_emb")}, device)
    text_index, first_t = unique_first(texts_all["text_index"])
    texts = texts_all["text_emb"][first_t].to(device)
    text_video_global = texts_all["text_video"][first_t]
    all_videos = videos["video_index"]
    video_index = torch.unique(all_videos, sorted=True)
    # the owner of a video is the first rank (in rank order) that holds it
    owner_rank = torch.repeat_interleave(torch.arange(len(video_counts)), torch.tensor(video_counts))
    _, first_v = unique_first(all_videos)
    owner = dict(zip(all_videos[first_v].tolist(), owner_rank[first_v].tolist()))
    seen: set[int] = set()
    keep = []
    for i, v in enumerate(local["video_index"].tolist()):
        if owner[v] == rank and v not in seen:
            seen.add(v)
            keep.append(i)
    keep_t = torch.tensor(keep, dtype=torch.long)
    columns = torch.searchsorted(video_index, local["video_index"][keep_t]).to(device)
    text_video = torch.searchsorted(video_index, text_video_global).to(device)
    block = score(texts, local["video_emb"][keep_t].to(device)).float()  # [M, local videos]
    ranks = _sharded_ranks(block, text_video, columns, len(video_index), v2t_protocol, device)
    dsl_ranks = None
    if dsl:  # the softmax over texts is per video column: local too
        dsl_block = block * torch.softmax(100.0 * block, dim=0)
        dsl_ranks = _sharded_ranks(dsl_block, text_video, columns, len(video_index), v2t_protocol, device)
    return summarise(ranks, dsl_ranks, video_index, text_index, text_video.cpu())


def _sharded_ranks(block: torch.Tensor, text_video: torch.Tensor, columns: torch.Tensor, num_videos: int,
                   v2t_protocol: str, device: torch.device | str) -> dict[str, torch.Tensor]:
    positive = torch.full((block.shape[0],), float("-inf"), device=block.device)
    where = (text_video[:, None] == columns[None, :]).nonzero()  # (text, local column) pairs
    positive[where[:, 0]] = block[where[:, 0], where[:, 1]]
    dist.all_reduce(positive, op=dist.ReduceOp.MAX)
    count = (block >= positive[:, None]).sum(dim=1)
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    v2t_local = video_block_ranks(block, text_video, columns, num_videos, v2t_protocol)
    gathered, _ = gather_rows({"columns": columns.cpu(), "ranks": v2t_local.cpu()}, device)
    v2t = torch.zeros(num_videos, dtype=torch.long)
    v2t[gathered["columns"]] = gathered["ranks"]
    return {"t2v": count.cpu(), "v2t": v2t}
