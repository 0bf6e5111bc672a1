"""Weights in and out: import time of a release checkpoint, load time of a model folder vs the .ckpt.

    python benchmarks/weights_load.py            # ~2-3 minutes on 2 cores, ~6 GB of temporary files

1. Import: a random checkpoint in the PIG release's key layout (``encoder.clipmodel.*``,
   ``generator.clip_reconstructor.*``, ``fusioner.*``; names and shapes as in
   tests/weights/release_reference.py) at ViT-B/32 size, through ``pig-lightning import-weights``
   (read weights-only, map, build the tower, check, write the folder).
2. Load: for the demo model (conf/demo_pig.yaml: PIG on the tiny CLIP) and a random B/32 PIG, a
   checkpoint written by ``pig-lightning fit`` (one step: weights + optimizer state, as every
   last.ckpt) and its ``export --format model`` folder, each loaded through ``load_model`` (what
   index, search and Retriever call), median of 3 alternating runs with the files in the page cache.

The text vocabulary is the synthetic tokenizer's 295 tokens (no OpenAI tokenizer offline): the B/32
models have 25.1M fewer values in each token table than OpenAI's 49,408-token one. Results ->
docs/weights_load.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from report import ROOT, machine, write_report

sys.path.insert(0, str(ROOT))  # the release layout's random state dict lives with the tests

from pig_lightning.cli import main as cli_main  # noqa: E402
from pig_lightning.commands.train import run_cli  # noqa: E402
from pig_lightning.data.worlds.synthetic import write_tokenizer_folder  # noqa: E402
from pig_lightning.load import load_model  # noqa: E402
from pig_lightning.weights.importer import import_weights  # noqa: E402
from tests.weights.release_reference import release_state_dict  # noqa: E402

B32 = {"projection_dim": 512,
       "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                       "num_attention_heads": 8, "max_position_embeddings": 77},
       "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                         "num_attention_heads": 12, "image_size": 224, "patch_size": 32}}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def fit_one_step(tmp: Path, name: str, clip_config: Path | str, image_size: int, num_frames: int) -> Path:
    """A checkpoint written by `pig-lightning fit` (conf/demo_pig.yaml, one step of batch 2)."""
    run_cli(["fit", "--config", str(ROOT / "conf/demo_pig.yaml"),
             f"--model.tower.init_args.backbone.init_args.config={clip_config}",
             f"--data.source.root={tmp / 'synthetic'}", "--data.source.num_train=4", "--data.source.num_val=2",
             "--data.source.num_test=2", "--data.source.frame_size=32", "--data.batch_size=2",
             "--data.num_workers=0", f"--data.image_size={image_size}",
             f"--data.num_frames={num_frames}", "--trainer.max_steps=1", "--trainer.limit_val_batches=0",
             "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--test_after_fit=false",
             f"--trainer.logger.init_args.save_dir={tmp / 'runs'}", f"--trainer.logger.init_args.name={name}",
             "--checkpoint.monitor=null"])
    return max((tmp / "runs" / name).rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)


def median_load(path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_model(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_loads(ckpt: Path, folder: Path, repeats: int) -> tuple[float, float]:
    load_model(ckpt), load_model(folder)  # warm-up: lazy imports, page cache
    ckpt_times, folder_times = [], []
    for _ in range(repeats):  # alternating, so a slower moment of the machine hits both
        ckpt_times.append(median_load(ckpt, 1))
        folder_times.append(median_load(folder, 1))
    return statistics.median(ckpt_times), statistics.median(folder_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/weights_load.md")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # the fit runs below get their arguments from us, not from this command line
    torch.manual_seed(0)
    rows_import, rows_load = [], []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tokenizer = str(write_tokenizer_folder(tmp / "tokenizer"))
        vocab = 295
        b32_file = tmp / "b32.json"
        b32_file.write_text(json.dumps(B32))

        # 1. import a B/32 checkpoint in the PIG release's layout
        release = tmp / "pig_release_b32.pt"
        state = release_state_dict("pig", B32, vocab, 12, seed=0)
        torch.save(state, release)
        values = sum(t.numel() for t in state.values())
        del state
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out, report = import_weights("pig", release, tmp / "imported_b32", tokenizer=tokenizer, overwrite=True)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows_import.append(f"| PIG release layout, B/32 ({values / 1e6:.1f}M values, {len(report['mapped'])} "
                           f"tensors mapped) | {size_mb(release):.0f} MB | {seconds:.1f} s | "
                           f"{size_mb(out / 'model.safetensors'):.0f} MB |")
        release.unlink()

        # 2. load: .ckpt vs exported folder
        for label, config, image_size, frames in (("demo (conf/demo_pig.yaml, tiny CLIP)",
                                                   ROOT / "conf/clip/tiny.json", 32, 8),
                                                  ("random B/32", b32_file, 224, 2)):
            run = "demo" if "demo" in label else "b32"
            ckpt = fit_one_step(tmp, run, config, image_size, frames)
            folder = tmp / f"{run}_model"
            cli_main(["export", "--ckpt_path", str(ckpt), "--output", str(folder), "--format", "model"])
            t_ckpt, t_folder = compare_loads(ckpt, folder, args.repeats)
            rows_load.append(f"| {label} | {size_mb(ckpt):.1f} MB | {t_ckpt:.2f} s | {size_mb(folder):.1f} MB | "
                             f"{t_folder:.2f} s | {t_ckpt / t_folder:.1f}x |")
            ckpt.unlink()

    lines = [
        "# Weights in and out: import and load times",
        "",
        f"Command: `python benchmarks/weights_load.py`. Machine: {machine()}.",
        "",
        f"Import (`pig-lightning import-weights --source pig`, median of {args.repeats} runs): a random checkpoint "
        "with the PIG release's key",
        "names and shapes at ViT-B/32 size, fp32; the time covers reading it weights-only, mapping every key,",
        "building the PIG tower, checking every shape and writing the model folder (safetensors + config +",
        "tokenizer + import_report.json).",
        "",
        "| checkpoint | file | import time | model.safetensors written |",
        "|---|---|---|---|",
        *rows_import,
        "",
        f"Load through `load_model` (what `index`, `search` and `Retriever` call), median of {args.repeats}",
        "alternating runs, files in the page cache. The `.ckpt` is a `last.ckpt` written by `pig-lightning fit`",
        "(weights and AdamW state); the folder is its `pig-lightning export --format model`. The folder builds",
        "the tower without initialising weights it is about to overwrite and reads one safetensors file; the",
        "checkpoint path is Lightning's `load_from_checkpoint` (the file read twice: once to check what it is,",
        "once by Lightning, optimizer state included).",
        "",
        "| model | .ckpt size | .ckpt load | folder size | folder load | folder faster by |",
        "|---|---|---|---|---|---|",
        *rows_load,
        "",
        "The B/32 models use the synthetic 295-token vocabulary (no OpenAI tokenizer offline); OpenAI's 49,408",
        "tokens add 25.1M values per token table (text tower; the PIG release's generator keeps a second one,",
        "of which import keeps 2 rows), which adds to the import's reading and the checkpoint's size.",
        "The 2-core machine is shared with other jobs: single timings vary by up to 2x between runs (medians",
        "above); the ratios, not the last digit, are the result.",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
