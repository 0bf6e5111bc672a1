"""A tiny PIG training run as a real ``pig-lightning fit`` process (3 epochs of 3 steps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import pig_tower
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parents[2]
CALLBACKS = "tests.training.callbacks"


def pig_config(tmp_path: Path, synthetic_root: str, **trainer) -> Path:
    """The suite's tiny synthetic run with the PIG tower (it has dropout: resuming must restore RNG)."""
    path = write_config(tmp_path, synthetic_root, **trainer)
    config = yaml.safe_load(path.read_text())
    config["trainer"].pop("max_steps")
    config["trainer"].update(max_epochs=3, val_check_interval=None, check_val_every_n_epoch=1, **trainer)
    config["model"]["tower"] = pig_tower(config["model"]["tower"]["init_args"]["backbone"]["init_args"])
    path.write_text(yaml.safe_dump(config))
    return path


def fit(config: Path, *args: str, callbacks: tuple[str, ...] = (), timeout: float = 300,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m pig_lightning fit --config config args...`` from the repository root."""
    extra = []
    for spec in callbacks:  # "KillAt:epoch=2" -> --trainer.callbacks+=...KillAt --trainer.callbacks.epoch=2
        name, _, kwargs = spec.partition(":")
        extra.append(f"--trainer.callbacks+={CALLBACKS}.{name}")
        for pair in filter(None, kwargs.split(",")):
            key, value = pair.split("=")
            extra.append(f"--trainer.callbacks.{key}={value}")
    return subprocess.run([sys.executable, "-m", "pig_lightning", "fit", "--config", str(config), *args, *extra],
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
