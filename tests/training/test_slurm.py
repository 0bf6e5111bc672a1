"""``scripts/slurm/fit.sbatch`` under a simulated one-task SLURM job: the real script, the real
``pig-lightning fit``, Lightning's ``SLURMEnvironment``; ``srun`` and ``scontrol`` are stand-ins
on ``PATH`` (``srun`` runs its command, ``scontrol`` records its arguments)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .callbacks import read_records
from .runs import CALLBACKS, ROOT, pig_config

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SCRIPT = ROOT / "scripts" / "slurm" / "fit.sbatch"


def slurm_job(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text('#!/bin/bash\nexec "$@"\n')
    (bin_dir / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/scontrol.log\n')
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "pig-lightning", "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost",
        "CONFIG": str(config), "RUN_DIR": str(tmp_path / "slurm_run"), "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),  # the test callbacks (tests.training.callbacks)
    }
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_requeue_signal_checkpoints_requeues_and_the_requeued_job_resumes(tmp_path, synthetic_root):
    config = pig_config(tmp_path, synthetic_root)
    # SIGUSR1 after step 4 (as --signal=SIGUSR1@90 sends it), then SLURM ends the job (SIGKILL) at step 5
    first = slurm_job(tmp_path, config, "--resume_checkpoint.every_n_train_steps=0",
                      f"--trainer.callbacks+={CALLBACKS}.KillAt", "--trainer.callbacks.step=4",
                      "--trainer.callbacks.signal_name=SIGUSR1",
                      f"--trainer.callbacks+={CALLBACKS}.KillAt", "--trainer.callbacks.step=5")
    assert first.returncode == -signal.SIGKILL or first.returncode == 128 + signal.SIGKILL, first.stderr[-3000:]
    hpc = tmp_path / "slurm_run" / "hpc_ckpt_1.ckpt"
    assert torch.load(hpc, weights_only=True)["global_step"] == 4
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    # the requeued job runs the same script: it resumes from the requeue checkpoint, not from the start
    second = slurm_job(tmp_path, config, f"--trainer.callbacks+={CALLBACKS}.RecordRun",
                       f"--trainer.callbacks.path={tmp_path}/record")
    assert second.returncode == 0, second.stderr[-3000:]
    records = read_records(tmp_path / "record")
    assert records[0]["step"] == 4 and records[0]["epoch"] == 1 and records[0]["batch_idx"] == 1
    assert records[-1]["final_step"] == 9
    assert "SLURM auto-requeueing enabled" in first.stderr or "auto-requeue" in first.stderr
