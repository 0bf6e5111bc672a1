"""Latency of ``pig-lightning serve`` as a user sees it: a real server, HTTP queries.

    python benchmarks/serve_latency.py        # results -> the latency section of docs/serve.md

1. A synthetic gallery of 100k videos (random unit vectors, fp16, the checkpoint's embedding
   size, a recorded path per video) saved with the Gallery class, stamped with the checkpoint's
   identity so that ``serve`` accepts it.
2. ``pig-lightning serve`` started in a subprocess (uvicorn on 127.0.0.1), queried with an HTTP
   client: 10 warm-up then 200 sequential queries (top-10, captions of the demo test split), then
   4 clients at once. Client-side latency, and the server's own search time (Server-Timing).
3. In this process, the same query split into text encoding and scoring (exact top-k over the
   gallery, with the float32 copy ``serve`` keeps and without it), also for a 512-d gallery
   (ViT-B/32's embedding size) to show what a bigger model's gallery costs to score.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from report import ROOT, machine

DEFAULT_CKPT = "runs/quality/pig_s0/version_0/checkpoints/best-epoch007-step000296.ckpt"
BEGIN, END = "<!-- serve_latency:begin -->", "<!-- serve_latency:end -->"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def percentiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": statistics.median(ms), "p95": q[94], "p99": q[98], "max": max(ms)}


def synthetic_gallery(ckpt: str, n: int, out: Path) -> tuple[Path, int]:
    from pig_lightning.retrieval import Gallery
    from pig_lightning.load import load_model
    from pig_lightning.retrieval.indexer import model_identity, preprocessing_of

    module = load_model(ckpt)
    dim = module.tower.backbone.embed_dim
    g = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1).half()
    ids = [f"v{i:06d}" for i in range(n)]
    sources = [{"path": f"videos/{v}.mp4", "start": None, "end": None} for v in ids]
    Gallery(vectors, ids, model_identity(module, ckpt), preprocessing_of(module), str(out.parent), sources).save(out)
    return out, dim


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, ckpt: str, port: int, threads: int) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pig_lightning.cli", "serve", "--index", str(index),
                                "--ckpt_path", ckpt, "--port", str(port), "--threads", str(threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    import httpx

    while True:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.1)


def timed_queries(base: str, queries: list[str], k: int) -> tuple[list[float], list[float]]:
    """Client latency and the server's search time (ms) of each query, one connection, in turn."""
    import httpx

    client_ms, server_ms = [], []
    with httpx.Client(base_url=base, timeout=30) as client:
        for q in queries:
            t = time.perf_counter()
            response = client.get("/search", params={"q": q, "k": k})
            client_ms.append((time.perf_counter() - t) * 1000)
            response.raise_for_status()
            server_ms.append(float(response.headers["server-timing"].split("dur=")[1]))
    return client_ms, server_ms


def concurrent_queries(base: str, queries: list[str], k: int, clients: int) -> tuple[list[float], float]:
    results: list[list[float]] = [[] for _ in range(clients)]
    chunks = [queries[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=lambda i=i: results[i].extend(timed_queries(base, chunks[i], k)[0]))
               for i in range(clients)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [ms for r in results for ms in r], time.perf_counter() - t


def breakdown(index: Path, ckpt: str, queries: list[str], k: int, repeats: int) -> dict[str, dict[str, float]]:
    """In-process: text encoding, and scoring with and without serve's float32 copy (ms per query)."""
    from pig_lightning.retrieval import Retriever
    from pig_lightning.retrieval.search import exact_topk

    torch.set_num_threads(1)  # as serve by default
    retriever = Retriever(index, ckpt)
    fp16 = retriever.embeddings
    fp32 = fp16.float()
    encode, score16, score32 = [], [], []
    with torch.inference_mode():
        for q in queries[:5]:  # warm-up
            exact_topk(retriever.encode([q]), fp32, retriever.module.score, k, retriever.block_size)
        for q in queries[:repeats]:
            t = time.perf_counter()
            emb = retriever.encode([q])
            encode.append((time.perf_counter() - t) * 1000)
            for gallery, out in ((fp16, score16), (fp32, score32)):
                t = time.perf_counter()
                exact_topk(emb, gallery, retriever.module.score, k, retriever.block_size)
                out.append((time.perf_counter() - t) * 1000)
        wide16 = torch.nn.functional.normalize(torch.randn(fp16.shape[0], 512), dim=-1).half()
        wide32, text512 = wide16.float(), torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
        wide = {"score16_512": [], "score32_512": []}
        for _ in range(repeats):
            for gallery, key in ((wide16, "score16_512"), (wide32, "score32_512")):
                t = time.perf_counter()
                exact_topk(text512, gallery, lambda a, b: a @ b.T, k, retriever.block_size)
                wide[key].append((time.perf_counter() - t) * 1000)
    return {"encode": percentiles(encode), "score16": percentiles(score16), "score32": percentiles(score32),
            **{key: percentiles(v) for key, v in wide.items()}}


def row(name: str, p: dict[str, float]) -> str:
    return f"| {name} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} | {p['max']:.1f} |"


def report(args, dim: int, runs: dict, parts: dict) -> list[str]:
    header = ["| | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
    startup, seq, server, conc, conc_wall, conc_n = runs[1]
    verdict = "meets" if seq["p95"] <= 50 else "misses"
    rows = []
    for threads, (_, t_seq, t_server, t_conc, _, _) in runs.items():
        label = f"`--threads {threads}`" + (" (default)" if threads == 1 else "")
        rows += [row(f"{label}: HTTP round trip (client)", t_seq),
                 row(f"{label}: server search (Server-Timing: encode + score)", t_server),
                 row(f"{label}: HTTP round trip, {args.clients} clients at once", t_conc)]
    return [
        BEGIN,
        "## Latency (`benchmarks/serve_latency.py`)",
        "",
        f"Machine: {cpu_model()}, `nproc` = {os.cpu_count()}; {machine()}. Load average (1 min) before / after "
        f"the run: {args.load_before:.2f} / {os.getloadavg()[0]:.2f} (other work on the machine inflates the numbers).",
        f"Gallery: {args.videos:,} synthetic videos (random unit vectors, fp16, {dim}-d: the embedding size of "
        f"`{args.ckpt_path}`), saved with `Gallery` and served by `pig-lightning serve` in its own process "
        f"(uvicorn, 127.0.0.1), queried over HTTP (httpx, keep-alive) with top-{args.k} and the captions of the "
        f"demo test split: {args.warmup} warm-up, then {args.queries} queries one after another, then "
        f"{args.clients} clients at once ({conc_n} queries). Server start to first answer of `/health`: "
        f"{startup:.1f} s (Python, checkpoint, gallery).",
        "",
        f"**Sequential, default settings: p50 {seq['p50']:.1f} ms, p95 {seq['p95']:.1f} ms ({verdict} the 50 ms "
        f"target); {args.clients} clients at once: {conc_n / conc_wall:.0f} queries/s.** Searches run one at a "
        "time (the tokenizer is not thread-safe), so concurrent clients queue.",
        "",
        *header,
        *rows,
        "",
        f"Where the time goes (in-process, 1 thread, {args.repeats} queries, ms per query):",
        "",
        *header,
        row("text encoding (tokenizer + text tower)", parts["encode"]),
        row(f"scoring {args.videos:,} x {dim}-d, float32 copy (what serve does)", parts["score32"]),
        row(f"scoring {args.videos:,} x {dim}-d, fp16 converted per query (plain Retriever)", parts["score16"]),
        row(f"scoring {args.videos:,} x 512-d (ViT-B/32 size), float32 copy", parts["score32_512"]),
        row(f"scoring {args.videos:,} x 512-d, fp16 converted per query", parts["score16_512"]),
        "",
        "`serve` replaces an fp16 gallery by a float32 copy in memory (`serving.command.prepare`; twice "
        f"the fp16 size: {args.videos * 512 * 4 / 2**20:.0f} MiB for 100k x 512-d) so that a query does not "
        "convert the whole gallery again, and runs torch on one thread by default (`--threads`): the "
        "demo's text tower is tiny, and with two threads a query waits on the other thread whenever "
        "another process holds a core. The text tower here is the demo's tiny CLIP; a ViT-B/32 text "
        "tower costs more per query (not measured here).",
        END,
    ]


def write_section(path: Path, lines: list[str]) -> None:
    text = path.read_text() if path.is_file() else "# `pig-lightning serve`\n\n"
    section = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", default=DEFAULT_CKPT)
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50, help="queries of the in-process breakdown")
    parser.add_argument("--captions", default="data/scene_videos/test.jsonl")
    parser.add_argument("--output", default="docs/serve.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.load_before = os.getloadavg()[0]
    captions = [c for line in (ROOT / args.captions).read_text().splitlines() for c in json.loads(line)["captions"]]
    queries = (captions * (1 + (args.warmup + args.queries) // len(captions)))[: args.warmup + args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        index, dim = synthetic_gallery(args.ckpt_path, args.videos, Path(tmp) / "gallery.safetensors")
        runs = {}
        for threads in (1, 2):  # serve's default, and torch's default on this machine
            port = free_port()
            process, startup = start_server(index, args.ckpt_path, port, threads)
            base = f"http://127.0.0.1:{port}"
            try:
                timed_queries(base, queries[: args.warmup], args.k)
                client_ms, server_ms = timed_queries(base, queries[args.warmup:], args.k)
                conc_ms, conc_wall = concurrent_queries(base, queries[args.warmup:][:100], args.k, args.clients)
            finally:
                process.terminate()
                process.wait(timeout=30)
            runs[threads] = (startup, percentiles(client_ms), percentiles(server_ms), percentiles(conc_ms),
                             conc_wall, len(conc_ms))
        parts = breakdown(index, args.ckpt_path, queries, args.k, args.repeats)
    lines = report(args, dim, runs, parts)
    print("\n".join(lines))
    write_section(ROOT / args.output, lines)


if __name__ == "__main__":
    main()
