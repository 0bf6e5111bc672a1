"""Shared fixtures: tiny CLIP configs, a toy tokenizer and a small synthetic set (all offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from pig_lightning.data.worlds.synthetic import make_synthetic, write_tokenizer_folder  # noqa: E402
from tests.helpers import SMALL_SYNTHETIC, TINY_CLIP  # noqa: E402


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


