"""Training throughput of a tower: clips/s, where a step's time goes, FLOPs per step and MFU.

    python benchmarks/train_throughput.py --towers pig clip-vip --size B/32 --frames 12 --batch 2 \\
        --precision 32-true --device cpu --steps 6 --out docs/train_throughput.md   # the CPU report (~2 min)
    python benchmarks/train_throughput.py --towers pig clip-vip --device cuda --precision bf16-mixed \\
        --batch 64 --out docs/gpu_throughput.md                               # see benchmarks/gpu_check.sh

Each tower trains for ``--warmup + --steps`` optimiser steps with the Lightning ``Trainer``
(``RetrievalModule``: AdamW, the contrastive loss and the tower's own losses, random weights;
``config={}`` is ``CLIPConfig()``, i.e. ViT-B/32) on random clips that travel as the real ones
do: ``uint8 [B, T, H, W, 3]`` from a DataLoader, normalised on the device in
``on_after_batch_transfer``. A callback timestamps every step (``torch.cuda.synchronize`` first
on a GPU):

* **data wait**: end of the previous step -> ``on_train_batch_start`` (fetch, host-to-device
  copy, on-device pixel conversion);
* **forward+backward**: ``on_train_batch_start`` -> ``on_before_optimizer_step``;
* **optimiser**: ``on_before_optimizer_step`` -> ``on_train_batch_end`` (AdamW step, zeroing).

Times are means over the timed steps (the parts add up to the step). FLOPs per step: one forward + backward of the same
step counted with :func:`pig_lightning.evaluation.costs.count_flops` (``torch.utils.flop_counter``, a
multiply-add is 2 FLOPs, PyTorch's fused attention counted by its matrix products, as in
``benchmarks/tower_costs.py``); the optimiser's elementwise work is not counted. MFU is model
FLOP/s over the device's dense bf16 peak (table below); on a CPU only FLOP/s are reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from report import machine, write_report
from torch.utils.data import DataLoader, Dataset

from pig_lightning.evaluation.costs import count_flops
from pig_lightning.data.worlds.synthetic import write_tokenizer_folder
from pig_lightning.data.video.transforms import clip_normalise
from pig_lightning.models import (
    FrameCLIPBackbone,
    MeanPoolingTower,
    PIGTower,
    SeqTransformerTower,
    VideoCLSTower,
    VideoProxyBackbone,
    XPoolTower,
)
from pig_lightning.module import RetrievalModule

# Dense bf16 peak FLOP/s by device-name substring (vendor data sheets, without sparsity).
# The first name found in the device's name wins: the PCIe and NVL variants before their family.
PEAK_BF16 = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H200 NVL": 835e12, "H200": 989e12, "H100": 989e12,
             "A100": 312e12, "L40S": 362e12}

TOWERS = {  # name -> (tower class, backbone class, label)
    "pig": (PIGTower, VideoProxyBackbone, "PIG (hybrid)"),
    "clip-vip": (VideoCLSTower, VideoProxyBackbone, "CLIP-ViP (two-tower)"),
    "meanp": (MeanPoolingTower, FrameCLIPBackbone, "CLIP4Clip meanP"),
    "seqtransf": (SeqTransformerTower, FrameCLIPBackbone, "CLIP4Clip seqTransf"),
    "xpool": (XPoolTower, FrameCLIPBackbone, "X-Pool (single-tower)"),
}

SIZES = {  # backbone size -> (CLIP config, image size)
    "B/32": ({}, 224),  # CLIPConfig() defaults: ViT-B/32 vision, 12-layer 512-wide text
    "B/16": ({"vision_config": {"patch_size": 16}}, 224),
    "L/14": ({"projection_dim": 768,
              "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                "num_attention_heads": 16, "patch_size": 14},
              "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}}, 224),
    "tiny": ({"projection_dim": 64,
              "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "patch_size": 8},
              "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                              "num_attention_heads": 4}}, 32),
}


class RandomClips(Dataset):
    """``length`` items of one random uint8 clip and token ids (content does not change the cost)."""

    def __init__(self, length: int, frames: int, size: int, text_len: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.clip = torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=g)
        self.ids = torch.randint(2, 200, (text_len,), generator=g)
        self.ids[-1] = 1  # the toy tokenizer's end-of-text id
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        return {"frames": self.clip.clone(), "input_ids": self.ids.clone(), "video_index": i}


def collate(items: list[dict]) -> dict:
    ids = torch.stack([it["input_ids"] for it in items])
    return {"frames": torch.stack([it["frames"] for it in items]), "input_ids": ids,
            "attention_mask": torch.ones_like(ids), "video_index": torch.tensor([it["video_index"] for it in items]),
            "text_video": torch.arange(len(items))}


class StepTimer(L.Callback):
    def __init__(self):
        self.marks: list[dict[str, float]] = []
        self._last_end: float | None = None

    def _now(self, module) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        now = self._now(module)
        self.marks.append({"wait": now - self._last_end if self._last_end is not None else float("nan"),
                           "start": now})

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.marks[-1]["backward_done"] = self._now(module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        now = self._now(module)
        mark = self.marks[-1]
        mark["fwd_bwd"] = mark["backward_done"] - mark["start"]
        mark["optimiser"] = now - mark["backward_done"]
        self._last_end = now


def build(name: str, size: str, frames: int, text_len: int, tokenizer: str, compile: bool) -> RetrievalModule:
    tower_cls, backbone_cls, _ = TOWERS[name]
    config, image = SIZES[size]
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    config.setdefault("text_config", {})["max_position_embeddings"] = max(77, text_len)
    config.setdefault("vision_config", {})["image_size"] = image
    backbone = backbone_cls(config=config, tokenizer=tokenizer, image_size=image, max_text_length=text_len)
    return RetrievalModule(tower_cls(backbone, num_frames=frames), write_reports=False, compile=compile)


def training_loss(module: RetrievalModule, batch: dict) -> torch.Tensor:
    """The loss of the module's own training step (what ``fit`` backpropagates) on a device batch,
    outside a Trainer: the step's finite-loss bookkeeping, which the Trainer's hooks consume, is dropped."""
    loss = module.training_step(batch, 0)
    module._step_parts.clear()
    return loss


def step_flops(module: RetrievalModule, batch: dict, device: torch.device, precision: str) -> int:
    """FLOPs of one training forward + backward (under bf16 autocast for a bf16 precision, so it needs
    no more memory than a training step; the count does not depend on the dtype)."""
    batch = module.on_after_batch_transfer({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}, 0)

    def step():
        training_loss(module, batch).backward()

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
        flops = count_flops(step)
    module.zero_grad(set_to_none=True)
    return flops


def measure(name: str, args, tokenizer: str) -> dict:
    torch.manual_seed(0)
    device = torch.device(args.device)
    _, image = SIZES[args.size]
    module = build(name, args.size, args.frames, args.text_len, tokenizer, args.compile).to(device)
    steps = args.warmup + args.steps
    data = RandomClips(steps * args.batch, args.frames, image, args.text_len)
    loader_kwargs = dict(batch_size=args.batch, num_workers=args.workers, collate_fn=collate,
                         pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    flops = step_flops(module, collate([data[i] for i in range(args.batch)]), device, args.precision)
    timer = StepTimer()
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, precision=args.precision,
                        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer], num_sanity_val_steps=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer.fit(module, train_dataloaders=DataLoader(data, **loader_kwargs))
    timed = timer.marks[args.warmup:]
    med = {k: statistics.mean(m[k] for m in timed) for k in ("wait", "fwd_bwd", "optimiser")}
    step = sum(med.values())  # means: the parts add up to the step
    peak = next((v for k, v in PEAK_BF16.items() if device.type == "cuda" and k in torch.cuda.get_device_name(device)),
                None)
    first = timer.marks[0]
    result = {"name": name, "label": TOWERS[name][2], "step": step, **med, "flops": flops,
              "first_step": first["fwd_bwd"] + first["optimiser"],  # with torch.compile: the compilation
              "clips_per_s": args.batch / step, "flop_per_s": flops / step,
              "mfu": flops / step / peak if peak and args.precision.startswith("bf16") else None,
              "memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
              "params_m": sum(p.numel() for p in module.parameters()) / 1e6}
    print(f"{name}: step {step:.3f} s ({args.batch / step:.2f} clips/s; wait {med['wait']:.3f}, fwd+bwd "
          f"{med['fwd_bwd']:.3f}, optimiser {med['optimiser']:.3f}), {flops / 1e9:,.1f} GFLOPs/step, "
          f"{flops / step / 1e9:,.1f} GFLOP/s" + (f", MFU {result['mfu']:.1%}" if result["mfu"] is not None else ""),
          flush=True)
    del trainer, module
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--towers", nargs="+", default=["pig", "clip-vip"], choices=list(TOWERS))
    parser.add_argument("--size", default="B/32", choices=list(SIZES))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--text_len", type=int, default=32)
    parser.add_argument("--precision", default="32-true", help="Trainer precision: 32-true, bf16-mixed, ...")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="model.compile (torch.compile of the backbone)")
    parser.add_argument("--out", default=None, help="write a Markdown report here (e.g. docs/train_throughput.md)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = str(write_tokenizer_folder(Path(tmp) / "tok"))
        results = [measure(name, args, tokenizer) for name in args.towers]
    by_name = {r["name"]: r for r in results}
    ratio = by_name["pig"]["step"] / by_name["clip-vip"]["step"] if {"pig", "clip-vip"} <= set(by_name) else None
    if ratio is not None:
        print(f"PIG / CLIP-ViP training-step time: {ratio:.3f}")
    if not args.out:
        return
    gpu = args.device.startswith("cuda")
    lines = [
        f"# Training throughput ({'GPU' if gpu else 'CPU'})",
        "",
        f"Command: `python benchmarks/train_throughput.py --towers {' '.join(args.towers)} --size {args.size} "
        f"--frames {args.frames} --batch {args.batch} --precision {args.precision} --device {args.device} "
        f"--warmup {args.warmup} --steps {args.steps}"
        f"{' --compile' if args.compile else ''} --out {args.out}` ({time.time() - started:.0f} s). "
        f"Machine: {machine()}.",
        "",
        f"Random weights, {args.size} backbone, {args.frames} frames of {SIZES[args.size][1]} px, batch {args.batch}, "
        f"{args.text_len}-token captions, precision `{args.precision}`, {args.workers} DataLoader workers; "
        f"{args.warmup} warm-up step(s), then the mean of {args.steps} timed steps. Method: the docstring of "
        "`benchmarks/train_throughput.py`.",
        "",
        "| tower | params (M) | step (s) | clips/s | data wait (s) | forward+backward (s) | optimiser (s) | "
        "GFLOPs / step | GFLOP/s | MFU |" + (" peak memory (GiB) |" if gpu else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if gpu else ""),
    ]
    for r in results:
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        lines.append(f"| {r['label']} | {r['params_m']:.1f} | {r['step']:.3f} | {r['clips_per_s']:.2f} | "
                     f"{r['wait']:.4f} | {r['fwd_bwd']:.3f} | {r['optimiser']:.3f} | {r['flops'] / 1e9:,.1f} | "
                     f"{r['flop_per_s'] / 1e9:,.1f} | {mfu} |"
                     + (f" {r['memory_gib']:.1f} |" if gpu else ""))
    if ratio is not None:
        lines += ["", f"**PIG / CLIP-ViP training-step time: {ratio:.3f}** (target of issue #11: <= 1.10 -> "
                      f"{'MET' if ratio <= 1.10 else 'NOT MET'}); FLOPs per step "
                      f"{by_name['pig']['flops'] / by_name['clip-vip']['flops']:.3f}x."]
    lines += ["", "MFU: model FLOP/s over the dense bf16 peak of the device ("
              + ", ".join(f"{k} {v / 1e12:.0f} TFLOP/s" for k, v in PEAK_BF16.items())
              + "); n/a on a CPU, for fp32, or for a device not in the table."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
