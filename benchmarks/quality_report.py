"""docs/quality.md's results section and charts, from the run records in docs/quality_runs/.

    python benchmarks/quality_report.py      # also what `python benchmarks/quality.py` ends with

Only the part of docs/quality.md between ``<!-- results:begin -->`` and ``<!-- results:end -->``
is rewritten: the design above it was written before the runs and is not touched. Every number
comes from a record; a table row, a verdict or the decision appears only when its runs exist.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from quality import best_epoch
from quality_protocol import ABLATIONS, GAP, SALIENT_PARAMS, SATURATED, TOWERS, load_records, search, seed0_r1, verdict
from report import ROOT, machine

DOC = ROOT / "docs" / "quality.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
METRICS = ("t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "v2t/R@1")
DIAGNOSTICS = ("diag/text2pseudo_query/R@1", "diag/pseudo_query/cos_gap", "diag/text2video_cls/R@1")
CHANCE = {"val": 1.0, "test": 0.5}  # R@1 of a random ranking: 100 val, 200 test videos


def stat(records: list[dict], metric: str, where: str = "metrics") -> tuple[float, float, int] | None:
    values = [r[where][metric] for r in records if metric in r.get(where, {})]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def fmt(s: tuple[float, float, int] | None, digits: int = 1) -> str:
    if s is None:
        return "–"
    mean, std, n = s
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def label(name: str) -> str:
    return TOWERS[name][0] if name in TOWERS else ABLATIONS[name][0]


def tower_table(runs: dict[str, list[dict]]) -> list[str]:
    lines = ["| tower | kind | seeds | step 0 t2v R@1 (val) | t2v R@1 | R@5 | R@10 | MdR | v2t R@1 | best epoch | "
             "min per run |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in list(TOWERS) + list(ABLATIONS):
        records = runs.get(name)
        if not records:
            continue
        kind = TOWERS[name][1] if name in TOWERS else "hybrid (ablation)"
        epochs = ", ".join(str(r.get("best_epoch") or best_epoch(r["checkpoint"])) for r in records)
        minutes = statistics.fmean(r["seconds"] for r in records) / 60
        lines.append(f"| {label(name)} | {kind} | {len(records)} | {fmt(stat(records, 't2v/R@1', 'step0'))} | "
                     + " | ".join(fmt(stat(records, m)) for m in METRICS) + f" | {epochs} | {minutes:.1f} |")
    return lines


def diagnostics_table(runs: dict[str, list[dict]]) -> list[str]:
    rows = [(name, runs[name]) for name in ["pig"] + list(ABLATIONS) if name in runs
            and any("diag/text2video_cls/R@1" in r["metrics"] for r in runs[name])]
    if not rows:
        return []
    lines = ["| run | text → pseudo-query R@1 (test; chance 0.5) | cos gap own − other | text → un-fused video CLS R@1 | "
             "at step 0 (val): text → pseudo-query R@1, cos gap |", "|---|---|---|---|---|"]
    for name, records in rows:
        lines.append(f"| {label(name)} | " + " | ".join(fmt(stat(records, m), 3 if "cos" in m else 1) for m in DIAGNOSTICS)
                     + f" | {fmt(stat(records, DIAGNOSTICS[0], 'step0'))}, {fmt(stat(records, DIAGNOSTICS[1], 'step0'), 3)} |")
    return lines


def convergence(runs: dict[str, list[dict]]) -> list[str]:
    best_name = max((n for n in TOWERS if n in runs), key=lambda n: stat(runs[n], "t2v/R@1")[0], default=None)
    if best_name is None:
        return []
    out = []
    for record in runs[best_name]:
        curve = record["curves"].get("t2v/R@1", [])
        if curve:
            since = len(curve) - 1 - max(range(len(curve)), key=lambda i: (curve[i], -i))
            out.append(f"seed {record['seed']}: best at validation {len(curve) - since} of {len(curve)}, "
                       f"{since} without improvement ({'converged' if since >= 3 else '**not converged**'})")
    return [f"Convergence of the best tower ({label(best_name)}), by its validation t2v R@1: " + "; ".join(out) + "."]


def validity(all_runs: dict[str, dict[str, list[dict]]]) -> list[str]:
    lines = [f"| parameter set | detail_probability | minor_size | meanP | X-Pool | CLIP-ViP | X-Pool − meanP "
             f"({GAP[0]:.0f} to {GAP[1]:.0f}) | verdict |", "|---|---|---|---|---|---|---|---|"]
    for params, values in SALIENT_PARAMS.items():
        r1 = {n: seed0_r1(all_runs, params, n) for n in ("meanp", "xpool", "clipvip")}
        if r1["meanp"] is None and r1["xpool"] is None:
            continue
        cell = {n: "–" if v is None else f"{v:.1f}" for n, v in r1.items()}
        gap = "–" if None in (r1["meanp"], r1["xpool"]) else f"{r1['xpool'] - r1['meanp']:+.1f}"
        lines.append(f"| {params} | {values['detail_probability']} | {values['minor_size']} | {cell['meanp']} | "
                     f"{cell['xpool']} | {cell['clipvip']} | {gap} | {verdict(all_runs, params)} |")
    if len(lines) == 2:
        return []
    params, state = search(all_runs)
    where = (f"**set {params} is frozen**" if state == "valid" else
             f"the search stands at set {params} ({state})" if params else f"no set is valid ({state})")
    return lines + ["", f"Rule: valid when X-Pool − meanP is in [{GAP[0]:.0f}, {GAP[1]:.0f}], CLIP-ViP ≥ meanP and the "
                        f"best < {SATURATED:.0f} (test t2v R@1, seed 0); {where}."]


def decision(runs: dict[str, list[dict]]) -> list[str]:
    needed = {"pig": 3, "clipvip": 3, "pig_video_cls": 3}
    missing = [f"{n} ({len(runs.get(n, []))}/{k} seeds)" for n, k in needed.items() if len(runs.get(n, [])) < k]
    if missing:
        return [f"Not decided yet: the rule needs 3 seeds of PIG, CLIP-ViP and `query: video_cls`; "
                f"missing {', '.join(missing)}."]
    pig, clipvip, video_cls = (stat(runs[n], "t2v/R@1") for n in ("pig", "clipvip", "pig_video_cls"))
    xpool = stat(runs.get("xpool", []), "t2v/R@1")
    pq = stat(runs["pig"], DIAGNOSTICS[0])
    margin, spread = pig[0] - clipvip[0], max(pig[1], clipvip[1])
    checks = [
        (f"PIG − CLIP-ViP = {margin:+.1f} > one seed std ({spread:.1f})", margin > spread),
        (f"PIG {pig[0]:.1f} > its `query: video_cls` ablation {video_cls[0]:.1f}", pig[0] > video_cls[0]),
        (f"text → pseudo-query R@1 {pq[0]:.1f} ≥ 10× chance (5.0)", pq[0] >= 10 * CHANCE["test"]),
    ]
    verdict = "**supported**" if all(ok for _, ok in checks) else "**not supported**"
    if xpool is None or xpool[2] < 3:
        half_gap = "pending (X-Pool needs 3 seeds)"
    else:
        half = clipvip[0] + (xpool[0] - clipvip[0]) / 2
        half_gap = (f"no gap to close (X-Pool {xpool[0]:.1f} ± {xpool[1]:.1f} is below CLIP-ViP)"
                    if xpool[0] <= clipvip[0] else
                    f"{'met' if pig[0] >= half else 'not met'} (≥ {half:.1f}; X-Pool {xpool[0]:.1f} ± {xpool[1]:.1f})")
    return [f"The premise is {verdict} in `salient`:"] + [f"- {text}: {'yes' if ok else 'no'}" for text, ok in checks] + [
        "", "Targets of the issue: "
        f"PIG ≥ CLIP-ViP + 2.0: {'met' if margin >= 2.0 else 'not met'} ({margin:+.1f}); "
        f"PIG closes half the gap from CLIP-ViP to X-Pool: {half_gap}; "
        f"text → pseudo-query R@1 ≥ 10× chance: {'met' if pq[0] >= 5.0 else 'not met'} ({pq[0]:.1f})."]


def charts(all_runs: dict[str, dict[str, list[dict]]], keys: list[str]) -> list[str]:
    from pig_lightning.plotting import pyplot

    plt = pyplot()
    colours = {"two-tower": "#7f8c8d", "hybrid": "#c0392b", "single-tower": "#2e86c1"}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = [(n, stat(all_runs[key][n], "t2v/R@1")) for n in list(TOWERS) + list(ABLATIONS) if n in all_runs[key]]
        xs = range(len(rows))
        ax.bar(xs, [s[0] for _, s in rows], yerr=[s[1] for _, s in rows], capsize=4,
               color=[colours[TOWERS[n][1]] if n in TOWERS else "#e59866" for n, _ in rows])
        for x, (_, s) in zip(xs, rows):
            ax.text(x, s[0] + s[1] + 0.8, f"{s[0]:.1f}", ha="center", fontsize=8)
        short = {"pig_video_cls": "PIG, query: video CLS", "pig_no_recon": "PIG, no recon",
                 "pig_detach_text": "PIG, recon detached", "pig_random_generator": "PIG, random generator"}
        ax.set_xticks(list(xs), [f"{short.get(n, label(n))} (n={s[2]})" for n, s in rows], rotation=25, ha="right",
                      fontsize=8)
        ax.set_title(f"setting {key}")
        ax.set_ylabel("test t2v R@1 (%), mean ± std over seeds")
    fig.suptitle("When does a hybrid tower help? Same pretrained tiny CLIP, same budget\n"
                 "(200 test videos, chance 0.5 %; n = seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "quality.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name in TOWERS:
            seed0 = next((r for r in all_runs[key].get(name, []) if r["seed"] == 0), None)
            if seed0 and seed0["curves"].get("t2v/R@1"):
                curve = [seed0["step0"]["t2v/R@1"]] + seed0["curves"]["t2v/R@1"]  # step 0, then every epoch
                ax.plot(range(len(curve)), curve, label=label(name), color=colours[TOWERS[name][1]],
                        linestyle="-" if name in ("pig", "xpool", "clipvip") else ":")
        ax.set_title(f"setting {key}: validation t2v R@1, seed 0")
        ax.set_xlabel("epoch (0: before training)")
        ax.set_ylabel("R@1 (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "quality_curves.png", dpi=110)
    plt.close(fig)
    return ["![test t2v R@1 per tower in each setting](quality.png)", "",
            "![validation curves](quality_curves.png)", ""]


def results_section() -> list[str]:
    all_runs = load_records()
    count = sum(len(v) for runs in all_runs.values() for v in runs.values())
    if not count:
        return ["No run of this protocol is recorded yet."]
    lines = [f"{count} runs recorded in `docs/quality_runs/` (machine of the latest report: {machine()}). Test split, "
             "best-validation checkpoint, mean ± std over seeds.", ""]
    validity_lines = validity(all_runs)
    if validity_lines:
        lines += ["### Validity of `salient` (meanP, X-Pool, CLIP-ViP; seed 0)", ""] + validity_lines + [""]
    shown = []
    for key in ["parts"] + [f"salient_{p}" for p in SALIENT_PARAMS]:
        runs = all_runs.get(key)
        if not runs:
            continue
        shown.append(key)
        lines += [f"### Setting `{key}`", ""] + tower_table(runs) + [""]
        diag = diagnostics_table(runs)
        if diag:
            lines += ["Pseudo-query diagnostics (`evaluation/diagnostics.py`), test split:", ""] + diag + [""]
        lines += convergence(runs) + [""]
    params, state = search(all_runs)
    if state == "valid":
        lines += ["### Decision", ""] + decision(all_runs.get(f"salient_{params}", {})) + [""]
    lines += charts(all_runs, shown)
    return lines


def write_results() -> Path:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} section to write the results into")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + BEGIN + "\n" + "\n".join(results_section()) + "\n" + END + tail)
    print(f"wrote {DOC}")
    return DOC


if __name__ == "__main__":
    write_results()
