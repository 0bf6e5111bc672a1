"""``benchmarks/gpu_check.py``: the dry run on this CPU (every stage recorded, those that need CUDA
skipped with the reason), the wheel folder that lacks a package, and the stage runner's records for
a stage that is skipped, runs out of time or memory, or fails."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NEEDS_CUDA = {3, 5, 6, 7}  # SDPA flash, MFU, compile, largest batch


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check
    return gpu_check


@pytest.mark.slow  # a tiny CLI fit, a few training steps, videos written and read: ~1 min
def test_the_dry_run_records_every_stage_as_it_goes(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--out", str(out), "--dry"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    stages = json.loads((out / "gpu_check.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3, 4, 5, 7, 9, 10, 8, 6]  # compile last
    status = {s["stage"]: s["status"] for s in stages}
    assert {n for n, st in status.items() if st == "skipped"} == NEEDS_CUDA, status
    assert all(status[n] == "ok" for n in set(status) - NEEDS_CUDA), {s["stage"]: s["why"] for s in stages}
    assert all("no CUDA device" in s["why"] for s in stages if s["stage"] in NEEDS_CUDA)
    results = {s["stage"]: s["results"] for s in stages}
    assert results[1]["torch"] == torch.__version__
    assert results[2]["loss_finite"] and results[2]["reloads last.ckpt"] and results[2]["steps"] >= 1
    runs = results[4]["runs"]
    assert set(runs) == {"pig_2", "clip-vip_2", "pig_4", "clip-vip_4"} and all(r["step"] > 0 for r in runs.values())
    assert set(results[8]["rates"]) == {f"{s}, {w} workers" for s in ("mp4 files", "optimized (litdata)")
                                        for w in (0, 2)}
    assert results[9]["full"]["gib"] > results[9]["weights-only"]["gib"]  # the optimiser's moments
    assert results[10]["has_dsl"] and results[10]["videos"] == 32
    report = (out / "gpu_check.md").read_text()
    assert all(f"## {n}. " in report for n in range(1, 11))
    assert report.count("skipped: no CUDA device") == len(NEEDS_CUDA)


def test_a_wheel_folder_without_the_package_is_named_and_the_rest_goes_on(gpu_check, tmp_path):
    (tmp_path / "wheels").mkdir()
    still, note = gpu_check.install_from_wheels(["no_such_package_pig"], str(tmp_path / "wheels"), tmp_path / "site")
    assert still == ["no_such_package_pig"]
    assert "no_such_package_pig" in note
    still, note = gpu_check.install_from_wheels(["no_such_package_pig"], str(tmp_path / "absent"), tmp_path / "site")
    assert still == ["no_such_package_pig"] and "not a folder" in note
    assert gpu_check.install_from_wheels([], None, tmp_path / "site") == ([], "")


def test_each_stage_is_written_when_it_ends_and_a_bad_one_does_not_stop_the_next(gpu_check, tmp_path):
    class Skip(Exception):  # what gpu_stages raises; recognised by name
        pass

    class Ctx:
        budget, limits, results, started = 60, {3: 0.3}, {}, time.monotonic()

        def cleanup(self):
            pass

    seen = []

    def ok(ctx):
        return {"value": 1}, ["fine"]

    def reads_report(ctx):  # stage 1 is already on disk while stage 2 runs
        seen.append(json.loads((tmp_path / "gpu_check.json").read_text())["stages"][0]["status"])
        raise Skip("no CUDA device (test)")

    def sleeps(ctx):
        time.sleep(5)

    def runs_out(ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def breaks(ctx):
        raise ValueError("a stage bug")

    stages = [("a", 10, ok), ("b", 10, reads_report), ("c", 10, sleeps), ("d", 10, runs_out), ("e", 10, breaks),
              ("f", 10, ok)]
    report = gpu_check.Report(tmp_path, ["# test"])
    start = time.monotonic()
    gpu_check.run_stages(stages, Ctx(), report, deadline=time.monotonic() + 60, only=None)
    assert time.monotonic() - start < 4  # stage 3's limit of 0.3 s cut its 5 s sleep
    records = json.loads((tmp_path / "gpu_check.json").read_text())["stages"]
    assert [r["status"] for r in records] == ["ok", "skipped", "timed out", "out of memory", "failed", "ok"]
    assert seen == ["ok"]
    assert records[2]["why"] == "over its 0 s limit" and "Traceback" in records[4]["traceback"]
    assert "*skipped: no CUDA device (test)*" in (tmp_path / "gpu_check.md").read_text()


def test_no_time_left_skips_the_remaining_stages(gpu_check, tmp_path):
    class Ctx:
        budget, limits, results, started = 1, {}, {}, time.monotonic()

        def cleanup(self):
            pass

    report = gpu_check.Report(tmp_path, ["# test"])
    gpu_check.run_stages([("a", 10, lambda ctx: ({}, []))], Ctx(), report, deadline=time.monotonic() + 1, only=None)
    record = json.loads((tmp_path / "gpu_check.json").read_text())["stages"][0]
    assert record["status"] == "timed out" and "not started: no time left" in record["why"]
