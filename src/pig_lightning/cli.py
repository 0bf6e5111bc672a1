"""The ``pig-lightning`` command: LightningCLI (fit/validate/test/predict) plus data tools.

    pig-lightning fit --config conf/demo.yaml
    pig-lightning test --config conf/demo.yaml --ckpt_path runs/demo/version_0/checkpoints/last.ckpt
    pig-lightning make-synthetic data/synthetic
    pig-lightning convert --format msrvtt_csv --input MSRVTT_train.9k.csv --captions_file MSRVTT_data.json --output train9k.jsonl
    pig-lightning preprocess videos/ videos_3fps/ --fps 3 --short_side 224
    pig-lightning data-check --annotations train9k.jsonl --video_root videos_3fps/
    pig-lightning index --ckpt_path last.ckpt --videos data/synthetic/test.jsonl --output gallery.safetensors
    pig-lightning search --index gallery.safetensors --ckpt_path last.ckpt --query "a red circle moves left"
    pig-lightning export --ckpt_path last.ckpt --output clip-finetuned/
    pig-lightning compare runs/demo_pig/version_0 runs/demo_meanp/version_0
"""

from __future__ import annotations

import logging
import sys

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.data.skips import DecodeSkipMonitor
from pig_lightning.module import RetrievalModule

DESCRIPTION = (
    "Text-to-video retrieval (PIG hybrid tower and baselines) with PyTorch Lightning. "
    "Training/evaluation subcommands below; also `pig-lightning make-synthetic|convert|preprocess|data-check|index|search|export|compare --help`."
)

# Values the model and the data both need: set once on the data module, passed on to the model.
SHARED_WITH_MODEL = {
    "num_frames": "model.tower.init_args.num_frames",
    "image_size": "model.tower.init_args.backbone.init_args.image_size",
    "max_text_length": "model.tower.init_args.backbone.init_args.max_text_length",
    "tokenizer_source": "model.tower.init_args.backbone.init_args.tokenizer",
}

EXTRA_COMMANDS = {
    "make-synthetic": "pig_lightning.data.synthetic:main",
    "convert": "pig_lightning.data.convert:main",
    "preprocess": "pig_lightning.data.preprocess:main",
    "data-check": "pig_lightning.data.check:main",
    "index": "pig_lightning.retrieval.indexer:main",
    "search": "pig_lightning.retrieval.search:main",
    "export": "pig_lightning.export:main",
    "compare": "pig_lightning.compare:main",
}


class PigLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in SHARED_WITH_MODEL.items():
            parser.link_arguments(f"data.{source}", target, apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/t2v/R@1",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-epoch{epoch:03d}-step{step:06d}",
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.save_last": True,
            }
        )
        parser.add_lightning_class_args(DecodeSkipMonitor, "decode_skips")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after `fit`, run `test` on the best checkpoint (by the checkpoint monitor)",
        )

    def after_fit(self) -> None:
        if not self.config["fit"].get("test_after_fit"):
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        if best:
            logging.getLogger(__name__).info("testing the best checkpoint %s", best)
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


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
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        seed_everything_default=42,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": DESCRIPTION},
        args=args,
    )


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in EXTRA_COMMANDS:
        module_name, func_name = EXTRA_COMMANDS[args[0]].split(":")
        module = __import__(module_name, fromlist=[func_name])
        getattr(module, func_name)(args[1:])
        return
    run_cli(argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
