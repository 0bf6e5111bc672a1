"""Train every demo tower with the same data, budget and seed; write a results table to docs/.

    python benchmarks/demo_towers.py                # all conf/demo*.yaml, results -> docs/demo_towers.md
    python benchmarks/demo_towers.py --configs conf/demo.yaml conf/demo_pig.yaml

Each config runs as its own `pig-lightning fit` process (fit, then test of the best
checkpoint by validation t2v R@1); the test metrics are read back from its TensorBoard
events. Wall time includes model construction and evaluation, not data generation (the
synthetic set is made once before the first run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from report import ROOT, machine, write_report
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
KEYS = ["t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "t2v/MnR", "v2t/R@1", "v2t/R@5", "v2t/R@10", "v2t/MdR", "v2t/MnR"]


def newest_run(save_dir: Path, name: str) -> Path:
    runs = sorted((save_dir / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return runs[-1]


def test_metrics(run_dirs: list[Path]) -> dict[str, float]:
    values: dict[str, float] = {}
    for run in run_dirs:
        events = EventAccumulator(str(run))
        events.Reload()
        for key in KEYS:
            tag = f"test/{key}"
            if tag in events.Tags()["scalars"]:
                values[key] = events.Scalars(tag)[-1].value
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("conf/demo*.yaml")))
    parser.add_argument("--save_dir", default="runs/bench")
    parser.add_argument("--out", default="docs/demo_towers.md")
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    save_dir = ROOT / args.save_dir
    rows = []
    for config in args.configs:
        name = Path(config).stem
        before = set((save_dir / name).glob("version_*"))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pig_lightning", "fit", "--config", config,
             f"--trainer.logger.init_args.save_dir={save_dir}", f"--trainer.logger.init_args.name={name}",
             "--trainer.enable_progress_bar=false"],
            cwd=ROOT, env=env, check=True,
        )
        seconds = time.perf_counter() - start
        new_runs = sorted(set((save_dir / name).glob("version_*")) - before)
        metrics = test_metrics(new_runs)
        rows.append((name, metrics, seconds))
        print(name, metrics, f"{seconds:.0f} s", flush=True)

    lines = [
        "# Demo towers on the synthetic set, trained FROM SCRATCH (random weights)",
        "",
        "Not the paper's setting (every tower there starts from pretrained CLIP): for that, see `docs/quality.md`.",
        "",
        f"Command: `python benchmarks/demo_towers.py` (configs: {', '.join(args.configs)}).",
        f"Machine: {machine()}.",
        "Same synthetic data (1,200 train / 100 val / 100 test videos, 4 captions each), tiny random CLIP "
        "(`conf/clip/tiny.json`), 12 epochs, seed 42; test split evaluated with the best-validation checkpoint. "
        "Chance R@1 = 1 %.",
        "",
        "| config | t2v R@1 | R@5 | R@10 | MdR | MnR | v2t R@1 | R@5 | R@10 | MdR | MnR | wall (fit + test) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m, seconds in rows:
        cells = [f"{m.get(k, float('nan')):.1f}" for k in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.0f} s |")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
