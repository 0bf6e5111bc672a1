"""``pig-lightning fit|validate|test|predict``: LightningCLI with the project's callbacks, linked
arguments and checkpoint checks (the training commands)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Literal

import torch
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pig_lightning.commands import COMMANDS
from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.training.skips import DecodeSkipMonitor
from pig_lightning.module import RetrievalModule
from pig_lightning.training import BestCheckpoint, LatestCheckpoint, QualitativeImages
from pig_lightning.training.resume import find_resume, run_root, tower_mismatch
from pig_lightning.weights.checkpoint_file import KEY as CHECKPOINT_KEY
from pig_lightning.weights.checkpoint_file import read_checkpoint

DESCRIPTION = (
    "Text-to-video retrieval (PIG hybrid tower and baselines) with PyTorch Lightning. Training/evaluation "
    f"subcommands below; also `pig-lightning {'|'.join(COMMANDS)} --help`. Errors end with one line and exit "
    "code 2; add --debug (or set PIG_LIGHTNING_DEBUG=1) for the traceback."
)
# Lightning's own values of ckpt_path, not files
SPECIAL_CKPT_PATHS = ("best", "last", "hpc", "registry")

# Values the model and the data both need: set once on the data module, passed on to the model.
SHARED_WITH_MODEL = {
    "num_frames": "model.tower.init_args.num_frames",
    "image_size": "model.tower.init_args.backbone.init_args.image_size",
    "max_text_length": "model.tower.init_args.backbone.init_args.max_text_length",
    "tokenizer_source": "model.tower.init_args.backbone.init_args.tokenizer",
}


class PigLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in SHARED_WITH_MODEL.items():
            parser.link_arguments(f"data.{source}", target, apply_on="instantiate")
        # two checkpoints, two jobs: best-*.ckpt to evaluate and ship, last.ckpt to resume from
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/t2v/R@1",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-epoch{epoch:03d}-step{step:06d}",
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.save_last": False,  # Lightning's copies only improvements: LatestCheckpoint's job
                # best-*.ckpt is evaluated and shipped, never resumed from (last.ckpt is): weights, hparams
                # and this package's entry, without the optimiser state (a third of a full AdamW checkpoint)
                "checkpoint.save_weights_only": True,
            }
        )
        parser.add_lightning_class_args(LatestCheckpoint, "resume_checkpoint")
        parser.add_lightning_class_args(DecodeSkipMonitor, "decode_skips")
        # a few validation videos and queries drawn as TensorBoard images; --qualitative.enabled false: off
        parser.add_lightning_class_args(QualitativeImages, "qualitative")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_argument(
            "--float32_matmul_precision",
            type=Literal["highest", "high", "medium"],
            default="highest",
            help="torch.set_float32_matmul_precision for the run: 'high' lets float32 matrix products use "
                 "TF32 tensor cores on a GPU (the recipes' choice; under bf16-mixed most products are bf16 "
                 "anyway). Evaluation scores always use 'highest' (pig_lightning.evaluation.distributed)",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after `fit`, run `test` on the best checkpoint (by the checkpoint monitor)",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Also open ``--ckpt_path`` now: a file of the wrong kind is named before anything runs
        (Lightning reads its hyper-parameters next, and the Trainer would create a run folder)."""
        super().parse_arguments(parser, args)
        self._ckpt_entry = None
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path == "last":
            ckpt_path = self._resolve_last(subcommand)
        if ckpt_path and str(ckpt_path) not in SPECIAL_CKPT_PATHS and not str(ckpt_path).startswith("registry:"):
            checkpoint = read_checkpoint(ckpt_path)
            self._ckpt_entry = checkpoint.get(CHECKPOINT_KEY)
            mismatch = tower_mismatch(checkpoint, self.config[subcommand].get("model"))
            if mismatch:
                raise ValueError(f"--ckpt_path {ckpt_path} does not fit this config: {mismatch}. Resume or test "
                                 "with the config it was trained with (its config.yaml sits in its run folder)")
        if subcommand == "fit":
            _check_writable(self.config["fit"])

    def _resolve_last(self, subcommand: str) -> str | None:
        """``--ckpt_path last``: the newest complete last.ckpt of this run name (any version) or
        SLURM requeue checkpoint; the run continues in that version's folder."""
        config = self.config[subcommand]
        root = run_root(config.trainer)
        hpc_dir = Path(config.trainer.get("default_root_dir") or os.getcwd())
        found = find_resume(root, hpc_dir)
        if found.path is None:
            if subcommand != "fit":
                raise FileNotFoundError(f"--ckpt_path last: no complete last.ckpt under {root}/*/checkpoints")
            logging.getLogger(__name__).warning("--ckpt_path last: no checkpoint under %s yet, training from the "
                                                "start", root)
            config.ckpt_path = None
            return None
        logging.getLogger(__name__).info("--ckpt_path last: resuming from %s", found.path)
        config.ckpt_path = str(found.path)
        logger = config.trainer.get("logger")
        if found.version and logger not in (None, True, False) and logger.get("init_args") is not None \
                and logger.init_args.get("version") is None:
            logger.init_args.version = found.version  # same folder: the TensorBoard curves continue
        return str(found.path)

    def before_instantiate_classes(self) -> None:
        """The run's float32 matmul precision. With ``--ckpt_path``, Lightning takes the model's
        settings from the checkpoint: its CLIP config comes from the checkpoint itself (not the file
        it was once read from), and ``init_checkpoint`` is not loaded again (the weights are the
        checkpoint's)."""
        if self.subcommand:
            torch.set_float32_matmul_precision(self.config[self.subcommand].get("float32_matmul_precision") or "highest")
        if not getattr(self, "_ckpt_entry", None) or not self.subcommand:
            return
        model = self.config[self.subcommand].get("model")
        if model is None:
            return
        model.init_checkpoint = None
        backbone = model.get("tower.init_args.backbone.init_args")
        if backbone is not None and "config" in backbone and "pretrained" in backbone:
            backbone.config = self._ckpt_entry["clip_config"]
            backbone.pretrained = None

    def after_fit(self) -> None:
        if not self.config["fit"].get("test_after_fit"):
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        if best:
            logging.getLogger(__name__).info("testing the best checkpoint %s", best)
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


def _check_writable(config) -> None:
    """The run folder (logs, checkpoints) must be writable before any training starts."""
    places = [run_root(config.trainer)]
    for key in ("checkpoint", "resume_checkpoint"):
        dirpath = (config.get(key) or {}).get("dirpath") if config.get(key) is not None else None
        if dirpath:
            places.append(Path(dirpath))
    for place in places:
        existing = place
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write the run folder {place} ({existing} is not a writable folder): "
                                  "logs and checkpoints would be lost; set trainer.logger.init_args.save_dir "
                                  "(or checkpoint.dirpath) to a writable place")


def trainer_defaults() -> dict:
    return {
        "logger": {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": "default", "default_hp_metric": False},
        },
    }


def run_cli(args: list[str] | None = None) -> PigLightningCLI:
    return PigLightningCLI(
        RetrievalModule,
        VideoTextDataModule,
        auto_configure_optimizers=False,
        seed_everything_default=42,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": DESCRIPTION},
        args=args,
    )


def check_data_sections(argv: list[str]) -> None:
    """Refuse, with the way to update it, a config written for the four data-module classes that
    became one data module with a ``source`` (``data: {class_path, init_args}``)."""
    paths = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("--config", "-c")]
    paths += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    for path in paths:
        try:
            data = (yaml.safe_load(Path(path).read_text()) or {}).get("data")
        except (OSError, yaml.YAMLError, AttributeError):
            continue  # LightningCLI reports unreadable files itself
        if isinstance(data, dict) and ("class_path" in data or "init_args" in data):
            raise ValueError(
                f"{path}: 'data' has class_path/init_args: the data modules became one, with the data's origin "
                "under data.source (docs/architecture.md). Move video_root, *_annotations, format, outside_root, "
                "on_decode_error (or a generated set's root, num_* ...) to data.source.init_args with class_path "
                "pig_lightning.data.AnnotationFiles (SyntheticVideos, SceneVideos, SceneImages, OptimizedDatasets), "
                "and the other keys (num_frames, batch_size, ...) one level up, directly under data")


def main(argv: list[str]) -> None:
    """Hand the command line to LightningCLI one way only (as ``sys.argv``): given both, it warns."""
    check_data_sections(argv)
    saved = sys.argv
    sys.argv = [saved[0] if saved else "pig-lightning", *argv]
    try:
        run_cli()
    finally:
        sys.argv = saved
