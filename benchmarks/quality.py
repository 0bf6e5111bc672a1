"""Retrieval quality in the paper's setting: every tower fine-tuned from one pretrained tiny CLIP.

    python benchmarks/quality.py                      # stage 1 (if needed), 5 towers x 3 seeds, ablations
    python benchmarks/quality.py --only meanp xpool   # some runs only (results accumulate)
    python benchmarks/quality.py --report             # rewrite docs/quality.md from the stored results

Stage 1 pretrains a tiny CLIP on the synthetic image-caption corpus (``conf/quality/pretrain_clip.yaml``)
and exports it with ``pig-lightning export`` to ``data/quality_clip``. Stage 2 fine-tunes every tower
(``conf/quality/<tower>.yaml``: same data, budget, schedule) from that folder with several seeds,
and the PIG ablations (``ABLATIONS``) the same way. Every run is a real ``pig-lightning fit`` in a
subprocess that tests its best-validation checkpoint; its ``test_report.json`` gives the metrics.
Results are kept in ``runs/quality/results.json`` (a run already there is not repeated), and
``docs/quality.md`` plus ``docs/quality.png`` are written from them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from report import ROOT, machine, write_report

RUNS = ROOT / "runs" / "quality"
RESULTS = RUNS / "results.json"
SHIPPED = "assets/clip-tiny-scenes"  # stage 1's output, shipped; what conf/quality/<tower>.yaml start from
EXPORTED = "data/quality_clip"  # where a stage-1 run here is exported, to compare with the shipped one
SEEDS = (0, 1, 2)
TOWERS = {  # name -> (label, kind)
    "meanp": ("CLIP4Clip meanP", "two-tower"),
    "seqtransf": ("CLIP4Clip seqTransf", "two-tower"),
    "clipvip": ("CLIP-ViP", "two-tower"),
    "pig": ("PIG", "hybrid"),
    "xpool": ("X-Pool", "single-tower"),
}
PIG = "--model.tower.init_args."
ABLATIONS = {  # name -> (label, extra fit arguments on conf/quality/pig.yaml)
    "pig_no_generator": ("no generator: fusion queried by the video CLS", [PIG + "query", "video_cls"]),
    "pig_random_tokens": ("random instead of informative tokens", [PIG + "token_selection", "random"]),
    "pig_no_recon": ("no reconstruction loss", [PIG + "recon_weight", "0"]),
    "pig_random_generator": ("generator randomly initialised", [PIG + "generator_init", "random"]),
    "pig_k4": ("k = 4 selected tokens", [PIG + "num_selected", "4"]),
    "pig_k8": ("k = 8 selected tokens", [PIG + "num_selected", "8"]),
    "pig_k32": ("k = 32 selected tokens", [PIG + "num_selected", "32"]),
}
METRICS = ("t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "t2v/MnR", "v2t/R@1", "v2t/R@5", "v2t/R@10", "v2t/MdR", "v2t/MnR")


def cli() -> list[str]:
    return [sys.executable, "-m", "pig_lightning.cli"]


PARALLEL = {"jobs": 1}  # stage-2 runs at once; with more than one, each runs on one thread
LOCK = threading.Lock()


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


def scalars(version: Path) -> dict[str, list[tuple[float, float]]]:
    """Every scalar of a run: tag -> [(wall time, value)] in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(version))
    acc.Reload()
    return {tag: [(e.wall_time, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def save_results(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(RESULTS)


def stage1(results: dict, force: bool, adopt: str | None = None) -> None:
    """Pretrain (or adopt a finished run of ``conf/quality/pretrain_clip.yaml``) and export it."""
    if not force and not adopt:
        return
    if adopt:
        version = Path(adopt)
        seconds = None  # taken from the run's event times below
    else:
        name = "pretrain"
        seconds = run(cli() + ["fit", "--config", "conf/quality/pretrain_clip.yaml",
                               "--trainer.logger.init_args.save_dir", str(RUNS), "--trainer.logger.init_args.name", name],
                      RUNS / "logs" / f"{name}.log")
        version = latest_version(RUNS / name)
    best = sorted((version / "checkpoints").glob("best-*.ckpt"))
    if not best:
        raise FileNotFoundError(f"stage 1 left no best checkpoint in {version / 'checkpoints'}")
    export_seconds = run(cli() + ["export", "--ckpt_path", str(best[-1]), "--output", EXPORTED, "--overwrite",
                                  "--checksums"], RUNS / "logs" / "export.log")
    curves = scalars(version)
    if seconds is None:
        times = [t for series in curves.values() for t, _ in series]
        seconds = max(times) - min(times)
    results["stage1"] = {
        "seconds": seconds, "export_seconds": export_seconds, "checkpoint": str(best[-1].resolve().relative_to(ROOT)),
        "val_t2v_R@1": [v for _, v in curves.get("val/t2v/R@1", [])],
        "final_train_loss": curves["train/loss"][-1][1] if "train/loss" in curves else None,
        "identical_to_shipped": (ROOT / EXPORTED / "SHA256SUMS").read_text() == (ROOT / SHIPPED / "SHA256SUMS").read_text(),
    }
    save_results(results)


def stage2(results: dict, name: str, config: str, extra: list[str], seed: int) -> None:
    key = f"{name}/seed{seed}"
    if key in results.get("runs", {}):
        return
    run_name = f"{name}_s{seed}"
    seconds = run(cli() + ["fit", "--config", config, "--seed_everything", str(seed), "--data.init_args.seed", str(seed),
                           "--trainer.logger.init_args.save_dir", str(RUNS),
                           "--trainer.logger.init_args.name", run_name] + extra,
                  RUNS / "logs" / f"{run_name}.log")
    version = latest_version(RUNS / run_name)
    report = json.loads((version / "test_report.json").read_text())
    curves = scalars(version)
    entry = {
        "name": name, "seed": seed, "seconds": seconds, "metrics": report["metrics"],
        "checkpoint": report["checkpoint"], "epoch": report["epoch"],
        "val_t2v_R@1": [v for _, v in curves.get("val/t2v/R@1", [])],
        "train_losses": {tag.removeprefix("train/"): [v for _, v in series][-5:]
                         for tag, series in curves.items() if tag.startswith("train/loss")},
        "command": "pig-lightning fit --config " + config + f" --seed_everything {seed} --data.init_args.seed {seed} "
                   + " ".join(extra),
        "parallel_jobs": PARALLEL["jobs"],
    }
    with LOCK:
        results.setdefault("runs", {})[key] = entry
        save_results(results)
    print(f"{key}: test t2v R@1 {report['metrics']['t2v/R@1']:.1f} ({seconds:.0f} s)", flush=True)


def online_costs() -> dict[str, dict[str, float]]:
    """Per tower at the benchmark's scale: online FLOPs per query (text encoding + scoring the
    200-video test gallery) and floats stored per video, from the exported pretrained CLIP."""
    import torch

    from pig_lightning.costs import online_cost
    from pig_lightning.data.scenes import SceneVideosConfig
    from pig_lightning.models import (FrameCLIPBackbone, MeanPoolingTower, PIGTower, SeqTransformerTower,
                                      VideoCLSTower, VideoProxyBackbone, XPoolTower)

    common = dict(pretrained=str(ROOT / SHIPPED), tokenizer=str(ROOT / SHIPPED), image_size=32, max_text_length=24)
    towers = {
        "meanp": MeanPoolingTower(FrameCLIPBackbone(**common), num_frames=8),
        "seqtransf": SeqTransformerTower(FrameCLIPBackbone(**common), num_frames=8, num_layers=2),
        "clipvip": VideoCLSTower(VideoProxyBackbone(**common), num_frames=8),
        "pig": PIGTower(VideoProxyBackbone(**common), num_frames=8),
        "xpool": XPoolTower(FrameCLIPBackbone(**common), num_frames=8),
    }
    ids = torch.randint(3, 100, (1, 24))
    frames = torch.randn(1, 8, 3, 32, 32)
    return {name: vars(online_cost(tower, frames, ids, torch.ones_like(ids), SceneVideosConfig().num_test))
            for name, tower in towers.items()}


def summary(results: dict, name: str) -> dict[str, tuple[float, float, int]]:
    runs = [r for r in results.get("runs", {}).values() if r["name"] == name]
    out = {}
    for metric in METRICS + ("seconds",):
        values = [r["seconds"] if metric == "seconds" else r["metrics"][metric] for r in runs]
        if values:
            out[metric] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))
    return out


def fmt(stat: tuple[float, float, int] | None, digits: int = 1) -> str:
    if stat is None:
        return "–"
    mean, std, n = stat
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def verdict(results: dict) -> list[str]:
    """The benchmark's validity and the issue's targets, computed from the table."""
    r1 = {name: summary(results, name).get("t2v/R@1") for name in TOWERS}
    if any(v is None for v in r1.values()):
        return []
    mean = {n: v[0] for n, v in r1.items()}
    spread = max(v[1] for v in r1.values())
    two_tower = [n for n, (_, kind) in TOWERS.items() if kind == "two-tower"]
    best_two = max(two_tower, key=mean.get)
    margin = mean["pig"] - mean[best_two]

    def mark(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    return [
        "## Against the targets",
        "",
        f"- Benchmark validity: X-Pool {mean['xpool']:.1f} > meanP {mean['meanp']:.1f}: {mark(mean['xpool'] > mean['meanp'])}; "
        f"CLIP-ViP {mean['clipvip']:.1f} ≥ meanP {mean['meanp']:.1f}: {mark(mean['clipvip'] >= mean['meanp'])}; "
        f"best tower {max(mean.values()):.1f} < 85: {mark(max(mean.values()) < 85)}.",
        f"- PIG ≥ every two-tower baseline + 2.0 R@1: PIG {mean['pig']:.1f} vs the best two-tower "
        f"({TOWERS[best_two][0]}) {mean[best_two]:.1f}, margin {margin:+.1f} (largest seed std {spread:.1f}): "
        f"{mark(all(mean['pig'] >= mean[n] + 2.0 for n in two_tower) and margin > spread)}.",
        f"- PIG within 1.0 R@1 of X-Pool or above: {mean['pig']:.1f} vs {mean['xpool']:.1f}: "
        f"{mark(mean['pig'] >= mean['xpool'] - 1.0)}.",
        "- At two-tower online cost: PIG's online FLOPs per query and stored floats per video equal CLIP-ViP's "
        "(table above); X-Pool's scoring grows with the gallery.",
        "",
    ] + ANALYSIS


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("towers (stage 2)", [(n, TOWERS[n][0]) for n in TOWERS]),
              ("PIG ablations", [("pig", "PIG (reference)")] + [(n, ABLATIONS[n][0]) for n in ABLATIONS])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [5, 8]})
    colours = {"two-tower": "#7f8c8d", "hybrid": "#c0392b", "single-tower": "#2e86c1"}
    for ax, (title, items) in zip(axes, groups):
        rows = [(label, summary(results, n).get("t2v/R@1"), n) for n, label in items]
        rows = [r for r in rows if r[1] is not None]
        xs = range(len(rows))
        colour = [colours[TOWERS[n][1]] if n in TOWERS else "#e59866" for _, _, n in rows]
        ax.bar(xs, [s[0] for _, s, _ in rows], yerr=[s[1] for _, s, _ in rows], color=colour, capsize=4)
        for x, (_, s, _) in zip(xs, rows):
            ax.text(x, s[0] + s[1] + 0.5, f"{s[0]:.1f}", ha="center", fontsize=8)
        ax.set_ylim(0, 1.15 * max(s[0] + s[1] for _, s, _ in rows))
        ax.set_xticks(list(xs), [label for label, _, _ in rows], rotation=25, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("test t2v R@1 (%), mean ± std over seeds")
    fig.suptitle("Fine-tuned from the same pretrained tiny CLIP (synthetic multi-event videos, 200 test videos)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def report(results: dict) -> None:
    costs = results.get("costs", {})
    lines = [
        "# Retrieval quality in the paper's setting (synthetic, CPU)",
        "",
        "Command: `python benchmarks/quality.py` (stage 1 once, then every tower and ablation; results cached in "
        "`runs/quality/results.json`).",
        f"Machine: {machine()}.",
        "",
    ]
    lines += DESIGN
    s1 = results.get("stage1")
    if s1:
        curve = ", ".join(f"{v:.1f}" for v in s1["val_t2v_R@1"])
        lines += [
            "## Stage 1: the pretrained tiny CLIP",
            "",
            f"`pig-lightning fit --config conf/quality/pretrain_clip.yaml`, then `pig-lightning export` of the best "
            f"checkpoint: {s1['seconds'] / 60:.1f} min for the run recorded here, which shared the 2 cores with other "
            f"work (export {s1['export_seconds']:.0f} s). "
            f"Image→text validation R@1 (500 held-out images) by epoch: {curve}.",
            "",
        ]
        regen = results.get("stage1_regeneration")
        if regen:
            lines += [
                f"Regenerated with `make pretrained-clip` on the same machine with nothing else running: "
                f"**{regen['seconds'] / 60:.1f} min** (fit + export, the image corpus already written; writing it takes "
                f"~1 min more); the files are "
                + ("**bit-identical** to the shipped `assets/clip-tiny-scenes` (`sha256sum -c` passes). This holds on "
                   "a processor like that one (no AVX-512): the image corpus decodes to the same pixels everywhere, "
                   "but torch's CPU float kernels round differently on other instruction sets."
                   if regen["identical"] else "**not** identical to the shipped ones (see the log)."),
                "",
            ]
    lines += [
        "## Stage 2: every tower fine-tuned from the same weights",
        "",
        "Mean ± std over seeds (seed of initialisation, caption choice and frame jitter); test split, best-validation "
        "checkpoint. Online cost at this scale: FLOPs of one query (text encoding + scoring the 200-video gallery) "
        "and floats stored per video, counted with `torch.utils.flop_counter` (ViT-B/32 costs: `docs/tower_costs.md`).",
        "",
        "| tower | kind | seeds | t2v R@1 | R@5 | R@10 | MdR | MnR | v2t R@1 | R@5 | R@10 | MdR | MnR | online kFLOPs / query "
        "(text + score) | stored floats / video | train + test s |",
        "|---|---|---|" + "---|" * 13,
    ]
    for name, (label, kind) in TOWERS.items():
        s = summary(results, name)
        if not s:
            continue
        c = costs.get(name)
        cost = f"{c['text_flops'] / 1e3:,.0f} + {c['score_flops'] / 1e3:,.0f}" if c else "–"
        stored = f"{c['stored_floats']:,}" if c else "–"
        lines.append(f"| {label} | {kind} | {s['t2v/R@1'][2]} | " + " | ".join(fmt(s.get(m)) for m in METRICS)
                     + f" | {cost} | {stored} | {fmt(s.get('seconds'), 0)} |")
    lines += ["", "![test t2v R@1 per tower and ablation](quality.png)", ""]
    lines += verdict(results)
    if any(summary(results, n) for n in ABLATIONS):
        lines += [
            "## PIG ablations (as the paper's)",
            "",
            "Same stage-2 recipe as `conf/quality/pig.yaml`, one option changed (the extra arguments are given).",
            "",
            "| variant | arguments | seeds | t2v R@1 | R@5 | R@10 | MdR | v2t R@1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        s = summary(results, "pig")
        if s:
            lines.append(f"| PIG (reference: generator, informative tokens, k = 16, recon) | – | {s['t2v/R@1'][2]} | "
                         + " | ".join(fmt(s.get(m)) for m in ("t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "v2t/R@1")) + " |")
        for name, (label, extra) in ABLATIONS.items():
            s = summary(results, name)
            if s:
                lines.append(f"| {label} | `{' '.join(extra)}` | {s['t2v/R@1'][2]} | "
                             + " | ".join(fmt(s.get(m)) for m in ("t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "v2t/R@1")) + " |")
        lines.append("")
    lines += ["## Training curves (validation t2v R@1 by epoch, seed 0)", ""]
    for name in list(TOWERS) + list(ABLATIONS):
        r = results.get("runs", {}).get(f"{name}/seed0")
        if r:
            losses = ", ".join(f"{k} {v[-1]:.3f}" for k, v in sorted(r["train_losses"].items()))
            lines.append(f"- `{name}`: " + ", ".join(f"{v:.1f}" for v in r["val_t2v_R@1"]) + f" (last train losses: {losses})")
    lines += ["", "## Commands", "", "```bash"]
    lines.append("pig-lightning fit --config conf/quality/pretrain_clip.yaml   # stage 1")
    lines.append(f"pig-lightning export --ckpt_path <stage-1 best checkpoint> --output {EXPORTED} --checksums")
    lines.append(f"(cd {EXPORTED} && sha256sum -c ../../{SHIPPED}/SHA256SUMS)   # the three lines above = make pretrained-clip")
    lines.append(f"# stage 2 starts from the shipped {SHIPPED} (conf/quality/<tower>.yaml):")
    for name in TOWERS:
        lines.append(f"pig-lightning fit --config conf/quality/{name}.yaml --seed_everything S --data.init_args.seed S")
    for name, (_, extra) in ABLATIONS.items():
        lines.append(f"pig-lightning fit --config conf/quality/pig.yaml --seed_everything S --data.init_args.seed S {' '.join(extra)}")
    lines += ["```", ""]
    write_report("docs/quality.md", lines)
    chart(results, ROOT / "docs" / "quality.png")


DESIGN = [
    "## The setting",
    "",
    "Every result in the paper starts from CLIP pretrained on image–text pairs; the generator starts as a copy of that "
    "*trained* text transformer and the fusion as identity over meaningful embeddings. This benchmark reproduces that "
    "setting at a CPU's scale (design: `src/pig_lightning/data/scenes.py`):",
    "",
    "- **Stage 1, images** (`data/scene_images`, 20,000 train / 500 val): one or two still coloured shapes "
    "(6 colours × 4 shapes × 2 sizes × 5 positions) on noisy backgrounds, three captions each saying what is visible "
    "(\"a big red circle on the left and a small blue cross at the top\"). No motion. A tiny CLIP "
    "(`conf/quality/clip.json`: width 64, 2 layers, 32 px, 8 px patches) is trained on them contrastively.",
    "- **Stage 2, videos** (`data/scene_videos`, 1,200 train / 100 val / 200 test): four events in sequence "
    "(a coloured shape moving in one of four directions), plus a small static distractor in a corner that no caption "
    "mentions. Each of the four captions names only **two** of the four events, in order (\"a red circle moves "
    "left, then the blue cross goes up\"), and the captions of one video name different pairs: a caption describes "
    "part of the video, as real captions do — where text-conditioned pooling should beat mean pooling. Within an "
    "evaluation split no two videos share a captioned pair, so each of the 800 test queries has one right video "
    "(chance R@1 = 0.5 %).",
    "- The benchmark is **valid** when, with every tower fine-tuned from the stage-1 weights, it shows the ordering "
    "reported on real data — X-Pool > CLIP4Clip meanP and CLIP-ViP ≥ meanP — with the best tower below saturation "
    "(test t2v R@1 < 85 %).",
    "",
]
ANALYSIS = [  # the written reading of the measured numbers, kept with the script that makes them
    "## Reading the result",
    "",
    "- **The hybrid tower buys nothing on this benchmark, and why.** X-Pool is strong here because it pools each "
    "video *for the query at hand*: a caption names two of the four events and X-Pool attends to their frames. "
    "PIG's pooling is the same cross-attention, but its query is written from the video alone, once, offline. It "
    "cannot know which two events a user will ask about, so the vector it stores is one more summary of all four "
    "events in 64 floats — the same bottleneck as CLIP-ViP's video CLS or mean pooling, and PIG lands among "
    "those towers, not near X-Pool. PIG's premise is that a video's queries agree on its salient content, so that "
    "a query predicted from the video is close to the real ones (MSR-VTT's 20 captions mostly describe one main "
    "event); this benchmark removes exactly that by construction. It measures the value of *query-time* "
    "interaction, which a hybrid tower gives up to keep two-tower cost.",
    "- **The generator learns what it is trained for**: the reconstruction loss falls to ~0.12 (cosine ≈ 0.94 "
    "between pseudo-query and caption embedding, see the training curves). Because the reference trains the text "
    "tower with that loss as well (`t` is not detached), it can also pull a video's *different* captions towards one "
    "predictable point, a pressure the two-tower models do not have.",
    "- **Ablations** (table above, 3 seeds): the best one-vector model of the whole study is PIG *without* its "
    "generator — the fusion queried by the video CLS: 11.7 ± 0.6, against 8.8 ± 0.7 for the reference PIG and "
    "10.7 ± 0.9 for CLIP-ViP. Dropping only the reconstruction loss recovers most of it (10.6 ± 1.4). Here the "
    "generator and its loss cost about 3 points: the pseudo-query is trained to predict captions that, by "
    "construction, cannot be predicted from the video, and the loss moves the text tower too. A randomly initialised "
    "generator is worse still (8.3 ± 0.9): what the generator brings comes from the pretrained text transformer it "
    "copies. Random instead of informative tokens and k = 4, 8, 32 stay within the seeds' spread of the reference "
    "(8.5–8.9): at 32 px with 16 patches per frame, the global and frame tokens the fusion attends to carry what "
    "the selected patches add.",
    "- **Training curves**: validation R@1 of the one-vector towers rises slowly to 14–21 % (100 validation "
    "videos) and is still rising at epoch 10; X-Pool's reaches 51–55 %. A longer budget would raise all of them; "
    "nothing in the curves suggests it would move PIG from the one-vector group to X-Pool's.",
    "- **What would close the gap.** To the two-tower baselines: `query: video_cls` (documented, off by default: "
    "it is not the reference) puts PIG's architecture without its generator 1.0 point above CLIP-ViP, within the seeds' spread, so "
    "not a result to claim. To X-Pool: none of the options measured above; `recon_detach_text`, `fusion_dropout` "
    "and `lr_multipliers` were not measured in this setting. On this benchmark only query-time interaction (X-Pool, "
    "at X-Pool's online cost) reaches X-Pool's accuracy. The measurement that would test PIG's premise next is a "
    "variant of this benchmark where every caption of a video names the *same* salient events, marked as salient in "
    "the pixels (e.g. big objects), among unmentioned distractor events.",
    "",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="run only these names (towers and/or ablations)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--ablation_seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--report", action="store_true", help="only rewrite docs/quality.md from the stored results")
    parser.add_argument("--stage1", action="store_true",
                        help=f"run stage 1 here, export it to {EXPORTED} and compare it with the shipped {SHIPPED}")
    parser.add_argument("--stage1_run", help="adopt this finished run folder of conf/quality/pretrain_clip.yaml "
                        "(runs/NAME/version_N) as stage 1 instead of training again")
    parser.add_argument("--jobs", type=int, default=1,
                        help="stage-2 runs at once (each then uses one thread; wall times are per run)")
    args = parser.parse_args()
    results = load_results()
    if not args.report:
        stage1(results, args.stage1, args.stage1_run)
        names = args.only or list(TOWERS) + list(ABLATIONS)
        for name in names:
            if name not in TOWERS and name not in ABLATIONS:
                raise SystemExit(f"unknown run {name!r}: choose from {', '.join(list(TOWERS) + list(ABLATIONS))}")
        jobs = [(name, f"conf/quality/{name}.yaml", [], seed) for seed in args.seeds for name in names if name in TOWERS]
        jobs += [(name, "conf/quality/pig.yaml", ABLATIONS[name][1], seed)
                 for seed in args.ablation_seeds for name in names if name in ABLATIONS]
        PARALLEL["jobs"] = args.jobs
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(stage2, results, *job) for job in jobs]:
                future.result()
    results["costs"] = online_costs()
    save_results(results)
    report(results)


if __name__ == "__main__":
    main()
