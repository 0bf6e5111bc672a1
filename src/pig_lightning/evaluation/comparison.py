"""``pig-lightning compare``: runs side by side — test metrics and what each costs online.

    pig-lightning compare runs/demo_pig/version_0 runs/demo_meanp/version_0

Each argument is a run folder (``runs/NAME/version_N``; ``runs/NAME`` takes its latest version) or
its ``test_report.json``, written by ``fit`` with ``test_after_fit`` or by ``test``. Metrics come
from the report; the online cost is counted on the model of the checkpoint the report names: FLOPs
of one query (text encoding + scoring the test gallery) and floats stored per video
(:mod:`pig_lightning.evaluation.costs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS = ("t2v/R@1", "t2v/R@5", "t2v/R@10", "t2v/MdR", "v2t/R@1", "v2t/R@5")


class CompareError(ValueError):
    pass


def read_report(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The test report of a run folder, of its latest ``version_N`` (a logger's run name), or a file."""
    path = Path(path)
    versions = [p for p in path.glob("version_*") if p.name.removeprefix("version_").isdigit()]
    if path.is_dir() and not (path / "test_report.json").is_file() and versions:
        path = max(versions, key=lambda p: int(p.name.removeprefix("version_")))
    report_path = path / "test_report.json" if path.is_dir() else path
    if not report_path.is_file():
        raise CompareError(f"{report_path}: no test report (run `fit` with test_after_fit: true, or `test`)")
    try:
        report = json.loads(report_path.read_text())
        report["metrics"]["t2v/R@1"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CompareError(f"{report_path}: not a test report of pig-lightning ({type(exc).__name__}: {exc})") from exc
    return report_path, report


def table(rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> str:
    head = ["run", "tower", *METRICS, "online MFLOPs/query", "of it scoring", "stored floats/video"]
    lines = [head]
    for name, report, cost in rows:
        m = report["metrics"]
        lines.append([
            name, f"{report.get('tower', '?')} ({cost['kind']})" if cost else str(report.get("tower", "?")),
            *(f"{m[k]:.1f}" if k in m else "-" for k in METRICS),
            f"{cost['flops'] / 1e6:.2f}" if cost else "-",
            f"{cost['score_flops'] / 1e6:.3f}" if cost else "-",
            f"{cost['stored_floats']:,}" if cost else "-",
        ])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    sizes = {int(r["num_videos"]) for _, r, _ in rows}
    out.append(f"(test gallery: {', '.join(map(str, sorted(sizes)))} videos; "
               f"{', '.join(str(int(r['num_texts'])) for _, r, _ in rows)} queries)")
    return "\n".join(out)
