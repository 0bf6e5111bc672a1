"""When does a hybrid tower help? Every tower fine-tuned from one pretrained tiny CLIP, in two settings.

    python benchmarks/quality.py --setting parts                       # 5 towers x 3 seeds
    python benchmarks/quality.py --setting salient --params A --only meanp xpool clipvip --seeds 0   # validity
    python benchmarks/quality.py --setting salient                     # the frozen parameters: towers + ablations
    python benchmarks/quality.py --report                              # rewrite docs/quality.md's results

The design, protocol and decision rule are in ``docs/quality.md`` (written before the runs). Stage 1
pretrains a tiny CLIP on the synthetic images (``--stage1``; shipped as ``assets/clip-tiny-scenes``).
Stage 2 fine-tunes every tower (``conf/quality/<tower>.yaml``: same data, budget and schedule) in a
setting, after validating its initial weights (step 0). Every run is a real ``pig-lightning``
command in a subprocess; its record (metrics, curves, diagnostics, step 0, command, time) is
written to ``docs/quality_runs/<setting>/<name>_s<seed>.json`` and a run already recorded is
not repeated, so the benchmark can be spread over several sittings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from quality_protocol import ABLATIONS, RECORDS, SALIENT_PARAMS, TOWERS, frozen, load_records, search
from report import ROOT

RUNS = ROOT / "runs" / "quality"  # TensorBoard logs and checkpoints (not committed)
SHIPPED = "assets/clip-tiny-scenes"  # stage 1's output, shipped; what conf/quality/<tower>.yaml start from
EXPORTED = "data/quality_clip"  # where a stage-1 run here is exported, to compare with the shipped one
SEEDS = (0, 1, 2)
PARALLEL = {"jobs": 1}  # runs at once; with more than one, each runs on one thread


def setting_key(setting: str, params: str | None) -> str:
    """The folder name of a setting's runs: ``parts`` or ``salient_<parameter set>``."""
    if setting == "parts":
        return "parts"
    if params not in SALIENT_PARAMS:
        raise SystemExit(f"--params must be one of {', '.join(SALIENT_PARAMS)} for the salient setting "
                         f"(none is frozen yet: run --validity, see docs/quality.md), got {params!r}")
    return f"salient_{params}"


def data_arguments(key: str) -> list[str]:
    """The command-line arguments that put a run on a setting's data (its own folder)."""
    setting, _, params = key.partition("_")
    out = ["--data.source.setting", setting, "--data.source.root", f"data/scene_videos_{key}"]
    for name, value in SALIENT_PARAMS.get(params, {}).items():
        out += [f"--data.source.{name}", str(value)]
    return out


def cli() -> list[str]:
    return [sys.executable, "-m", "pig_lightning.cli"]


def run(command: list[str], log: Path) -> float:
    """Run a command (offline), its output to ``log``; the wall time in seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_NUM_THREADS": "1"} if PARALLEL["jobs"] > 1 else {})}
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if code:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {code}; see {log}")
    return time.perf_counter() - start


def latest_version(folder: Path) -> Path:
    versions = sorted(folder.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    if not versions:
        raise FileNotFoundError(f"no run in {folder}")
    return versions[-1]


def scalars(version: Path) -> dict[str, list[float]]:
    """Every scalar of a run: tag -> values in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(version), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def best_epoch(checkpoint: str | None) -> int | None:
    """The 1-based epoch of a ``best-epochNNN-stepMMM.ckpt`` checkpoint (Lightning counts from 0)."""
    found = re.search(r"epoch(\d+)", Path(checkpoint or "").name)
    return int(found.group(1)) + 1 if found else None


def record_path(key: str, name: str, seed: int) -> Path:
    return RECORDS / key / f"{name}_s{seed}.json"


def stage2(key: str, name: str, config: str, extra: list[str], seed: int) -> None:
    """Validate the initial weights (step 0), fit with the seed, test the best checkpoint; record."""
    path = record_path(key, name, seed)
    if path.is_file():
        return
    run_name = f"{key}/{name}_s{seed}"
    common = ["--config", config, "--seed_everything", str(seed), "--data.seed", str(seed),
              "--trainer.logger.init_args.save_dir", str(RUNS)] + data_arguments(key) + extra
    step0_seconds = run(cli() + ["validate"] + common + ["--trainer.logger.init_args.name", f"{run_name}_step0"],
                        RUNS / "logs" / f"{run_name}_step0.log")
    step0 = json.loads((latest_version(RUNS / f"{run_name}_step0") / "val_report.json").read_text())["metrics"]
    seconds = run(cli() + ["fit"] + common + ["--trainer.logger.init_args.name", run_name],
                  RUNS / "logs" / f"{run_name}.log")
    version = latest_version(RUNS / run_name)
    report = json.loads((version / "test_report.json").read_text())
    curves = scalars(version)
    entry = {
        "setting": key, "name": name, "seed": seed, "seconds": seconds, "step0_seconds": step0_seconds,
        "metrics": report["metrics"], "best_epoch": best_epoch(report["checkpoint"]), "checkpoint": report["checkpoint"],
        "step0": {k: v for k, v in step0.items() if k.startswith(("t2v/", "v2t/", "diag/"))},
        "curves": {tag.removeprefix("val/"): values for tag, values in curves.items()
                   if tag.startswith("val/") and ("R@1" in tag or "cos_gap" in tag)},
        "train_losses": {tag.removeprefix("train/"): values[-5:] for tag, values in curves.items()
                         if tag.startswith("train/loss")},
        "command": "pig-lightning fit " + " ".join(common),
        "parallel_jobs": PARALLEL["jobs"],
        "recorded": time.strftime("%Y-%m-%d %H:%M"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=1))
    tmp.replace(path)
    print(f"{run_name}: step 0 {step0['t2v/R@1']:.1f} -> test t2v R@1 {report['metrics']['t2v/R@1']:.1f} "
          f"(best epoch {entry['best_epoch']}, {seconds:.0f} s)", flush=True)


def stage1(adopt: str | None) -> None:
    """Pretrain (or adopt a finished run of ``conf/quality/pretrain_clip.yaml``), export it and compare
    it with the shipped copy; the record goes to ``docs/quality_runs/stage1.json``."""
    if adopt:
        version, seconds = Path(adopt), None
    else:
        seconds = run(cli() + ["fit", "--config", "conf/quality/pretrain_clip.yaml", "--trainer.logger.init_args.save_dir",
                               str(RUNS), "--trainer.logger.init_args.name", "pretrain"], RUNS / "logs" / "pretrain.log")
        version = latest_version(RUNS / "pretrain")
    best = sorted((version / "checkpoints").glob("best-*.ckpt"))
    if not best:
        raise FileNotFoundError(f"stage 1 left no best checkpoint in {version / 'checkpoints'}")
    export_seconds = run(cli() + ["export", "--ckpt_path", str(best[-1]), "--output", EXPORTED, "--overwrite",
                                  "--checksums"], RUNS / "logs" / "export.log")
    entry = {"seconds": seconds, "export_seconds": export_seconds,
             "val_t2v_R@1": scalars(version).get("val/t2v/R@1", []),
             "identical_to_shipped": (ROOT / EXPORTED / "SHA256SUMS").read_text()
             == (ROOT / SHIPPED / "SHA256SUMS").read_text()}
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / "stage1.json").write_text(json.dumps(entry, indent=1))


def validity_search() -> None:
    """Seed-0 runs of meanP and X-Pool (then CLIP-ViP) on the parameter set the fixed order names next."""
    while True:
        params, state = search(load_records())
        print(f"validity search: set {params}: {state}", flush=True)
        if params is None or state == "valid":
            return
        names = ["meanp", "xpool"] if state == "needs meanp/xpool" else ["clipvip"]
        PARALLEL["jobs"] = min(PARALLEL["jobs"], len(names))  # a run alone keeps every thread
        with ThreadPoolExecutor(PARALLEL["jobs"]) as pool:
            for future in [pool.submit(stage2, f"salient_{params}", n, f"conf/quality/{n}.yaml", [], 0) for n in names]:
                future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=("parts", "salient"), help="which setting's runs to make")
    parser.add_argument("--params", choices=list(SALIENT_PARAMS), default=None,
                        help="the salient setting's parameter set (default: the one the validity search froze)")
    parser.add_argument("--validity", action="store_true",
                        help="run the salient validity search in the order docs/quality.md fixed (meanP, X-Pool, "
                             "CLIP-ViP, seed 0) until a parameter set is valid or the order is exhausted")
    parser.add_argument("--only", nargs="*", help="run only these names (towers and/or ablations)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--report", action="store_true", help="only rewrite docs/quality.md's results from the records")
    parser.add_argument("--stage1", action="store_true",
                        help=f"run stage 1 here, export it to {EXPORTED} and compare it with the shipped {SHIPPED}")
    parser.add_argument("--stage1_run", help="adopt this finished run folder of conf/quality/pretrain_clip.yaml")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each then uses one thread)")
    args = parser.parse_args()
    if args.stage1 or args.stage1_run:
        stage1(args.stage1_run)
    PARALLEL["jobs"] = args.jobs
    if args.validity and not args.report:
        validity_search()
    if not args.report and args.setting:
        key = setting_key(args.setting, args.params or frozen())
        allowed = list(TOWERS) + (list(ABLATIONS) if args.setting == "salient" else [])
        names = args.only or allowed
        for name in names:
            if name not in allowed:
                raise SystemExit(f"unknown run {name!r} in setting {args.setting}: choose from {', '.join(allowed)}")
        jobs = [(key, name, f"conf/quality/{name}.yaml", [], seed) for seed in args.seeds for name in names
                if name in TOWERS]
        jobs += [(key, name, "conf/quality/pig.yaml", ABLATIONS[name][1], seed) for seed in args.seeds for name in names
                 if name in ABLATIONS]
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(stage2, *job) for job in jobs]:
                future.result()
    from quality_report import write_results

    write_results()


if __name__ == "__main__":
    main()
