"""Shared fixtures: tiny CLIP configs, a toy tokenizer and a small synthetic set (all offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from pig_lightning.data.worlds.synthetic import make_synthetic, write_tokenizer_folder  # noqa: E402
from tests.helpers import BACKBONES, SMALL_SYNTHETIC, TINY_CLIP, train  # noqa: E402


@pytest.fixture()
def tiny_clip_config() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY_CLIP.items()}


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> str:
    return str(write_tokenizer_folder(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """A small synthetic set shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("synthetic") / "set"
    return str(make_synthetic(root, SMALL_SYNTHETIC, num_workers=1))


#: the tiny checkpoints the suites share: tower class path, backbone, training steps, backbone arguments
TINY_CHECKPOINTS = {
    "meanp": ("pig_lightning.models.MeanPoolingTower", BACKBONES["frame"], 2, {}),
    "pig": ("pig_lightning.models.PIGTower", BACKBONES["proxy"], 1, {"config": TINY_CLIP, "temporal_frames": 4}),
}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic_root):
    """``tiny_checkpoint("meanp" | "pig")``: a checkpoint of that tower trained by the real CLI on the
    small synthetic set, once per session whichever suites ask for it (read it, do not change it)."""
    made: dict[str, object] = {}

    def get(kind: str):
        if kind not in made:
            tower, backbone, steps, args = TINY_CHECKPOINTS[kind]
            made[kind] = train(tmp_path_factory.mktemp(f"tiny_{kind}"), synthetic_root, tower, backbone, steps, **args)
        return made[kind]

    return get
