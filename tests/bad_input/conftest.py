"""Fixtures of the bad-input suite: one tiny checkpoint trained here (2 steps) whose CLIP config
file and tokenizer folder are deleted afterwards, a gallery built from it, and a helper that runs
a command the way the ``pig-lightning`` entry point does (exit code, stdout, stderr)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pig_lightning.cli import main
from pig_lightning.commands.train import run_cli
from pig_lightning.retrieval import build_index

from tests.helpers import TINY_CLIP
from tests.helpers import fit_and_keep_only_the_checkpoint, run_config


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture()
def run(capsys):
    """``run("index", "--ckpt_path", ...)`` -> :class:`Result`, through :func:`pig_lightning.cli.main`."""

    def _run(*args) -> Result:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tokenizers restored from checkpoints go to a temporary cache, not the user's."""
    old = os.environ.get("PIG_LIGHTNING_CACHE")
    os.environ["PIG_LIGHTNING_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("PIG_LIGHTNING_CACHE", None)
    else:
        os.environ["PIG_LIGHTNING_CACHE"] = old


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory, synthetic_root, tokenizer_dir) -> Path:
    """A checkpoint trained from a CLIP config *file* and a tokenizer *folder* in a project folder
    that is deleted afterwards: only the checkpoint file is left (moved to a folder of its own)."""
    project = tmp_path_factory.mktemp("project")
    (project / "clip.json").write_text(json.dumps(TINY_CLIP))
    shutil.copytree(tokenizer_dir, project / "tokenizer")
    config = run_config(project, synthetic_root, str(project / "tokenizer"), str(project / "clip.json"))
    return fit_and_keep_only_the_checkpoint(project, config, tmp_path_factory.mktemp("moved") / "model.ckpt")


@pytest.fixture(scope="session")
def gallery(tmp_path_factory, ckpt, synthetic_root) -> Path:
    out = tmp_path_factory.mktemp("gallery") / "val.safetensors"
    return build_index(ckpt, Path(synthetic_root) / "val.jsonl", out, num_workers=0, dtype="float32",
                       progress=False)


