"""gather_rows on 2 real processes: tensors of different lengths per rank, in rank order."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pig_lightning.evaluation.distributed import gather_rows


def worker(rank: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    rows = 3 if rank == 0 else 5  # unequal shares
    local = {"index": torch.arange(rows) + 10 * rank, "emb": torch.full((rows, 4), float(rank)).half()}
    gathered, counts = gather_rows(local)
    if rank == 1:
        torch.save({"gathered": gathered, "counts": counts}, out_file)
    dist.destroy_process_group()


@pytest.mark.slow  # processes
def test_gather_rows_keeps_rank_order_lengths_and_dtypes(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path / "out.pt")), nprocs=2, join=True)
    out = torch.load(tmp_path / "out.pt")
    assert out["counts"] == [3, 5]
    assert out["gathered"]["index"].tolist() == [0, 1, 2, 10, 11, 12, 13, 14]
    emb = out["gathered"]["emb"]
    assert emb.dtype == torch.float16 and emb.shape == (8, 4)
    assert emb[:3].eq(0).all() and emb[3:].eq(1).all()


def test_one_process_returns_its_rows():
    local = {"a": torch.arange(4)}
    gathered, counts = gather_rows(local)
    assert torch.equal(gathered["a"], local["a"]) and counts == [4]
