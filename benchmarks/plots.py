"""Charts of the recorded benchmark numbers, drawn from the tables in docs/ (no re-run needed).

    python benchmarks/plots.py                 # every chart this script knows -> docs/*.png
    python benchmarks/plots.py tower_costs     # one

Each benchmark script calls its chart after writing its table, so a re-run refreshes both.
Needs matplotlib (the `plots` extra).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pig_lightning.explain import pyplot  # noqa: E402  (lazy matplotlib with a clear error)


def table(markdown: Path) -> tuple[list[str], list[list[str]]]:
    """The first markdown table of ``markdown``: its header and rows (cells stripped)."""
    rows = [line for line in markdown.read_text().splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    return cells[0], [r for r in cells[2:] if len(r) == len(cells[0])]


def number(cell: str) -> float:
    return float(re.match(r"[\d,.]+", cell).group(0).replace(",", ""))


def tower_costs(doc: Path = ROOT / "docs/tower_costs.md", out: Path = ROOT / "docs/tower_costs.png") -> Path:
    """Online scoring time per query against the gallery size, one line per tower (log-log)."""
    header, rows = table(doc)
    sizes = [(i, number(m.group(1))) for i, h in enumerate(header)
             if (m := re.match(r"ms / 1,000 queries, ([\d,]+) videos", h))]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        xs = [size for _, size in sizes]
        ys = [number(row[i]) / 1000 for i, _ in sizes]  # ms per query
        ax.plot(xs, ys, marker="o", label=row[0])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("videos in the gallery")
    ax.set_ylabel("scoring time per query (ms, 2 CPU cores)")
    ax.set_title("Online cost per query (ViT-B/32, text encoding excluded)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return out


CHARTS = {"tower_costs": tower_costs}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CHARTS):
        CHARTS[name]()
