"""Training-loader throughput from an optimized (decode-once) dataset vs the mp4 files.

    python benchmarks/optimized_loader.py            # -> docs/optimized_loader.md (+ the chart)
    python benchmarks/optimized_loader.py --cache_dir /tmp/loader_videos   # reuse loader_throughput's videos

The MSR-VTT-like videos of ``benchmarks/loader_throughput.py`` (320x240, 30 fps, 10-30 s,
libx264 keyint 250) are listed ``--copies`` times each under distinct ids, written with
``pig-lightning optimize`` (``--frames_per_video`` uniform JPEG frames of 224 px), and read by
the real training loaders of ``VideoTextDataModule`` (mp4 with ``ClipReader``; optimized)
over its two sources: ``AnnotationFiles`` and ``OptimizedDatasets`` (litdata). Clips: 12 frames (jittered), 224x224, uint8,
captions tokenised by the CLIP tokenizer in the collator: the batches ``fit`` trains on.
Loader batch 4; ``num_workers`` 0 (everything in the main process, one thread: the
per-core rate) and 2. Rates are steady-state (the first batches are not timed), best of
``--repeats`` loader runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from loader_throughput import make_videos
from report import machine, write_report

from pig_lightning.data.sources.annotations import VideoRecord, write_jsonl
from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.data.optimized.optimize import optimize_dataset
from pig_lightning.data.optimized.streaming import OptimizedDatasets
from pig_lightning.data.source import AnnotationFiles

TOKENIZER = "assets/clip-tiny-scenes"
NUM_FRAMES, SIZE, BATCH = 12, 224, 4


def steady_rate(loader, warmup_batches: int) -> tuple[float, int]:
    """clips/s after ``warmup_batches`` batches, over the rest of one epoch."""
    iterator = iter(loader)
    for _ in range(warmup_batches):
        next(iterator)
    start, clips = time.perf_counter(), 0
    for batch in iterator:
        clips += batch["frames"].shape[0]
    return clips / (time.perf_counter() - start), clips


def best_rate(make_loader, workers: int, repeats: int) -> tuple[float, float]:
    rates = [steady_rate(make_loader(workers), max(1, workers) * 2)[0] for _ in range(repeats)]
    return max(rates), min(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache_dir", default=None, help="the generated videos (reused when they match)")
    parser.add_argument("--copies", type=int, default=8, help="times each of the 12 videos is listed")
    parser.add_argument("--frames_per_video", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/optimized_loader.md")
    args = parser.parse_args()
    logging.getLogger("litdata").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="optimized_loader_"))
    videos_root = Path(args.cache_dir) if args.cache_dir else work / "videos"
    videos = make_videos(videos_root, num_short=12, num_long=0, hd=False)
    shorts = videos["short"]
    records = [VideoRecord(f"{v['id']}_{c}", v["paths"]["250"], (f"a clip {i} number {c}", f"caption {i}"))
               for c in range(args.copies) for i, v in enumerate(shorts)]
    annotations = write_jsonl(records, work / "train.jsonl")
    mp4_bytes = sum(os.path.getsize(v["paths"]["250"]) for v in shorts) / len(shorts)

    start = time.perf_counter()
    summary = optimize_dataset(str(annotations), "/", str(work / "optimized"), frames_per_video=args.frames_per_video,
                               image_size=SIZE, num_workers=2, part_size=len(records))
    optimize_seconds = time.perf_counter() - start

    common = dict(tokenizer=TOKENIZER, num_frames=NUM_FRAMES, image_size=SIZE, max_text_length=32, batch_size=BATCH)

    def mp4_loader(workers):
        dm = VideoTextDataModule(AnnotationFiles("/", train_annotations=str(annotations)), num_workers=workers,
                                 **common)
        dm.setup("fit")
        return dm.train_dataloader()

    def optimized_loader(workers):
        dm = VideoTextDataModule(OptimizedDatasets(train_dir=str(work / "optimized")), num_workers=workers, **common)
        dm.setup("fit")
        return dm.train_dataloader()

    rates = {}
    for name, make in (("mp4 files (`ClipReader`)", mp4_loader), ("optimized dataset (litdata)", optimized_loader)):
        for workers in (0, 2):
            rates[name, workers] = best_rate(make, workers, args.repeats if name.startswith("opt") else 1)
            print(name, workers, rates[name, workers])
    per_core = rates["optimized dataset (litdata)", 0][0]
    lines = [
        "# Training loader: optimized (decode-once) dataset vs mp4 files",
        "",
        f"Command: `python benchmarks/optimized_loader.py` ({time.perf_counter() - start + optimize_seconds:.0f} s). "
        f"Machine: {machine()}; 1-minute load average {os.getloadavg()[0]:.2f} after the run.",
        "",
        f"{len(records)} training records: the 12 MSR-VTT-like videos of `benchmarks/loader_throughput.py` "
        f"(320x240, 30 fps, 10-30 s, libx264 crf 23 keyint 250, {mp4_bytes / 1e6:.2f} MB a video on average) "
        f"listed {args.copies} times each. Clips: {NUM_FRAMES} jittered frames, {SIZE}x{SIZE}, uint8, captions "
        f"tokenised in the collator; loader batch {BATCH}; steady state (the first batches of each run untimed), "
        f"best of {args.repeats} runs for the optimized dataset (slowest in brackets), 1 run for mp4. "
        "0 workers: loading runs in the main process with one torch thread, i.e. on one core.",
        "",
        "## Writing it",
        "",
        f"`pig-lightning optimize --frames_per_video {args.frames_per_video} --image_size {SIZE}` (2 workers): "
        f"{optimize_seconds:.1f} s for {len(records)} videos ({len(records) / optimize_seconds:.1f} videos/s); "
        f"**{summary['bytes_per_video'] / 1e6:.2f} MB per clip on disk** ({args.frames_per_video} JPEG frames, "
        f"quality 90, 4:4:4; {summary['bytes_per_video'] / args.frames_per_video / 1e3:.1f} kB a frame), "
        f"{summary['bytes_per_video'] / mp4_bytes:.1f}x the mp4 file.",
        "",
        "## Reading it",
        "",
        "| source | clips/s, 0 workers (one core) | clips/s, 2 workers |",
        "|---|---|---|",
    ]
    for name in ("mp4 files (`ClipReader`)", "optimized dataset (litdata)"):
        cells = [f"{rates[name, w][0]:.1f}" + (f" ({rates[name, w][1]:.1f})" if name.startswith("opt") else "")
                 for w in (0, 2)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    ratio = per_core / rates["mp4 files (`ClipReader`)", 0][0]
    lines += [
        "",
        f"Optimized / mp4 with 0 workers: **{ratio:.1f}x**. Target of issue #11: >= 80 clips/s per CPU core "
        f"from the optimized dataset -> {'MET' if per_core >= 80 else 'NOT MET'} ({per_core:.1f}).",
        "",
        "Where the time goes per clip from the optimized dataset: 12 JPEG decodes of 224x224 (simplejpeg, "
        "~0.4 ms each here), litdata's item read, the caption's tokenisation and the batch collation.",
        "",
        "With 2 workers on this 2-core machine the two workers and the training process share two cores and every batch crosses a process boundary (the uint8 ceiling of that is 316 clips/s, docs/loader_ceiling.md): the per-core rate is the 0-worker column; a 16-core GPU node runs 8-14 workers.",
    ]
    write_report(args.out, lines)
    (work / "rates.json").write_text(json.dumps({f"{k[0]}|{k[1]}": v for k, v in rates.items()}))
    shutil.rmtree(work / "optimized", ignore_errors=True)


if __name__ == "__main__":
    main()
