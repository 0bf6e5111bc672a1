"""Builders shared by the tests: tiny CLIP configs, run configs, a fit that keeps only its
checkpoint, synthetic-set rows, fake tower outputs. Test modules import from here, not from each other."""

from __future__ import annotations

import inspect
import json
import os
import shutil
from pathlib import Path

import torch
import yaml

from pig_lightning.commands.train import run_cli
from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.data.source import AnnotationFiles
from pig_lightning.data.worlds.synthetic import SyntheticConfig
from pig_lightning.models.proxy_backbone import ProxyOutput

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


def pig_tower(backbone_init_args: dict, num_selected: int = 4) -> dict:
    """The ``model.tower`` config section of a tiny PIG on the video-proxy backbone."""
    return {"class_path": "pig_lightning.models.PIGTower",
            "init_args": {"backbone": {"class_path": "pig_lightning.models.VideoProxyBackbone",
                                       "init_args": backbone_init_args},
                          "num_selected": num_selected}}


def write_config(tmp_path: Path, synthetic_root: str, **trainer) -> Path:
    config = {
        "seed_everything": 1,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 4,
            "val_check_interval": 2,
            "check_val_every_n_epoch": None,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": str(tmp_path / "runs"), "name": "t", "default_hp_metric": False},
            },
            **trainer,
        },
        "model": {
            "lr": 1e-3,
            "tower": {
                "class_path": "pig_lightning.models.MeanPoolingTower",
                "init_args": {
                    "backbone": {"class_path": "pig_lightning.models.FrameCLIPBackbone",
                                 "init_args": {"config": TINY_CLIP}}
                },
            },
        },
        "data": {
            "source": {"class_path": "pig_lightning.data.SyntheticVideos", "init_args": {
                "root": synthetic_root,
                "synthetic_seed": SMALL_SYNTHETIC.seed,
                **{k: getattr(SMALL_SYNTHETIC, k) for k in ("num_train", "num_val", "num_test",
                                                            "captions_per_video", "frame_size", "frames_per_event")},
            }},
            "num_frames": 4,
            "image_size": 32,
            "max_text_length": 20,
            "batch_size": 8,
            "eval_batch_size": 5,
            "num_workers": 0,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


#: the arguments that belong to the annotation-files source, not to the data module
SOURCE_KEYS = frozenset(inspect.signature(AnnotationFiles).parameters)


def split_source(source: dict, data: dict, overrides: dict) -> tuple[dict, dict]:
    """``overrides`` sorted into the source's arguments and the data module's."""
    for key, value in overrides.items():
        (source if key in SOURCE_KEYS else data)[key] = value
    return source, data


def data_config(root: str, tokenizer_path: str, **overrides) -> dict:
    """The ``data`` config section over annotation files in ``root`` (train + val-as-test)."""
    source, data = split_source(
        {"video_root": root, "train_annotations": f"{root}/train.jsonl", "test_annotations": f"{root}/val.jsonl"},
        {"tokenizer": tokenizer_path, "num_frames": 4, "image_size": 32, "max_text_length": 20, "batch_size": 8,
         "eval_batch_size": 5, "num_workers": 0}, overrides)
    return {"source": {"class_path": "pig_lightning.data.AnnotationFiles", "init_args": source}, **data}


def run_config(folder: Path, root: str, tokenizer_path: str, clip_config: str | dict, trainer: dict | None = None,
               **data) -> Path:
    """A mean-pooling run over the annotation files in ``root`` (2 steps, no validation, logs in
    ``folder/runs/b``); ``trainer`` and ``data`` override the defaults."""
    config = {
        "seed_everything": 1,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_steps": 2, "limit_val_batches": 0, "num_sanity_val_steps": 0,
            "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1,
            "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                       "init_args": {"save_dir": str(folder / "runs"), "name": "b", "default_hp_metric": False}},
            **(trainer or {}),
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


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def synthetic_rows(root: str, split: str = "val") -> list[dict]:
    return [json.loads(line) for line in (Path(root) / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def fake_output(b=3, t=4, p=5, heads=2, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = 4 + t * p
    attention = torch.rand(b, heads, 4, n, generator=g).softmax(-1)
    return ProxyOutput(torch.randn(b, n, dim, generator=g), attention, t, p)


def make_dm(root: str, **overrides) -> VideoTextDataModule:
    """A data module over the annotation files and videos in ``root``; ``overrides`` go to the
    source or the data module, whichever takes them."""
    source, data = split_source(
        {"video_root": root, "train_annotations": f"{root}/train.jsonl", "val_annotations": f"{root}/val.jsonl",
         "test_annotations": f"{root}/test.jsonl"},
        {"tokenizer": f"{root}/tokenizer", "num_frames": 4, "image_size": 32, "max_text_length": 20, "batch_size": 8,
         "eval_batch_size": 4, "num_workers": 0, "seed": 3}, overrides)
    return VideoTextDataModule(AnnotationFiles(**source), **data)


BACKBONES = {"frame": "pig_lightning.models.FrameCLIPBackbone", "proxy": "pig_lightning.models.VideoProxyBackbone"}


def train(tmp: Path, synthetic_root: str, tower: str, backbone: str, steps: int = 2, **backbone_args) -> Path:
    """A checkpoint of ``tower`` trained for ``steps`` steps by the real CLI; its path."""
    config = write_config(tmp, synthetic_root, max_steps=steps, val_check_interval=None, limit_val_batches=0)
    data = yaml.safe_load(config.read_text())
    data["model"]["tower"] = {"class_path": tower, "init_args": {
        "backbone": {"class_path": backbone, "init_args": backbone_args or {"config": TINY_CLIP}}}}
    config.write_text(yaml.safe_dump(data))
    run_cli(["fit", "--config", str(config), "--checkpoint.monitor", "null"])
    return next((tmp / "runs").rglob("last.ckpt"))
