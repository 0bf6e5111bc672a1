"""litdata under two processes with two data-loader workers each, over chunks of uneven sizes:
every process runs the same number of training batches in every epoch.

A process that runs out of batches first leaves the others waiting in a gradient all-reduce it
never enters (NCCL hangs; litData #233, #328). litdata 0.2.76 plans equal counts on one node; with
two nodes it reshuffles within each node's chunks from the second epoch on and the node whose
chunks hold more items gets more batches. On a GPU cluster litdata counts ``world_size // GPUs per
node`` nodes; here its ``NNODES`` variable gives the two processes that layout.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

pytest.importorskip("litdata", reason="the optimized dataset needs the `stream` extra (litdata)")

from pig_lightning.data.datamodule import VideoTextDataModule  # noqa: E402
from pig_lightning.data.optimized.optimize import optimize_dataset  # noqa: E402
from pig_lightning.data.optimized.streaming import OptimizedDatasets  # noqa: E402

pytestmark = pytest.mark.slow  # launches processes

EPOCHS = 2


def _epochs(rank: int, location: str, tokenizer: str, port: int, queue) -> None:
    """The videos of each training batch this process gets, per node layout and epoch."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.multiprocessing.set_start_method("fork", force=True)  # the loader's workers, as under torchrun on Linux
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        batches = {}
        for nodes in (1, 2):
            os.environ["NNODES"] = str(nodes)  # read by litdata when the stream is made
            dm = VideoTextDataModule(OptimizedDatasets(train_dir=location), tokenizer=tokenizer, num_frames=2,
                                     image_size=32, batch_size=4, num_workers=2, seed=42)
            dm.setup("fit")
            loader = dm.train_dataloader()
            batches[nodes] = [[[int(i) for i in batch["video_index"]] for batch in loader] for _ in range(EPOCHS)]
        queue.put((rank, batches))
    except BaseException as exc:
        queue.put((rank, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_with_two_workers_run_the_same_number_of_batches_every_epoch(synthetic_root, tmp_path,
                                                                                   tokenizer_dir):
    import torch.multiprocessing as mp

    location = tmp_path / "train"
    optimize_dataset(f"{synthetic_root}/train.jsonl", synthetic_root, str(location), frames_per_video=2,
                     image_size=32, part_size=10, num_workers=1)
    chunks = [c["chunk_size"] for c in json.loads(Path(location, "index.json").read_text())["chunks"]]
    assert chunks == [10, 10, 4]  # 24 videos in chunks of uneven sizes
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_epochs, args=(rank, str(location), tokenizer_dir, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    try:
        got = dict(queue.get(timeout=240) for _ in procs)
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    for rank, p in enumerate(procs):
        assert isinstance(got[rank], dict) and p.exitcode == 0, f"rank {rank}: {got[rank]}"
    for nodes in (1, 2):
        for epoch in range(EPOCHS):
            counts = [len(got[rank][nodes][epoch]) for rank in (0, 1)]
            assert counts[0] == counts[1] == 3, f"{nodes} node(s), epoch {epoch + 1}: batches per process {counts}"
    for epoch in range(EPOCHS):  # one node: the epoch is every video once (24 = 2 processes x 3 batches of 4)
        videos = [v for rank in (0, 1) for batch in got[rank][1][epoch] for v in batch]
        assert sorted(videos) == list(range(24))
