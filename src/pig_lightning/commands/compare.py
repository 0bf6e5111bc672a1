"""``pig-lightning compare``: the command line of :mod:`pig_lightning.evaluation.comparison`."""

from __future__ import annotations

import argparse

from pathlib import Path
from typing import Any

from pig_lightning.evaluation import comparison as _library
from pig_lightning.evaluation.comparison import read_report, table


def run_cost(report: dict[str, Any]) -> dict[str, Any] | None:
    """Online cost of the report's model, or None when its checkpoint is gone."""
    import torch

    from pig_lightning.evaluation.costs import online_cost
    from pig_lightning.load import load_model

    checkpoint = report.get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        return None
    module = load_model(checkpoint)
    tower = module.tower
    size = tower.backbone.image_size
    frames = torch.zeros(1, tower.num_frames, 3, size, size)
    length = tower.backbone.max_text_length
    ids = torch.full((1, length), tower.backbone.eos_token_id)
    ids[0, 0] = tower.backbone.bos_token_id
    cost = online_cost(tower, frames, ids, torch.ones_like(ids), int(report["num_videos"]))
    return {"kind": tower.kind, "flops": cost.flops, "score_flops": cost.score_flops,
            "stored_floats": cost.stored_floats}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pig-lightning compare", description=_library.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+",
                        help="run folders (runs/NAME/version_N, or runs/NAME for its latest) or their test_report.json")
    parser.add_argument("--no_cost", action="store_true", help="metrics only (do not load the checkpoints)")
    args = parser.parse_args(argv)
    rows = []
    for run in args.runs:
        path, report = read_report(run)
        cost = None if args.no_cost else run_cost(report)
        rows.append((str(path.parent), report, cost))
    print(table(rows))
