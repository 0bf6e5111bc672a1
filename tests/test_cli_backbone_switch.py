"""Switching a config's randomly initialised CLIP (`config`) to pretrained weights on the command line."""

import re
from pathlib import Path

import pytest
import torch
import yaml

from pig_lightning.commands.train import run_cli
from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP
from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes

BACKBONE = "--model.tower.init_args.backbone.init_args."


@pytest.fixture()
def config_and_folder(tmp_path, synthetic_root):
    """A config whose backbone sets `config` (a JSON file, like conf/demo_pig.yaml) and a saved CLIP."""
    torch.manual_seed(3)
    model = load_clip_model(config=TINY_CLIP, tokenizer=load_tokenizer(str(Path(synthetic_root) / "tokenizer")))
    model.save_pretrained(tmp_path / "clip")
    (tmp_path / "tiny.json").write_text(yaml.safe_dump(TINY_CLIP))
    path = write_config(tmp_path, synthetic_root, max_steps=1, val_check_interval=None, limit_val_batches=0)
    config = yaml.safe_load(path.read_text())
    config["model"]["tower"] = {"class_path": "pig_lightning.models.PIGTower", "init_args": {"backbone": {
        "class_path": "pig_lightning.models.VideoProxyBackbone",
        "init_args": {"config": str(tmp_path / "tiny.json"), "logit_scale_init": None}}}}
    path.write_text(yaml.safe_dump(config))
    return path, model, str(tmp_path / "clip")


def test_config_null_and_pretrained_on_the_command_line_load_the_pretrained_weights(config_and_folder, tmp_path):
    path, saved, folder = config_and_folder
    cli = run_cli(["fit", "--config", str(path), "--checkpoint.monitor", "null", "--model.lr", "0",
                   f"{BACKBONE}config", "null", f"{BACKBONE}pretrained", folder])
    backbone = cli.model.tower.backbone
    assert backbone.model_source == folder
    for (name, ours), theirs in zip(backbone.clip.state_dict().items(), saved.state_dict().values()):
        assert torch.equal(ours, theirs), name  # lr 0: still the saved weights after the step
    # the checkpoint of that run rebuilds the module from its saved hyper-parameters
    run_dir = Path(cli.trainer.log_dir)
    again = RetrievalModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert again.tower.backbone.model_source == folder


def test_pretrained_alone_over_a_config_that_sets_config_names_the_two_flags(config_and_folder):
    path, _, folder = config_and_folder
    with pytest.raises(ValueError, match=re.escape(f"{BACKBONE}config null {BACKBONE}pretrained {folder}")):
        run_cli(["fit", "--config", str(path), "--checkpoint.monitor", "null", f"{BACKBONE}pretrained", folder])
