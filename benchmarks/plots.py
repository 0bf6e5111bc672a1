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

from pig_lightning.plotting import pyplot  # noqa: E402  (lazy matplotlib with a clear error)


def table(markdown: Path) -> tuple[list[str], list[list[str]]]:
    """The first markdown table of ``markdown``: its header and rows (cells stripped)."""
    rows = [line for line in markdown.read_text().splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    return cells[0], [r for r in cells[2:] if len(r) == len(cells[0])]


def save(plt, fig, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return out


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
    return save(plt, fig, out)


def loader_throughput(doc: Path = ROOT / "docs/loader_throughput.md", ceiling: Path = ROOT / "docs/loader_ceiling.md",
                      optimized: Path = ROOT / "docs/optimized_loader.md",
                      out: Path = ROOT / "docs/loader_throughput.png") -> Path:
    """Clips/s per loading path (0 and 2 workers, log scale), with the DataLoader ceilings."""
    _, rows = table(doc)
    bars = [(r[0].split(" (")[0] + ("" if r[1].startswith("(") else f"\n{r[1].split(' (')[0]}"), number(r[2]),
             number(r[4])) for r in rows if not r[0].startswith("(ceiling")]
    _, streamed = table(optimized)
    bars += [("optimized dataset (decode once),\ntraining loader" if r[0].startswith("optimized") else
              "mp4 files, training loader\n(same run as the next row)", number(r[1]), number(r[2])) for r in streamed]
    _, ceilings = table(ceiling)
    bars += [(f"ceiling: {r[0].split('`')[0].strip()} items", number(r[2]), number(r[3])) for r in ceilings]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.6))
    positions = range(len(bars))
    ax.barh([y - 0.2 for y in positions], [b[1] for b in bars], height=0.4, label="0 workers")
    ax.barh([y + 0.2 for y in positions], [b[2] for b in bars], height=0.4, label="2 workers")
    ax.set_yticks(list(positions), [b[0] for b in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("clips/s (12 frames, 224 px; 2 CPU cores)")
    ax.set_title("Loading a training clip: per path, and the DataLoader's ceiling", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(plt, fig, out)


def eval_and_search_scale(doc: Path = ROOT / "docs/eval_and_search_scale.md",
                          out: Path = ROOT / "docs/eval_and_search_scale.png") -> Path:
    """Evaluation peak memory against N per method, and search time per query against gallery size."""
    lines = doc.read_text().splitlines()
    header, rows = table(doc)
    search = [[c.strip() for c in line.strip("|").split("|")] for line in lines
              if line.startswith("| ") and "videos |" in line and line.count("|") == 3]
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for method in dict.fromkeys(r[0] for r in rows):
        points = [(number(r[1]), number(r[4])) for r in rows if r[0] == method]
        left.plot([x for x, _ in points], [y for _, y in points], marker="o", label=method)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("videos = queries (N)")
    left.set_ylabel("peak extra memory (MB)")
    left.set_title("Evaluation memory", fontsize=10)
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.plot([number(r[0]) for r in search], [number(r[1]) for r in search], marker="o")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("videos in the gallery")
    right.set_ylabel("ms per query")
    right.set_title("Search (top-k over an fp16 gallery)", fontsize=10)
    right.grid(True, which="both", alpha=0.3)
    return save(plt, fig, out)


CHARTS = {"tower_costs": tower_costs, "loader_throughput": loader_throughput,
          "eval_and_search_scale": eval_and_search_scale}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CHARTS):
        CHARTS[name]()
