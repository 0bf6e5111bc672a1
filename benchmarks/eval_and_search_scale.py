"""Evaluation and search at scale, with synthetic embeddings (512-d, L2-normalised).

    python benchmarks/eval_and_search_scale.py       # results -> docs/eval_and_search_scale.md

1. Retrieval metrics (t2v + v2t ranks) of N texts x N videos: this library's block-wise core
   computed from embeddings (the matrix is never built) at 10k and 100k, against the naive
   full similarity matrix and torchmetrics' ``RetrievalRecall`` at 10k, where those still fit.
   Each runs in its own process; "peak extra memory" is the growth of the process's peak
   resident memory over what it held after creating the embeddings.
2. Search latency: exact top-10 for 1,000 queries against fp16 galleries of 10k / 100k / 1M
   videos, with the same block-wise top-k merge ``Retriever.search`` uses.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from report import machine, write_report

DIM = 512


def embeddings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    texts = torch.nn.functional.normalize(torch.randn(n, DIM, generator=g), dim=-1)
    videos = torch.nn.functional.normalize(texts + 0.9 * torch.randn(n, DIM, generator=g), dim=-1)
    return texts, videos


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(method: str, n: int) -> dict:
    from pig_lightning.evaluation import EmbeddingSimilarity, retrieval_metrics

    texts, videos = embeddings(n, 0)
    text_video = torch.arange(n)
    base = peak_mb()
    start = time.perf_counter()
    if method == "blocks":
        metrics = retrieval_metrics(EmbeddingSimilarity(texts, videos), text_video)
    elif method == "full-matrix":
        metrics = retrieval_metrics(texts @ videos.t(), text_video, chunk_size=n)
    elif method == "torchmetrics":
        from torchmetrics.retrieval import RetrievalRecall

        sim = texts @ videos.t()
        target = torch.eye(n, dtype=torch.bool)
        indexes = torch.arange(n)[:, None].expand(n, n)
        recall = RetrievalRecall(top_k=1)
        metrics = {"t2v/R@1": float(recall(sim.flatten(), target.flatten(), indexes=indexes.flatten())) * 100}
    else:
        raise ValueError(method)
    return {"method": method, "n": n, "seconds": time.perf_counter() - start, "peak_extra_mb": peak_mb() - base,
            "t2v_r1": metrics["t2v/R@1"]}


def search_latency(n: int, queries: int = 1000, k: int = 10) -> float:
    from pig_lightning.retrieval.search import exact_topk

    g = torch.Generator().manual_seed(1)
    gallery = torch.nn.functional.normalize(torch.randn(n, DIM, generator=g), dim=-1).half()
    texts = torch.nn.functional.normalize(torch.randn(queries, DIM, generator=g), dim=-1)
    exact_topk(texts[:2], gallery[:1000], lambda t, v: t @ v.t(), k)  # warm-up
    start = time.perf_counter()
    exact_topk(texts, gallery, lambda t, v: t @ v.t(), k, block_size=65_536)
    return (time.perf_counter() - start) / queries * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default="docs/eval_and_search_scale.md")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    runs = [("blocks", 10_000), ("full-matrix", 10_000), ("torchmetrics", 10_000), ("blocks", 100_000)]
    results = []
    for method, n in runs:
        out = subprocess.run([sys.executable, __file__, "--one", method, str(n)], capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    latencies = {n: search_latency(n) for n in (10_000, 100_000, 1_000_000)}
    print(latencies)
    lines = [
        "# Evaluation and search at scale",
        "",
        f"Command: `python benchmarks/eval_and_search_scale.py`. Machine: {machine()}. "
        "Synthetic 512-d embeddings, one caption per video.",
        "",
        "## Retrieval metrics, N texts x N videos",
        "",
        "| method | N | what it computes | wall time | peak extra memory | t2v R@1 (check) |",
        "|---|---|---|---|---|---|",
    ]
    what = {"blocks": "t2v + v2t ranks, block-wise from embeddings", "full-matrix": "t2v + v2t ranks from the full matrix",
            "torchmetrics": "t2v R@1 only (RetrievalRecall over all pairs)"}
    for r in results:
        lines.append(f"| {r['method']} | {r['n']:,} | {what[r['method']]} | {r['seconds']:.1f} s | "
                     f"{r['peak_extra_mb']:,.0f} MB | {r['t2v_r1']:.2f} % |")
    lines += [
        "",
        "At 100k x 100k the full matrix alone would take 40 GB (fp32); the block-wise core needs the peak shown.",
        "",
        "## Search latency (exact top-10, fp16 gallery, 1,000 queries)",
        "",
        "| gallery | ms per query |",
        "|---|---|",
    ]
    lines += [f"| {n:,} videos | {ms:.3f} |" for n, ms in latencies.items()]
    lines += ["", "![evaluation memory and search time](eval_and_search_scale.png)"]
    report = write_report(args.out, lines)
    from plots import eval_and_search_scale as chart  # the chart beside the tables (needs matplotlib)

    chart(report, report.with_suffix(".png"))


if __name__ == "__main__":
    main()
