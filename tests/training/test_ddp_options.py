"""``pig_lightning.training.DDP``: gradients all-reduced in 16 bits when asked (2 gloo processes:
fp16, the hook PyTorch runs over gloo; bf16 is NCCL-only), as bucket views, and the recipes'
strategy section parses to it."""

import json

import lightning as L
import pytest
import torch

from pig_lightning.training import DDP


class Recorder(L.LightningModule):
    """A linear model whose gradients, after DDP's all-reduce, are written per rank to a file."""

    def __init__(self, out: str):
        super().__init__()
        torch.manual_seed(0)  # the same weights in both runs
        self.layer = torch.nn.Linear(64, 32)
        self.out = out

    def training_step(self, batch, batch_idx):
        # values whose float32 mean is not a bf16 number
        return (self.layer(batch[0]) * (1.0 + 1e-3 * self.global_rank)).pow(2).mean()

    def on_before_optimizer_step(self, optimizer):
        grad = self.layer.weight.grad
        views = getattr(self.trainer.strategy.model, "gradient_as_bucket_view", None)
        with open(f"{self.out}/rank{self.global_rank}.json", "w") as f:
            json.dump({"exact_in_fp16": bool(torch.equal(grad.to(torch.float16).float(), grad)),
                       "bucket_view": views, "grad": grad.flatten()[:8].tolist()}, f)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 64, generator=g)),
                                           batch_size=4)


def reduced_gradients(tmp_path, comm_hook: str) -> list[dict]:
    out = tmp_path / comm_hook
    out.mkdir()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=DDP(comm_hook=comm_hook, start_method="spawn"),
                        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(Recorder(str(out)))
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow  # two spawned processes
def test_fp16_compression_rounds_the_averaged_gradient_to_16_bits_on_every_rank(tmp_path):
    ranks = reduced_gradients(tmp_path, "fp16")
    assert ranks[0]["grad"] == ranks[1]["grad"]
    assert all(r["exact_in_fp16"] and r["bucket_view"] for r in ranks)
    # without the hook the same gradient is not a 16-bit number: the property above is the hook's
    model = Recorder(str(tmp_path))
    model.training_step(next(iter(model.train_dataloader())), 0).backward()
    grad = model.layer.weight.grad
    assert not torch.equal(grad.to(torch.float16).float(), grad)


def test_unknown_hooks_and_raw_callables_are_refused():
    with pytest.raises(ValueError, match="comm_hook must be one of none, bf16, fp16, got 'int8'"):
        DDP(comm_hook="int8")
    with pytest.raises(ValueError, match="give comm_hook"):
        DDP(ddp_comm_hook=print)


def test_bf16_compression_off_cuda_is_refused_with_the_alternative():
    strategy = DDP(comm_hook="bf16")
    strategy.parallel_devices = [torch.device("cpu")]
    with pytest.raises(ValueError, match="comm_hook bf16 needs CUDA GPUs .* this run is on cpu; use fp16 or none"):
        strategy._register_ddp_hooks()


def test_the_strategy_section_of_a_config_builds_it():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--strategy", type=DDP)
    cfg = parser.parse_args(["--strategy", '{"class_path": "pig_lightning.training.DDP", "init_args": '
                                           '{"comm_hook": "bf16", "timeout": "0:10:00"}}'])
    strategy = parser.instantiate_classes(cfg).strategy
    assert strategy.comm_hook == "bf16" and strategy._ddp_kwargs["gradient_as_bucket_view"] is True
    assert strategy._timeout.total_seconds() == 600
