"""The gathered (local-form) contrastive loss on 2 real processes equals 1 process on the whole batch."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from pig_lightning.losses import symmetric_infonce

BATCH, DIM = 8, 6


def make_problem():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(DIM, DIM)
    with torch.no_grad():
        model.weight.copy_(torch.randn(DIM, DIM, generator=g))
        model.bias.copy_(torch.randn(DIM, generator=g))
    texts, videos = torch.randn(BATCH, DIM, generator=g), torch.randn(BATCH, DIM, generator=g)
    return model, texts, videos


def loss_of(model, texts, videos, scale):
    return symmetric_infonce(F.normalize(model(texts), dim=-1), F.normalize(videos, dim=-1), scale)


def worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, texts, videos = make_problem()
    scale = torch.tensor(3.0, requires_grad=True)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    loss = loss_of(model, texts[rows], videos[rows], scale)
    loss.backward()
    grads = [model.weight.grad, model.bias.grad, scale.grad]
    for g in grads:  # what DDP does: average the gradients over ranks
        dist.all_reduce(g)
        g /= world
    dist.all_reduce(loss.detach())
    if rank == 0:
        torch.save({"loss": loss.detach() / world, "grads": grads}, out_file)
    dist.destroy_process_group()


@pytest.mark.slow  # processes
def test_two_process_gathered_loss_and_gradients_equal_single_process(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out.pt")), nprocs=2, join=True)
    got = torch.load(tmp_path / "out.pt")
    model, texts, videos = make_problem()
    scale = torch.tensor(3.0, requires_grad=True)
    loss = loss_of(model, texts, videos, scale)
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach())
    for ours, want in zip(got["grads"], [model.weight.grad, model.bias.grad, scale.grad]):
        torch.testing.assert_close(ours, want)
