"""What the qualitative TensorBoard images cost a validation, on the demo (conf/quality/pig.yaml).

    python benchmarks/qualitative_cost.py [--epochs 1] [--config conf/quality/pig.yaml]

Fits the demo config for ``--epochs`` epochs twice, with the ``qualitative`` callback (the default)
and with ``--qualitative.enabled false``, and times every validation (from the first callback's
``on_validation_start`` to after every callback's ``on_validation_end``, checkpoint saving included
in both), plus the callback's own timer (drawing and logging the images). Prints a Markdown table
for docs/visualisation.md and saves the first logged video image, read back from the TensorBoard
event file, to docs/tensorboard_qualitative.png.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback
from report import ROOT, machine

from pig_lightning.commands.train import PigLightningCLI, trainer_defaults
from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.module import RetrievalModule
from pig_lightning.training import QualitativeImages

PNG = ROOT / "docs" / "tensorboard_qualitative.png"


class ValidationTimer(Callback):
    """Wall seconds of each validation, and of the qualitative callback's drawing in it (appended
    after the Trainer is built, so its end hook runs after every other callback's)."""

    def __init__(self, qualitative: QualitativeImages) -> None:
        self.qualitative = qualitative
        self.seconds: list[float] = []
        self.drawing: list[float] = []
        self._start = 0.0

    def on_validation_start(self, trainer, pl_module) -> None:
        self.qualitative.last_seconds = None
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.seconds.append(time.perf_counter() - self._start)
        if self.qualitative.last_seconds is not None:
            self.drawing.append(self.qualitative.last_seconds)


def fit(config: Path, save_dir: Path, epochs: int, *extra: str) -> tuple[ValidationTimer, Path, str]:
    """The timer, the run folder and the validation set's size of one demo fit."""
    args = ["--config", str(config), f"--trainer.max_epochs={epochs}",
            f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.enable_progress_bar=false", *extra]
    # as pig_lightning.commands.train.run_cli, but not run, so the timer can be the last callback
    cli = PigLightningCLI(RetrievalModule, VideoTextDataModule,
                          auto_configure_optimizers=False, seed_everything_default=42,
                          trainer_defaults=trainer_defaults(), save_config_kwargs={"overwrite": True}, args=args,
                          run=False)
    timer = ValidationTimer(next(c for c in cli.trainer.callbacks if isinstance(c, QualitativeImages)))
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    metrics = cli.trainer.callback_metrics
    size = f"{int(metrics['val/num_videos'])} videos, {int(metrics['val/num_texts'])} captions"
    return timer, Path(cli.trainer.log_dir), size


def save_logged_image(run_dir: Path, tag: str, output: Path) -> tuple[int, int]:
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    last = events.Images(tag)[-1]
    with Image.open(io.BytesIO(last.encoded_image_string)) as image:
        image.save(output)
    return last.width, last.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "conf/quality/pig.yaml"))
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        on, run_dir, size = fit(Path(args.config), Path(tmp) / "on", args.epochs)
        width, height = save_logged_image(run_dir, "qualitative/video_1", PNG)
        off, _, _ = fit(Path(args.config), Path(tmp) / "off", args.epochs, "--qualitative.enabled=false")

    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

    print(f"\n{machine()}; {args.config}, {args.epochs} epoch(s), {len(on.seconds)} validation(s) each\n")
    print(f"| one validation ({size}) | seconds (mean; each validation) |")
    print("|---|---|")
    print(f"| `--qualitative.enabled false` | {cell(off.seconds)} |")
    print(f"| with the images (default) | {cell(on.seconds)} |")
    print(f"| of which the callback's own timer (4 images drawn and logged) | {cell(on.drawing)} |")
    print(f"\nwrote {PNG} ({width} x {height} px, qualitative/video_1 read back from the event file)")


if __name__ == "__main__":
    main()
