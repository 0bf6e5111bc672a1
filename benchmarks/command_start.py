"""How long a command takes to start: the time from the shell to the command's first output.

    python benchmarks/command_start.py            # -> docs/command_start.md

Each command runs in a fresh process (``python -m pig_lightning.cli ...``, as the ``pig-lightning``
entry point runs it), 5 times; the median is reported. For comparison the same run times what every
command paid before the commands imported the training stack only when they need it: ``import
pig_lightning.data.datamodule`` (torch, Lightning, transformers, PyAV).
"""

from __future__ import annotations

import json
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
    subprocess.run(args, cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - start


def median(args: list[str]) -> float:
    seconds(args)  # warm the page cache
    return statistics.median(seconds(args) for _ in range(REPEATS))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        captions = Path(tmp) / "MSRVTT_data.json"
        split = Path(tmp) / "MSRVTT_JSFUSION_test.csv"
        captions.write_text(json.dumps({"sentences": [{"video_id": f"video{i}", "caption": f"a caption {i}"}
                                                      for i in range(1000)]}))
        split.write_text("key,vid_key,video_id,sentence\n" + "".join(
            f"ret{i},msr{i},video{i},a caption {i}\n" for i in range(1000)))
        cli = [sys.executable, "-m", "pig_lightning.cli"]
        rows = [
            ("`pig-lightning --help`", median(cli + ["--help"])),
            ("`pig-lightning convert --help`", median(cli + ["convert", "--help"])),
            ("`pig-lightning convert` (MSR-VTT 1k-A, 1,000 rows)", median(cli + [
                "convert", "--format", "msrvtt_csv", "--input", str(split), "--captions_file", str(captions),
                "--output", str(Path(tmp) / "out.jsonl")])),
            ("`pig-lightning data-check --help`", median(cli + ["data-check", "--help"])),
            ("`pig-lightning index --help`", median(cli + ["index", "--help"])),
            ("`pig-lightning fit --help` (LightningCLI)", median(cli + ["fit", "--help"])),
            ("the training stack alone: `import pig_lightning.data.datamodule` (what every command paid before)",
             median([sys.executable, "-c", "import pig_lightning.data.datamodule"])),
            ("an empty Python: `python -c pass`", median([sys.executable, "-c", "pass"])),
        ]
    lines = ["# Command start times", "", f"Measured by `python benchmarks/command_start.py` on {machine()}.",
             f"Median of {REPEATS} fresh processes each (after one warm-up run).", "",
             "| command | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in rows]
    write_report("docs/command_start.md", lines)


if __name__ == "__main__":
    main()
