"""The DataLoader's own ceiling (clips/s, no decoding): float32 clips vs uint8 clips.

    python benchmarks/loader_ceiling.py            # -> docs/loader_ceiling.md (~1 min on 2 cores)

Every item is a ready-made 12-frame 224 px clip, batch 4, ``num_workers`` 0 and 2 (forked
workers), timed as in ``benchmarks/loader_throughput.py`` (``loader_rate``: one warm-up batch
per worker, whole rounds, best of ``--repeats``, each run in a fresh process):

* **float32 (before)**: what items carried until issue #11: ``to_clip_tensor`` output,
  CLIP-normalised ``float32 [12, 3, 224, 224]`` (7.2 MB a clip);
* **uint8 (now)**: decoded pixels ``uint8 [12, 224, 224, 3]`` (1.8 MB); the model converts them
  on its device (``clip_normalise`` in ``on_after_batch_transfer``). On a GPU that costs
  microseconds; the CPU cost of that conversion per batch is measured too, for a CPU-only run
  (where it moves from the workers to the training process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from loader_throughput import BATCH, NUM_FRAMES, SIZE, isolated, loader_rate
from report import machine, write_report
from torch.utils.data import Dataset

from pig_lightning.data.video.transforms import clip_normalise, to_clip_tensor


class Ready(Dataset):
    def __init__(self, length: int, dtype: str):
        self.length = length
        frames = np.random.default_rng(0).integers(0, 256, (NUM_FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
        self.clip = to_clip_tensor(frames) if dtype == "float32" else torch.from_numpy(frames)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.clip.clone()


def measure(dtype: str, workers: int, clips: int) -> float:
    torch.set_num_threads(1 if workers else os.cpu_count() or 1)
    return loader_rate(Ready(clips, dtype), workers)


def conversion_ms(repeats: int = 20) -> float:
    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (BATCH, NUM_FRAMES, SIZE, SIZE, 3),
                                                               dtype=np.uint8))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clip_normalise(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/loader_ceiling.md")
    args = parser.parse_args()
    started = time.time()
    rates = {}
    for dtype in ("float32", "uint8"):
        for workers in (0, 2):
            runs = [isolated(measure, dtype, workers, args.clips) for _ in range(args.repeats)]
            rates[dtype, workers] = (max(runs), min(runs))
            print(f"{dtype} workers={workers}: {max(runs):.1f} clips/s (slowest {min(runs):.1f})", flush=True)
    convert = isolated(conversion_ms)
    mb = {d: (4 if d == "float32" else 1) * NUM_FRAMES * SIZE * SIZE * 3 / 1e6 for d in ("float32", "uint8")}
    lines = [
        "# DataLoader ceiling: float32 vs uint8 clips",
        "",
        f"Command: `python benchmarks/loader_ceiling.py` ({time.time() - started:.0f} s). Machine: {machine()}; "
        f"1-minute load average {os.getloadavg()[0]:.2f} after the run.",
        "",
        f"Ready-made clips (no decoding), {NUM_FRAMES} frames of {SIZE}x{SIZE}, DataLoader batch {BATCH}, "
        f"{args.clips} clips per run, forked workers; best of {args.repeats} runs (slowest in brackets), each in a "
        "fresh process; timing as `loader_rate` in `benchmarks/loader_throughput.py` (the 'ceiling' row of "
        "docs/loader_throughput.md measured the float32 case).",
        "",
        "| items carry | bytes a clip | clips/s, 0 workers | clips/s, 2 workers |",
        "|---|---|---|---|",
    ]
    for dtype, label in (("float32", "float32 `[12, 3, 224, 224]`, CLIP-normalised in the worker (before)"),
                         ("uint8", "uint8 `[12, 224, 224, 3]`, normalised on the device (now)")):
        lines.append(f"| {label} | {mb[dtype]:.1f} MB | {rates[dtype, 0][0]:.1f} ({rates[dtype, 0][1]:.1f}) | "
                     f"{rates[dtype, 2][0]:.1f} ({rates[dtype, 2][1]:.1f}) |")
    ratio = {w: rates["uint8", w][0] / rates["float32", w][0] for w in (0, 2)}
    lines += [
        "",
        f"uint8 / float32: {ratio[0]:.2f}x with 0 workers, **{ratio[2]:.2f}x with 2 workers** "
        f"(target of issue #11: >= 3x with 2 workers -> {'MET' if ratio[2] >= 3 else 'NOT MET'}).",
        "",
        f"The conversion moved to the device, `clip_normalise` of one uint8 batch `[{BATCH}, {NUM_FRAMES}, {SIZE}, "
        f"{SIZE}, 3]`, costs {convert:.1f} ms on this CPU (median of 20, all cores of the process); on a CPU-only run "
        "it is paid once per batch in the training process instead of per clip in the workers, on a GPU it is a "
        "few elementwise kernels on 7 MB.",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
