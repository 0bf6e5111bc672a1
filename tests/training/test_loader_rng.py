"""Training's random draws (dropout, PIG's token selection) come from the seed and the training steps
only: how the data loaders are built (workers, persistent or not) must not move them."""

import pickle
from pathlib import Path

import pytest
import torch
import yaml

from pig_lightning.commands.train import run_cli
from pig_lightning.data.datasets import SeededDataLoader

from tests.helpers import BACKBONES, TINY_CLIP, write_config

pytestmark = pytest.mark.slow  # trains


def fit_state(tmp: Path, synthetic_root: str, num_workers: int) -> dict[str, torch.Tensor]:
    """The weights after 4 steps of a tiny PIG (fusion dropout 0.1), validated after steps 2 and 4."""
    tmp.mkdir()
    config = write_config(tmp, synthetic_root, max_steps=4, val_check_interval=2)
    data = yaml.safe_load(config.read_text())
    data["model"]["tower"] = {"class_path": "pig_lightning.models.PIGTower", "init_args": {
        "backbone": {"class_path": BACKBONES["proxy"], "init_args": {"config": TINY_CLIP, "temporal_frames": 4}}}}
    data["data"]["num_workers"] = num_workers
    data["test_after_fit"] = False
    config.write_text(yaml.safe_dump(data))
    run_cli(["fit", "--config", str(config), "--checkpoint.monitor", "null"])
    checkpoint = torch.load(next((tmp / "runs").rglob("last.ckpt")), map_location="cpu", weights_only=False)
    return checkpoint["state_dict"]


def test_training_draws_do_not_depend_on_loader_workers(tmp_path, synthetic_root):
    # Without their own generators every loader iterator takes a seed from the global RNG: with
    # num_workers 0 a new one per validation, with persistent workers one per run, so the dropout
    # masks of later steps differed.
    in_process = fit_state(tmp_path / "workers0", synthetic_root, num_workers=0)
    with_workers = fit_state(tmp_path / "workers2", synthetic_root, num_workers=2)
    assert in_process.keys() == with_workers.keys()
    for name, value in in_process.items():
        assert torch.equal(value, with_workers[name]), name


def test_a_loader_sent_to_another_process_carries_its_seed_not_its_generator():
    # ddp_spawn pickles the trainer with its loaders; a torch.Generator pickled by torch's
    # multiprocessing reductions could not be rebuilt there ("unable to resize file")
    loader = SeededDataLoader(list(range(6)), batch_size=2, seed=7)
    copy = pickle.loads(pickle.dumps(loader))
    assert loader.__getstate__()["generator"] is None
    assert copy.generator.initial_seed() == loader.generator.initial_seed() == 7
    # the workers' base seed of a first epoch comes from the loader's seed, in the copy as in the original
    assert iter(copy)._base_seed == iter(loader)._base_seed != iter(SeededDataLoader([0], seed=8))._base_seed
    state = torch.get_rng_state()
    list(SeededDataLoader(list(range(6)), batch_size=2, seed=7))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched


def test_lightning_can_rebuild_the_loader_with_a_distributed_sampler():
    # trainer.validate(dataloaders=...) under DDP, or predict on any number of devices, rebuilds a
    # loader made outside the data module's hooks from its attributes (generator and seed included)
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import DistributedSampler

    data = list(range(6))
    rebuilt = _update_dataloader(SeededDataLoader(data, batch_size=2, seed=7),
                                 DistributedSampler(data, num_replicas=2, rank=1, shuffle=False))
    assert isinstance(rebuilt, SeededDataLoader) and rebuilt.generator.initial_seed() == 7
    assert [b.tolist() for b in rebuilt] == [[1, 3], [5]]
