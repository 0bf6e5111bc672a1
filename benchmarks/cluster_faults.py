"""Cluster faults measured on one machine (gloo, CPU): how fast a job ends when a node dies or
hangs, and whether kill-and-resume reproduces an uninterrupted run.

    python benchmarks/cluster_faults.py         # -> docs/cluster.md  (~3 min on 2 cores)

Uses the same launch helpers and callbacks as ``tests/training`` (two ``torchrun`` "nodes",
``pig-lightning fit`` processes killed with real signals at chosen steps).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from report import ROOT, machine, write_report

sys.path.insert(0, str(ROOT))

from tests.helpers import SMALL_SYNTHETIC, write_config  # noqa: E402
from tests.training.callbacks import read_records  # noqa: E402
from tests.training.launch import kill_matching, torchrun_nodes  # noqa: E402
from tests.training.runs import fit, pig_config  # noqa: E402

from pig_lightning.data.worlds.synthetic import make_synthetic  # noqa: E402


def node_fault(tmp: Path, root: str, signal_name: str, *args: str) -> dict:
    """Rank 1 gets ``signal_name`` after step 2; seconds from then until node 0 has exited."""
    config = write_config(tmp, root, max_steps=6)
    procs = torchrun_nodes(config, "--data.batch_size=4", *args,
                           callbacks=(f"KillAt:step=2,rank=1,signal_name={signal_name}",))
    out0, _ = procs[0].communicate(timeout=600)
    exited = time.time()
    kill_matching(str(config))
    out1, _ = procs[1].communicate()
    fired = float(re.search(r"KillAt: \w+ to rank 1 at ([\d.]+)", out1).group(1))
    error = next((line for line in out0.splitlines() if "pig-lightning fit: error:" in line), "")
    return {"seconds": exited - fired, "code": procs[0].returncode, "error": error[:160]}


def resume(tmp: Path, root: str, kill: str, *args: str) -> dict:
    """An uninterrupted PIG run vs one killed (``kill``) and resumed with --ckpt_path last."""
    whole_dir, cut_dir = tmp / "whole", tmp / "cut"
    whole_dir.mkdir()
    cut_dir.mkdir()
    whole = fit(pig_config(whole_dir, root), *args, callbacks=(f"RecordRun:path={whole_dir}/record",))
    config = pig_config(cut_dir, root)
    killed = fit(config, *args, callbacks=(kill,))
    resumed = fit(config, *args, "--ckpt_path", "last", callbacks=(f"RecordRun:path={cut_dir}/record",))
    a, b = read_records(whole_dir / "record"), read_records(cut_dir / "record")
    return {"codes": (whole.returncode, killed.returncode, resumed.returncode),
            "resumed_at": b[0]["step"], "final": (a[-1]["final_step"], b[-1]["final_step"]),
            "identical": a[-1]["weights"] == b[-1]["weights"],
            "same_batches": [r["videos"] for r in b[:-1]] == [r["videos"] for r in a[b[0]["step"]:-1]]}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = str(make_synthetic(tmp / "set", SMALL_SYNTHETIC, num_workers=1))
        runs = {}
        for name, signal_name, args in (("dead", "SIGKILL", ()),
                                        ("frozen", "SIGSTOP", ("--trainer.strategy=lightning.pytorch.strategies."
                                                               "DDPStrategy", "--trainer.strategy.timeout=0:00:15"))):
            (tmp / name).mkdir()
            runs[name] = node_fault(tmp / name, root, signal_name, *args)
            print(name, runs[name])
        for name, kill, args in (("epoch boundary", "KillAt:epoch=2", ()),
                                 ("mid-epoch", "KillAt:step=5", ("--resume_checkpoint.every_n_train_steps=2",))):
            (tmp / name.replace(" ", "_")).mkdir()
            runs[name] = resume(tmp / name.replace(" ", "_"), root, kill, *args)
            print(name, runs[name])
    dead, frozen = runs["dead"], runs["frozen"]
    lines = [
        "# Cluster faults, measured on one machine",
        "",
        f"Measured by `python benchmarks/cluster_faults.py` on {machine()}: two `torchrun` nodes (gloo, CPU) "
        "or single `pig-lightning fit` processes on the suite's tiny synthetic set; the same scenarios are "
        "tests in `tests/training/`.",
        "",
        "## A node fails",
        "",
        "| rank 1 at step 2 | node 0 exits after (s) | node 0's exit code | its message |",
        "|---|---:|---:|---|",
        f"| killed (SIGKILL) | {dead['seconds']:.1f} | {dead['code']} | `{dead['error']}` |",
        f"| frozen (SIGSTOP), `--trainer.strategy.timeout 0:00:15` | {frozen['seconds']:.1f} | {frozen['code']} | "
        f"`{frozen['error']}` |",
        "",
        "A dead peer closes its sockets: the others fail at their next collective. A hung one (alive, silent) "
        "keeps them waiting until the process group's timeout: 30 minutes by default, set it with "
        "`--trainer.strategy.timeout`. On GPUs (NCCL) the same timeout applies through PyTorch's watchdog.",
        "",
        "## Kill and resume (PIG tower: dropout, so the random-number states matter)",
        "",
        "| killed with SIGKILL | resumed at step | final step (uninterrupted / resumed) | same batches after resume "
        "| final weights identical |",
        "|---|---:|---|---|---|",
    ]
    for name in ("epoch boundary", "mid-epoch"):
        r = runs[name]
        lines.append(f"| {name} | {r['resumed_at']} | {r['final'][0]} / {r['final'][1]} | "
                     f"{'yes' if r['same_batches'] else 'no'} | {'yes (bit-identical)' if r['identical'] else 'no'} |")
    lines += [
        "",
        "Mid-epoch: `last.ckpt` written every 2 steps (`--resume_checkpoint.every_n_train_steps 2`), killed after "
        "step 5, so step 5 is trained again and nothing else is lost. Without the stateful training loader, "
        "Lightning restarted the interrupted epoch from its first batch (training it twice and skipping the "
        "epoch's last batch): measured before the fix, see `tests/training/test_resume.py`.",
        "",
        "Evaluation gather before/after (tensors instead of pickles): [eval_gather.md](eval_gather.md).",
    ]
    write_report("docs/cluster.md", lines)


if __name__ == "__main__":
    main()
