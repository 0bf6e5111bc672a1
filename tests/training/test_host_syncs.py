"""The training step (forward, loss, backward) reads nothing back to the host: on a GPU each read
(``.item()``, ``.cpu()``, ``bool(tensor)``, ...) or host-made tensor (``torch.tensor(..., device=)``)
waits for the device queue to drain. Counted here on the CPU by wrapping those calls; the GPU check
lists the syncs CUDA itself reports (``benchmarks/gpu_check.sh``)."""

from __future__ import annotations

import pytest
import torch

from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower, PIGTower, VideoCLSTower, VideoProxyBackbone
from pig_lightning.models import SeqTransformerTower, XPoolTower
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP

READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__")
FRAMES = 4


def towers(tokenizer_dir: str) -> dict:
    def frame():
        return FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=8)

    def proxy():
        return VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=8)

    return {
        "meanp": lambda: MeanPoolingTower(frame(), num_frames=FRAMES),
        "seqtransf": lambda: SeqTransformerTower(frame(), num_frames=FRAMES),
        "xpool": lambda: XPoolTower(frame(), num_frames=FRAMES),
        "clipvip": lambda: VideoCLSTower(proxy(), num_frames=FRAMES),
        "pig": lambda: PIGTower(proxy(), num_frames=FRAMES, num_selected=4),
    }


@pytest.fixture()
def host_reads(monkeypatch):
    """The host reads made while it is active: a list of call names."""
    seen: list[str] = []

    def counting(name, real):
        def wrapper(*args, **kwargs):
            seen.append(name)
            return real(*args, **kwargs)
        return wrapper

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(f"Tensor.{name}", getattr(torch.Tensor, name)))
    real_tensor = torch.tensor

    def tensor(*args, **kwargs):
        if kwargs.get("device") is not None:
            seen.append("torch.tensor(..., device=)")
        return real_tensor(*args, **kwargs)

    monkeypatch.setattr(torch, "tensor", tensor)
    return seen


@pytest.mark.parametrize("name", ["meanp", "seqtransf", "xpool", "clipvip", "pig"])
def test_the_training_step_and_its_backward_read_nothing_back(name, tokenizer_dir, request):
    torch.manual_seed(0)
    module = RetrievalModule(towers(tokenizer_dir)[name]())
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (4, 8), generator=g)
    batch = {"frames": torch.randint(0, 256, (4, FRAMES, 32, 32, 3), dtype=torch.uint8, generator=g),
             "input_ids": ids, "attention_mask": torch.ones_like(ids), "video_index": torch.arange(4)}
    batch = module.on_after_batch_transfer(batch, 0)  # the model's input, as the Trainer hands it over
    module.training_step(batch, 0)  # a first step: what is made once (per device) may be made here
    reads = request.getfixturevalue("host_reads")
    loss = module.training_step(batch, 1)
    loss.backward()
    assert reads == [], f"{name}: {reads}"
    # the check that a step is finite reads one flag, after the backward pass, not in the step
    module._step_parts.clear()


def test_the_default_finite_check_reads_the_flag_one_step_later(tokenizer_dir, request):
    """``on_nonfinite_loss: raise``: the step's all-reduced flag is queued, not read, before the
    update; the next step reads the previous one (long finished on a GPU). ``skip`` reads at once."""
    torch.manual_seed(0)
    module = RetrievalModule(towers(tokenizer_dir)["meanp"]())
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (4, 8), generator=g)
    batch = module.on_after_batch_transfer(
        {"frames": torch.randint(0, 256, (4, FRAMES, 32, 32, 3), dtype=torch.uint8, generator=g), "input_ids": ids,
         "attention_mask": torch.ones_like(ids), "video_index": torch.arange(4)}, 0)
    module.log = lambda *args, **kwargs: None  # no Trainer here to log to
    module.training_step(batch, 0).backward()
    reads = request.getfixturevalue("host_reads")
    module.on_before_optimizer_step(None)
    assert reads == [] and module._pending_check is not None and module._pending_check.step == 0
    module.training_step(batch, 1).backward()
    module.on_before_optimizer_step(None)
    assert reads == ["Tensor.item"]  # the previous step's flag, on the host
    module.hparams.on_nonfinite_loss = "skip"
    module._pending_check = None
    reads.clear()
    module.training_step(batch, 2).backward()
    module.on_before_optimizer_step(None)
    assert reads == ["Tensor.item"] and module._pending_check is None
