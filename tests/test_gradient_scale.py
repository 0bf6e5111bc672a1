"""``model.gradient_scale`` on 2 real processes: the global-batch gradient, or 1/world of it as
under the release's Horovod training (METHOD.md §7, docs/reproducing.md)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP

BATCH, FRAMES = 4, 2


def make_module(tokenizer_dir: str, gradient_scale: str) -> RetrievalModule:
    torch.manual_seed(0)
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=8)
    module = RetrievalModule(MeanPoolingTower(backbone, num_frames=FRAMES), gradient_scale=gradient_scale)
    return module.eval()  # no dropout: the processes and the reference compute the same thing


def make_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (BATCH, 8), generator=g)
    return {"frames": torch.randn(BATCH, FRAMES, 3, 32, 32, generator=g), "input_ids": ids,
            "attention_mask": torch.ones_like(ids)}


def gradients(module: RetrievalModule, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    module.zero_grad()
    module.training_step(batch, 0).backward()
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def worker(rank: int, world: int, init_file: str, out_file: str, tokenizer_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    out = {}
    for gradient_scale in ("global_batch", "horovod"):
        grads = gradients(make_module(tokenizer_dir, gradient_scale), {k: v[rows] for k, v in make_batch().items()})
        for g in grads.values():  # what DDP does with them: the average over ranks
            dist.all_reduce(g)
            g /= world
        out[gradient_scale] = grads
    if rank == 0:
        torch.save(out, out_file)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_gradients(tmp_path_factory, tokenizer_dir):
    tmp = tmp_path_factory.mktemp("gradient_scale")
    mp.spawn(worker, args=(2, str(tmp / "init"), str(tmp / "out.pt"), tokenizer_dir), nprocs=2, join=True)
    return torch.load(tmp / "out.pt")


@pytest.mark.slow  # processes
@pytest.mark.parametrize("gradient_scale, factor", [("global_batch", 1.0), ("horovod", 0.5)])
def test_gradient_scale_on_two_processes(two_process_gradients, tokenizer_dir, gradient_scale, factor):
    got = two_process_gradients[gradient_scale]
    want = gradients(make_module(tokenizer_dir, "global_batch"), make_batch())  # 1 process, the whole batch
    assert got.keys() == want.keys() and len(want) > 10
    for name in want:  # float32 sums in another order (key biases have zero gradient: noise only)
        scale = want[name].abs().max().item()
        torch.testing.assert_close(got[name], factor * want[name], atol=1e-6 * scale + 1e-6, rtol=1e-4, msg=name)


def test_one_process_is_the_same_either_way(tokenizer_dir):
    a = gradients(make_module(tokenizer_dir, "global_batch"), make_batch())
    b = gradients(make_module(tokenizer_dir, "horovod"), make_batch())
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    with pytest.raises(ValueError, match="gradient_scale must be one of"):
        make_module(tokenizer_dir, "mean")
