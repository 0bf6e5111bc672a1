"""Shared fixtures: tiny CLIP configs, a toy tokenizer and a small synthetic set (all offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from pig_lightning.data.synthetic import SyntheticConfig, make_synthetic, write_tokenizer_folder  # noqa: E402

TINY_CLIP = {
    "projection_dim": 32,
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 32,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
}

SMALL_SYNTHETIC = SyntheticConfig(num_train=24, num_val=10, num_test=10, captions_per_video=3,
                                  frame_size=32, frames_per_event=4, seed=7)


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


def pig_tower(backbone_init_args: dict, num_selected: int = 4) -> dict:
    """The ``model.tower`` config section of a tiny PIG on the video-proxy backbone."""
    return {"class_path": "pig_lightning.models.PIGTower",
            "init_args": {"backbone": {"class_path": "pig_lightning.models.VideoProxyBackbone",
                                       "init_args": backbone_init_args},
                          "num_selected": num_selected}}
