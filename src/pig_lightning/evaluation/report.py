"""``<log_dir>/<stage>_report.json``: an evaluation's metrics, sizes, provenance and per-query ranks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pig_lightning.atomic import write_json_atomic


def write_report(log_dir: str | Path, stage: str, metrics: dict[str, float], per_query: dict[str, Any], *,
                 hparams: dict[str, Any], checkpoint: str | None, epoch: int, global_step: int, tower: str) -> Path:
    """Write the report atomically; DSL results under their own key, never mixed with the plain ones."""
    settings = json.dumps(hparams, sort_keys=True, default=str)
    report = {
        "stage": stage,
        "metrics": {k: v for k, v in metrics.items() if not k.startswith("dsl/")},
        "dsl_metrics": {k: v for k, v in metrics.items() if k.startswith("dsl/")} or None,
        "num_texts": int(metrics["num_texts"]),
        "num_videos": int(metrics["num_videos"]),
        "v2t_protocol": hparams.get("v2t_protocol"),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "global_step": global_step,
        "tower": tower,
        "config_hash": hashlib.sha256(settings.encode()).hexdigest()[:16],
        "per_query": per_query,
    }
    path = Path(log_dir) / f"{stage}_report.json"
    write_json_atomic(path, report)
    return path
