"""uint8 frames travel to the device; ONE function (``clip_normalise``) turns them into model input.

``reference_float_path`` is the float path every loader used before (per clip, in the worker):
the on-device conversion must give the same tensors."""

import numpy as np
import pytest
import torch

from pig_lightning.data.video.transforms import CLIP_MEAN, CLIP_STD, clip_denormalise, clip_normalise, to_clip_tensor


def reference_float_path(frames: np.ndarray) -> torch.Tensor:
    """The former ``to_clip_tensor``: uint8 [T, H, W, 3] -> CLIP-normalised float32 [T, 3, H, W]."""
    x = torch.as_tensor(frames).permute(0, 3, 1, 2).float().div_(255.0)
    return x.sub_(torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)).div_(torch.tensor(CLIP_STD).view(1, 3, 1, 1))


def clips(batch=3, frames=4, size=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8)


def test_batched_conversion_equals_the_float_path_bit_for_bit():
    raw = clips()
    raw[0, 0, 0, 0] = (0, 255, 128)  # both ends of the range
    want = torch.stack([reference_float_path(c) for c in raw])
    got = clip_normalise(torch.from_numpy(raw))
    assert got.dtype == torch.float32 and got.shape == (3, 4, 3, 16, 16) and got.is_contiguous()
    assert torch.equal(got, want)
    assert torch.equal(to_clip_tensor(raw[1]), want[1])  # the per-clip helper is the same function


def test_denormalise_gives_back_the_decoded_pixels():
    raw = torch.from_numpy(clips())
    raw[0, 0, 0, 0] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    assert torch.equal(clip_denormalise(clip_normalise(raw)), raw)


def test_the_constants_are_made_once_per_device_not_per_batch(monkeypatch):
    """Building mean/std per batch copies them from the host at every step (blocking on a GPU)."""
    from pig_lightning.data.video import transforms

    transforms._constants.cache_clear()
    made = []
    real = torch.tensor
    monkeypatch.setattr(transforms.torch, "tensor", lambda *a, **k: made.append(k.get("device")) or real(*a, **k))
    first = clip_normalise(torch.from_numpy(clips(seed=1)))
    for seed in (2, 3, 4):
        clip_denormalise(clip_normalise(torch.from_numpy(clips(seed=seed))))
    assert len(made) == 2  # mean and std, once
    assert torch.equal(first, torch.stack([reference_float_path(c) for c in clips(seed=1)]))


def test_conversion_refuses_anything_but_uint8_channels_last():
    with pytest.raises(ValueError, match="uint8"):
        clip_normalise(torch.zeros(2, 4, 16, 16, 3))
    with pytest.raises(ValueError, match="uint8"):
        clip_normalise(torch.zeros(2, 4, 3, 16, 16, dtype=torch.uint8))


def test_loader_batches_are_uint8_and_the_module_converts_them_after_transfer(synthetic_root, tiny_clip_config):
    from pig_lightning.data.sources.paths import resolve_video_path
    from pig_lightning.data.video.sampling import uniform_indices
    from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower
    from pig_lightning.module import RetrievalModule

    from tests.helpers import make_dm

    dm = make_dm(synthetic_root)
    dm.setup("test")
    loader = dm.test_dataloader()
    assert loader.pin_memory is False  # no trainer, no GPU
    from types import SimpleNamespace

    from lightning.pytorch.accelerators import CUDAAccelerator

    dm.trainer = SimpleNamespace(accelerator=CUDAAccelerator())  # what a Trainer on CUDA holds
    assert dm.test_dataloader().pin_memory is True
    dm.trainer = None
    batch = next(iter(loader))
    assert batch["frames"].dtype == torch.uint8 and batch["frames"].shape == (4, 4, 32, 32, 3)
    test = dm._datasets["test"]
    want = torch.stack([reference_float_path(test.reader.read(resolve_video_path(test.video_root, r),
                                                              lambda n: uniform_indices(n, 4))[0])
                        for r in test.records[:4]])
    backbone = FrameCLIPBackbone(config=tiny_clip_config, tokenizer=f"{synthetic_root}/tokenizer", image_size=32,
                                 max_text_length=20)
    tower = MeanPoolingTower(backbone, num_frames=4)
    module = RetrievalModule(tower)
    moved = module.on_after_batch_transfer(batch, 0)
    assert torch.equal(moved["frames"], want)
    with torch.no_grad():  # the Python API takes either
        torch.testing.assert_close(module.encode_videos(batch["frames"]), module.encode_videos(want), rtol=0, atol=0)
