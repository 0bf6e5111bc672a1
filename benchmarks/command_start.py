"""How long a command takes to start: the time from the shell to the command's first output.

    python benchmarks/command_start.py            # -> docs/command_start.md

Each command runs in a fresh process (``python -m pig_lightning.cli ...``, as the ``pig-lightning``
entry point runs it), 5 times; the median is reported. For comparison the same run times what every
command paid before the commands imported the training stack only when they need it: ``import
pig_lightning.data.datamodule`` (torch, Lightning, transformers, PyAV).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import ROOT, machine, write_report

REPEATS = 5


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:  # a command that fails fast would look fast
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return took


def median(args: list[str]) -> float:
    seconds(args)  # warm the page cache
    return statistics.median(seconds(args) for _ in range(REPEATS))


def main() -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "MSRVTT_JSFUSION_test.csv"
        split.write_text("key,vid_key,video_id,sentence\n" + "".join(
            f"ret{i},msr{i},video{i},a caption {i}\n" for i in range(1000)))
        cli = [sys.executable, "-m", "pig_lightning.cli"]
        rows = [
            ("`pig-lightning --help`", median(cli + ["--help"])),
            ("`pig-lightning convert --help`", median(cli + ["convert", "--help"])),
            ("`pig-lightning convert` (MSR-VTT 1k-A, 1,000 rows)", median(cli + [
                "convert", "--format", "msrvtt_csv", "--input", str(split), "--output", str(Path(tmp) / "out.jsonl")])),
            ("`pig-lightning data-check --help`", median(cli + ["data-check", "--help"])),
            ("`pig-lightning index --help`", median(cli + ["index", "--help"])),
            ("`pig-lightning fit --help` (LightningCLI)", median(cli + ["fit", "--help"])),
            ("the training stack alone: `import pig_lightning.data.datamodule` (what every command paid before)",
             median([sys.executable, "-c", "import pig_lightning.data.datamodule"])),
            ("an empty Python: `python -c pass`", median([sys.executable, "-c", "pass"])),
        ]
    lines = ["# Command start times", "", f"Measured by `python benchmarks/command_start.py` on {machine()}.",
             f"Median of {REPEATS} fresh processes each (after one warm-up run); load average {load:.1f} when it "
             "started (other jobs on the machine slow the heavy rows most).", "",
             "Before the commands imported the training stack only where they need it, every command paid the "
             "row *the training stack alone* before doing anything (issue #22 measured `pig-lightning --help` at "
             "8.0 s and `data-check --help` at 5.2 s on an idle 2-core machine).", "",
             "| command | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in rows]
    write_report("docs/command_start.md", lines)


if __name__ == "__main__":
    main()
