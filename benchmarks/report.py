"""Shared by the benchmark scripts: the machine line and writing a Markdown report into docs/."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, Python {platform.python_version()}, "
            f"torch {torch.__version__}; measured {time.strftime('%Y-%m-%d')}")


def write_report(relative_path: str, lines: list[str]) -> Path:
    out = ROOT / relative_path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return out
