"""The quality benchmark's protocol as docs/quality.md fixed it before the runs: towers, ablations,
the salient setting's parameter sets and the rule that chooses among them, and the run records.

Shared by the runner (``quality.py``) and the report (``quality_report.py``), so the parameter set
the runs use and the one the report calls frozen come from one rule applied to the records, never
from a hand-edited constant.
"""

from __future__ import annotations

import json

from report import ROOT

RECORDS = ROOT / "docs" / "quality_runs"  # one JSON per run (committed)
TOWERS = {  # name -> (label, kind)
    "meanp": ("CLIP4Clip meanP", "two-tower"),
    "seqtransf": ("CLIP4Clip seqTransf", "two-tower"),
    "clipvip": ("CLIP-ViP", "two-tower"),
    "pig": ("PIG", "hybrid"),
    "xpool": ("X-Pool", "single-tower"),
}
PIG = "--model.tower.init_args."
ABLATIONS = {  # name -> (label, extra arguments on conf/quality/pig.yaml); run in the salient setting
    "pig_video_cls": ("no generator: fusion queried by the video CLS", [PIG + "query", "video_cls"]),
    "pig_no_recon": ("no reconstruction loss", [PIG + "recon_weight", "0"]),
    "pig_detach_text": ("reconstruction target detached", [PIG + "recon_detach_text", "true"]),
    "pig_random_generator": ("generator randomly initialised", [PIG + "generator_init", "random"]),
}
SALIENT_PARAMS = {  # tried in the order of docs/quality.md: A first; B, then C, while X-Pool - meanP > 8; D if < 1
    "A": {"detail_probability": 0.2, "minor_size": 0.2},
    "B": {"detail_probability": 0.1, "minor_size": 0.16},
    "C": {"detail_probability": 0.0, "minor_size": 0.14},
    "D": {"detail_probability": 0.35, "minor_size": 0.24},
}
GAP = (1.0, 8.0)  # X-Pool - meanP, test t2v R@1
SATURATED = 85.0


def load_records() -> dict[str, dict[str, list[dict]]]:
    """setting key -> run name -> records (one per seed, by seed)."""
    out: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(RECORDS.glob("*/*.json")):
        record = json.loads(path.read_text())
        out.setdefault(record["setting"], {}).setdefault(record["name"], []).append(record)
    for runs in out.values():
        for records in runs.values():
            records.sort(key=lambda r: r["seed"])
    return out


def seed0_r1(records: dict[str, dict[str, list[dict]]], params: str, name: str) -> float | None:
    runs = records.get(f"salient_{params}", {}).get(name, [])
    return next((r["metrics"]["t2v/R@1"] for r in runs if r["seed"] == 0), None)


def verdict(records: dict[str, dict[str, list[dict]]], params: str) -> str:
    """``needs meanp/xpool``, ``gap high``, ``gap low``, ``needs clipvip``, ``clipvip below meanp``,
    ``saturated`` or ``valid`` for a parameter set, from its seed-0 runs."""
    meanp, xpool, clipvip = (seed0_r1(records, params, n) for n in ("meanp", "xpool", "clipvip"))
    if meanp is None or xpool is None:
        return "needs meanp/xpool"
    if xpool - meanp > GAP[1]:
        return "gap high"
    if xpool - meanp < GAP[0]:
        return "gap low"
    if clipvip is None:
        return "needs clipvip"
    if clipvip < meanp:
        return "clipvip below meanp"
    return "saturated" if max(meanp, xpool, clipvip) >= SATURATED else "valid"


def search(records: dict[str, dict[str, list[dict]]]) -> tuple[str | None, str]:
    """Walk the fixed order: ``(parameter set, its verdict)`` where the search stands now; the set is
    frozen when the verdict is ``valid``, still to run when it starts with ``needs``, and ``(None,
    reason)`` when the order is exhausted (the premise then stays untested)."""
    params = "A"
    while True:
        state = verdict(records, params)
        if state == "gap high" and params in ("A", "B"):
            params = {"A": "B", "B": "C"}[params]
        elif state == "gap low" and params == "A":
            params = "D"
        elif state in ("gap high", "gap low", "clipvip below meanp", "saturated"):
            return None, f"set {params}: {state}; no set left in the order"
        else:
            return params, state


def frozen(records: dict[str, dict[str, list[dict]]] | None = None) -> str | None:
    params, state = search(load_records() if records is None else records)
    return params if state == "valid" else None
