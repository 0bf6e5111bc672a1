"""Launching ``pig-lightning fit`` as two torchrun "nodes" on this machine (gloo, CPU)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .runs import CALLBACKS, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_nodes(config: Path, *args: str, nodes: int = 2, port: int | None = None,
                   callbacks: tuple[str, ...] = (), env: dict | None = None) -> list[subprocess.Popen]:
    """One ``torchrun --nnodes N --nproc_per_node 1 --node_rank i`` process per node, started together."""
    port = port or free_port()
    extra = []
    for spec in callbacks:
        name, _, kwargs = spec.partition(":")
        extra.append(f"--trainer.callbacks+={CALLBACKS}.{name}")
        extra += [f"--trainer.callbacks.{pair}" for pair in filter(None, kwargs.split(","))]
    procs = []
    for rank in range(nodes):
        command = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}", "--nproc_per_node=1",
                   f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}",
                   "-m", "pig_lightning", "fit", "--config", str(config), f"--trainer.num_nodes={nodes}",
                   "--trainer.devices=1", "--trainer.accelerator=cpu", "--trainer.strategy=ddp", *args, *extra]
        procs.append(subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True))
    return procs


def kill_matching(text: str) -> None:
    """SIGKILL every process whose command line contains ``text`` (workers torchrun started in
    their own process groups, e.g. one stopped with SIGSTOP)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(proc.name) != os.getpid():
            try:
                os.kill(int(proc.name), 9)
            except OSError:
                pass


def wait(procs, timeout: float) -> list[tuple[int, str, float]]:
    """(return code, output, seconds since start) of each process; kills what is left at ``timeout``."""
    start, results = time.monotonic(), []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - start)))
        except Exception:  # noqa: BLE001 - a hang: kill it and report
            os.killpg(proc.pid, signal.SIGKILL)
            kill_matching(proc.args[proc.args.index("--config") + 1])  # workers run in their own groups
            out, _ = proc.communicate()
        results.append((proc.returncode, out, time.monotonic() - start))
    return results
