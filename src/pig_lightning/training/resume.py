"""``--ckpt_path last``: find the latest training state of a run, wherever a restart puts it.

Lightning resolves ``last`` in the checkpoint folder of the *new* run (a new ``version_N``), finds
nothing there, warns and trains from scratch: work lost without an error. Here ``last`` means the
newest complete ``last.ckpt`` under the logger's ``save_dir/name`` (any version), or the newest
``hpc_ckpt_N.ckpt`` that Lightning wrote in ``default_root_dir`` on a SLURM requeue signal,
whichever was written last. A checkpoint cut off by a kill is skipped with a warning (they are
written atomically, so that only happens to files written otherwise). The resumed run logs into
the same version folder, so its TensorBoard curves continue.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pig_lightning.training.checkpointing import LAST_NAME, is_complete_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resume:
    path: Path | None  # the checkpoint to resume from; None: start from scratch
    version: str | None  # the logger version folder it belongs to (None for hpc / none)
    skipped: tuple[Path, ...] = ()  # incomplete candidates, newest first


def run_root(trainer_config: Any) -> Path:
    """Where this run's versions live: the TensorBoard/CSV logger's ``save_dir/name``."""
    logger = _get(trainer_config, "logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    args = _get(logger, "init_args") if logger not in (None, True, False) else None
    root_dir = _get(trainer_config, "default_root_dir") or os.getcwd()
    if args is not None and _get(args, "save_dir") is not None:
        name = _get(args, "name")
        return Path(str(_get(args, "save_dir"))) / (str(name) if name not in (None, "") else "")
    return Path(str(root_dir)) / "lightning_logs"


def find_resume(root: Path, hpc_dir: Path | None = None) -> Resume:
    """The newest complete ``last.ckpt`` under ``root/*/checkpoints`` or ``hpc_ckpt_*.ckpt`` in ``hpc_dir``."""
    candidates = list(root.glob(f"*/checkpoints/{LAST_NAME}.ckpt")) if root.is_dir() else []
    candidates += list(root.glob(f"checkpoints/{LAST_NAME}.ckpt")) if root.is_dir() else []
    if hpc_dir is not None and hpc_dir.is_dir():
        candidates += list(hpc_dir.glob("hpc_ckpt_*.ckpt"))
    skipped = []
    for path in sorted(set(candidates), key=lambda p: p.stat().st_mtime, reverse=True):
        if not is_complete_checkpoint(path):
            log.warning("not resuming from %s: the file is incomplete (cut off while being written?); trying the "
                        "previous checkpoint", path)
            skipped.append(path)
            continue
        version = path.parent.parent.name if path.name == f"{LAST_NAME}.ckpt" and path.parent.parent != root else None
        return Resume(path, version, tuple(skipped))
    return Resume(None, None, tuple(skipped))


def tower_mismatch(checkpoint: dict[str, Any], model_config: Any) -> str | None:
    """A message when the checkpoint holds another tower than the config builds, else None."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("tower")
    saved_class = _get(saved, "class_path")
    wanted_class = _get(_get(model_config, "tower"), "class_path")
    if saved_class and wanted_class and saved_class.rsplit(".", 1)[-1] != str(wanted_class).rsplit(".", 1)[-1]:
        return f"it holds a {saved_class.rsplit('.', 1)[-1]}, this run builds a {str(wanted_class).rsplit('.', 1)[-1]}"
    return None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)
