"""Index throughput and search quality with a trained demo checkpoint.

    make demo                                    # or: python benchmarks/demo_towers.py
    python benchmarks/index_search_demo.py --ckpt_path runs/demo/version_0/checkpoints/last.ckpt

Indexes the synthetic test split with `build_index` (videos/s, decoding included), then
searches the gallery with every test caption through `Retriever` and reports how often the
caption's own video comes first / in the top 5 (it should match `test`'s t2v R@1 / R@5, up to
the fp16 storage of the gallery). Results -> docs/index_search_demo.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from report import ROOT, machine, write_report

from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.retrieval import Retriever, build_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--videos", default="data/synthetic/test.jsonl")
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--out", default="docs/index_search_demo.md")
    args = parser.parse_args()
    videos = ROOT / args.videos
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        gallery = build_index(args.ckpt_path, videos, Path(tmp) / "gallery.safetensors", batch_size=20,
                              num_workers=args.num_workers, progress=False)
        index_seconds = time.perf_counter() - start
        records = read_jsonl(videos)
        retriever = Retriever(gallery, args.ckpt_path)
        captions = [c for r in records for c in r.captions]
        owners = [r.video_id for r in records for _ in r.captions]
        start = time.perf_counter()
        results = retriever.search(captions, k=5)
        search_seconds = time.perf_counter() - start
    first = 100 * sum(o == hits[0][0] for o, hits in zip(owners, results)) / len(captions)
    top5 = 100 * sum(o in [v for v, _ in hits] for o, hits in zip(owners, results)) / len(captions)
    lines = [
        "# Index and search with the demo checkpoint",
        "",
        f"Command: `python benchmarks/index_search_demo.py --ckpt_path {args.ckpt_path}`. Machine: {machine()}.",
        "",
        "| what | value |",
        "|---|---|",
        f"| videos indexed | {len(records)} ({args.videos}) |",
        f"| index throughput (decode + embed, {args.num_workers} loader worker) | {len(records) / index_seconds:.1f} videos/s |",
        f"| queries (every caption of those videos) | {len(captions)} |",
        f"| search time, all queries (text encoding + top-5) | {search_seconds * 1000:.0f} ms |",
        f"| own video ranked first | {first:.1f} % |",
        f"| own video in the top 5 | {top5:.1f} % |",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
