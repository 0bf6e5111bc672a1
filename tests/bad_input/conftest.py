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

from ..conftest import TINY_CLIP


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


def data_config(root: str, tokenizer_path: str, **overrides) -> dict:
    return {
        "class_path": "pig_lightning.data.VideoTextDataModule",
        "init_args": {
            "video_root": root,
            "train_annotations": f"{root}/train.jsonl",
            "test_annotations": f"{root}/val.jsonl",
            "tokenizer": tokenizer_path,
            "num_frames": 4,
            "image_size": 32,
            "max_text_length": 20,
            "batch_size": 8,
            "eval_batch_size": 5,
            "num_workers": 0,
            **overrides,
        },
    }


def run_config(folder: Path, root: str, tokenizer_path: str, clip_config: str | dict, **data) -> Path:
    config = {
        "seed_everything": 1,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_steps": 2, "limit_val_batches": 0, "num_sanity_val_steps": 0,
            "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1,
            "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                       "init_args": {"save_dir": str(folder / "runs"), "name": "b", "default_hp_metric": False}},
        },
        "checkpoint": {"monitor": None},
        "model": {"lr": 1e-3, "tower": {
            "class_path": "pig_lightning.models.MeanPoolingTower",
            "init_args": {"backbone": {"class_path": "pig_lightning.models.FrameCLIPBackbone",
                                       "init_args": {"config": clip_config}}}}},
        "data": data_config(root, tokenizer_path, **data),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


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


def fit_and_keep_only_the_checkpoint(project: Path, config: Path, target: Path) -> Path:
    """Train ``config`` from inside ``project``, move its last.ckpt to ``target``, delete ``project``."""
    cwd = os.getcwd()
    os.chdir(project)
    try:
        run_cli(["fit", "--config", str(config)])
    finally:
        os.chdir(cwd)
    shutil.move(next((project / "runs").rglob("last.ckpt")), target)
    shutil.rmtree(project)
    return target


@pytest.fixture(scope="session")
def gallery(tmp_path_factory, ckpt, synthetic_root) -> Path:
    out = tmp_path_factory.mktemp("gallery") / "val.safetensors"
    return build_index(ckpt, Path(synthetic_root) / "val.jsonl", out, num_workers=0, dtype="float32",
                       progress=False)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def synthetic_rows(root: str, split: str = "val") -> list[dict]:
    return [json.loads(line) for line in (Path(root) / f"{split}.jsonl").read_text().splitlines() if line.strip()]
