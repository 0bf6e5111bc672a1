"""The ten stages of ``benchmarks/gpu_check.py``. Each takes the :class:`Context` and returns
``(results, markdown lines)``; it raises ``Skip("why")`` when it cannot run on this machine.

1. **environment**: versions, the GPU, CPU cores, ``/dev/shm``, and an 8192³ bf16 matmul as the
   achievable peak (TFLOP/s).
2. **tiny fit + syncs**: ``pig-lightning fit`` of ``conf/demo_pig.yaml`` in this process (bf16, one
   epoch, then test): the loss is finite, the metrics are there, both checkpoints load back. Then 3
   training steps of PIG (B/32 at batch 32) under ``torch.cuda.set_sync_debug_mode("warn")``: every
   host-device synchronisation of steps 2 and 3, with where it was called from.
3. **SDPA**: the backbone's attention runs with only the flash kernel allowed (training forward and
   backward), and the profiler names the kernels that ran.
4. **step time**, eager: PIG and CLIP-ViP at batch 32 and 128 through the Lightning ``Trainer``
   (``benchmarks/train_throughput.py``): data wait / forward+backward / optimiser, PIG ÷ CLIP-ViP,
   GPU-busy % (the step minus the data wait, over the step).
5. **MFU** at batch 32, 12 frames, bf16, against the spec sheet's peak and the measured matmul
   peak; PIG once more with AdamW's fused kernels switched off.
6. **compile**: PIG at batch 32 with ``model.compile``: time to the first step, eager ÷ compiled
   step, how many graphs and recompiles dynamo made.
7. **largest batch**: PIG B/32 12 frames bf16 training steps (3 per probe) at doubling batches until
   one runs out of memory, in this process (``expandable_segments``); GiB per clip.
8. **loader**: training clips/s at 8 and 14 workers from mp4 files and from an optimized
   (litdata) dataset written on the spot, against the GPU's clips/s at batch 32 (stage 4).
9. **checkpoint**: save and load time and size of a PIG B/32 checkpoint, full (with the optimiser
   state: ``last.ckpt``) and weights-only (``best-*.ckpt``).
10. **validation**: one validation of 1,000 videos (metrics and DSL) against 50 training steps.

With ``--dry`` every size is tiny (a 2-layer CLIP of 32 px, a few clips): the code paths run in
seconds, and on a machine without CUDA the stages that need it say so.
"""

from __future__ import annotations

import copy
import gc
import math
import multiprocessing
import os
import sys
import shutil
import tempfile
import time
import warnings
from argparse import Namespace
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


class Skip(Exception):
    """A stage that cannot run on this machine; the message says why."""


B32, TINY = "B/32", "tiny"


@dataclass
class Context:
    dry: bool
    out: Path
    missing: set
    budget: float
    limits: dict
    started: float
    results: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.bf16 = self.cuda and torch.cuda.is_bf16_supported()
        self.precision = "bf16-mixed" if self.bf16 else "32-true"
        self.work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.size = TINY if self.dry else B32
        self.frames = 4 if self.dry else 12
        self.batches = (2, 4) if self.dry else (32, 128)
        self.text_len = 16 if self.dry else 32
        self.workers = (0, 2) if self.dry else (8, 14)
        # training/validation loaders of random clips: 6 workers need ~3 GB of /dev/shm at batch 128
        shm_free = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
        self.train_workers = 0 if self.dry or shm_free < 4 * 2**30 else 6
        self._tokenizer: str | None = None

    @property
    def tokenizer(self) -> str:
        if self._tokenizer is None:
            from pig_lightning.data.worlds.synthetic import write_tokenizer_folder
            self._tokenizer = str(write_tokenizer_folder(self.work / "tokenizer"))
        return self._tokenizer

    @property
    def image_size(self) -> int:
        from train_throughput import SIZES
        return SIZES[self.size][1]

    def need(self, *modules: str) -> None:
        lacking = [m for m in modules if m in self.missing]
        if lacking:
            raise Skip(f"needs {', '.join(lacking)}, which python3 lacks and --wheels did not provide")

    def need_cuda(self, what: str) -> None:
        if not self.cuda:
            raise Skip(f"no CUDA device ({what})")

    def need_bf16(self) -> None:
        self.need_cuda("bf16 on a GPU")
        if not self.bf16:
            raise Skip(f"{torch.cuda.get_device_name(0)} has no bf16")

    def cleanup(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def _cuda_time(fn, repeats: int) -> float:
    """Seconds per call of ``fn`` on the GPU (CUDA events, after one untimed call)."""
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / repeats


def spec_peak() -> float | None:
    from train_throughput import PEAK_BF16
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


# ----- 1 ---------------------------------------------------------------------------------------
def environment(ctx: Context):
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    res = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if ctx.cuda else None,
           **{name: _version(name) for name in ("lightning", "transformers", "torchmetrics", "litdata", "av",
                                                "jsonargparse", "simplejpeg")},
           "cpu_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
           "shm_gib": round(shm.total / 2**30, 1) if shm else None,
           "shm_free_gib": round(shm.free / 2**30, 1) if shm else None}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(0)
        res.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", bf16=ctx.bf16, spec_peak_tflops=(spec_peak() or 0) / 1e12)
        if ctx.bf16:
            n = 2048 if ctx.dry else 8192
            a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
            b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
            seconds = _cuda_time(lambda: a @ b, 5 if ctx.dry else 20)
            res["matmul_n"], res["matmul_tflops"] = n, 2 * n**3 / seconds / 1e12
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v if not isinstance(v, float) else f'{v:.1f}'} |"
                                       for k, v in res.items()]
    if not ctx.cuda:
        lines += ["", "No CUDA device: the matmul peak is not measured."]
    return res, lines


# ----- 2 ---------------------------------------------------------------------------------------
def _scalars(run_dir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    values = []
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            values += [e.value for e in acc.Scalars(tag)]
    return values


class SyncWatch:
    """Lightning callback: from the second training step on, ``set_sync_debug_mode("warn")`` between
    the start and the end of each step; every warning is kept with the project/Lightning/torch frames
    that called it (the last of them first)."""

    def __init__(self):
        import lightning as L

        watch = self

        class Callback(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                watch.step = batch_idx
                if batch_idx >= 1:
                    torch.cuda.synchronize()
                    torch.cuda.set_sync_debug_mode("warn")

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                torch.cuda.set_sync_debug_mode(0)

        self.callback = Callback()
        self.step = 0
        self.syncs: list[dict] = []

    @contextmanager
    def recording(self):
        import traceback

        def show(message, category, filename, lineno, file=None, line=None):
            if "synchroniz" not in str(message):
                return
            frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack()[:-1]
                      if any(part in f.filename for part in ("pig_lightning", "lightning", "torch"))]
            self.syncs.append({"step": self.step, "message": str(message).splitlines()[0][:160],
                               "where": list(reversed(frames[-5:]))})

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode(0)


def tiny_fit_and_syncs(ctx: Context):
    ctx.need("jsonargparse", "docstring_parser", "typeshed_client", "av", "tensorboard")
    from pig_lightning.commands.train import run_cli
    from pig_lightning.load import load_model

    runs, data = ctx.work / "runs", ctx.work / "synthetic"
    n_train, n_eval, batch = (16, 8, 8) if ctx.dry else (320, 40, 32)
    args = ["fit", "--config", str(ROOT / "conf/demo_pig.yaml"), "--trainer.accelerator", ctx.device.type,
            "--trainer.precision", ctx.precision, "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.logger.init_args.save_dir", str(runs), "--data.source.root", str(data),
            "--data.source.num_train", str(n_train), "--data.source.num_val", str(n_eval),
            "--data.source.num_test", str(n_eval), "--data.batch_size", str(batch), "--data.eval_batch_size", str(batch),
            "--data.num_workers", "0" if ctx.dry else "2", "--trainer.log_every_n_steps", "1"]
    if ctx.dry:  # a smaller set: 2 frames of 32 px per event, 2 captions a video
        args += ["--data.source.frames_per_event", "2", "--data.source.captions_per_video", "2",
                 "--data.source.frame_size", "32"]
    start = time.perf_counter()
    cli = run_cli(args)
    fit_seconds = time.perf_counter() - start
    run_dir = Path(cli.trainer.log_dir)
    losses = _scalars(run_dir, "train/loss")
    test = cli.trainer.callback_metrics
    r1 = float(test["test/t2v/R@1"]) if "test/t2v/R@1" in test else float("nan")
    checks = {"loss_logged": bool(losses), "loss_finite": bool(losses) and all(math.isfinite(v) for v in losses),
              "test_r1_finite": math.isfinite(r1)}
    reference = {k: v.detach().cpu() for k, v in cli.model.state_dict().items()}
    for ckpt in sorted((run_dir / "checkpoints").glob("*.ckpt")):
        loaded = load_model(ckpt).state_dict()
        same = set(loaded) == set(reference)
        if ckpt.name == "last.ckpt":  # the final state; best-*.ckpt may be an earlier epoch
            same = same and all(torch.equal(loaded[k].cpu(), reference[k]) for k in reference)
        checks[f"reloads {ckpt.name}"] = same
    res = {"fit_seconds": fit_seconds, "steps": len(losses), "last_loss": losses[-1] if losses else None,
           "test_t2v_r1": r1, **checks}
    lines = [f"`pig-lightning fit --config conf/demo_pig.yaml` ({n_train} synthetic videos, one epoch, "
             f"`{ctx.precision}`, then test) in this process: {fit_seconds:.1f} s; last logged loss "
             f"{res['last_loss']}; test t2v R@1 {r1:.1f}.", ""]
    lines += [f"- {name}: {'yes' if ok else '**NO**'}" for name, ok in checks.items()]
    del cli
    failed = [name for name, ok in checks.items() if not ok]
    if ctx.cuda:
        res["syncs"] = _sync_list(ctx)
        per_step = {}
        for s in res["syncs"]:
            per_step[s["step"]] = per_step.get(s["step"], 0) + 1
        res["syncs_per_step"] = per_step
        lines += ["", f"Host-device synchronisations in training steps 2 and 3 (PIG {ctx.size}, batch "
                      f"{ctx.batches[0]}, `{ctx.precision}`, gradient clipping 1.0): "
                      f"**{len(res['syncs'])}** ({per_step or 'none'})."]
        lines += [f"- step {s['step'] + 1}: {s['message']} — at {' <- '.join(s['where'][:3])}" for s in res["syncs"]]
    else:
        lines += ["", "*The sync list needs a CUDA device: not made here.*"]
    if failed:
        raise AssertionError(f"tiny fit: {', '.join(failed)} failed")
    return res, lines


def _sync_list(ctx: Context) -> list[dict]:
    import lightning as L
    from torch.utils.data import DataLoader
    from train_throughput import RandomClips, build, collate

    module = build("pig", ctx.size, ctx.frames, ctx.text_len, ctx.tokenizer, compile=False)
    data = RandomClips(3 * ctx.batches[0], ctx.frames, ctx.image_size, ctx.text_len)
    watch = SyncWatch()
    trainer = L.Trainer(accelerator="gpu", devices=1, precision=ctx.precision, max_steps=3, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, gradient_clip_val=1.0, callbacks=[watch.callback])
    with watch.recording():
        trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=ctx.batches[0], collate_fn=collate,
                                                         pin_memory=True))
    return watch.syncs


# ----- 3 ---------------------------------------------------------------------------------------
def sdpa_flash(ctx: Context):
    ctx.need_bf16()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.profiler import ProfilerActivity, profile
    from train_throughput import build

    module = build("pig", ctx.size, ctx.frames, ctx.text_len, ctx.tokenizer, compile=False).cuda()
    b = ctx.batches[0] // 4 or 1
    frames = torch.randn(b, ctx.frames, 3, ctx.image_size, ctx.image_size, device="cuda")
    backbone = module.tower.backbone
    res = {"attn_implementation": getattr(backbone.clip.config, "_attn_implementation", "unknown")}
    # the video backbone's per-frame attention (unmasked): flash-eligible; the text encoder's padding
    # mask rules flash out there by design (memory-efficient attention takes it)
    try:
        with warnings.catch_warnings(record=True) as why, sdpa_kernel([SDPBackend.FLASH_ATTENTION]), \
                torch.autocast("cuda", dtype=torch.bfloat16), profile(activities=[ProfilerActivity.CUDA]) as prof:
            out = backbone.forward_video(frames)
            out.tokens.float().sum().backward()
            torch.cuda.synchronize()
        kernels = {e.key for e in prof.key_averages() if "flash" in e.key.lower() or "fmha" in e.key.lower()}
        res.update(flash_only_runs=True, flash_kernels=sorted(kernels)[:8])
    except RuntimeError as exc:
        res.update(flash_only_runs=False, error=str(exc).splitlines()[0][:300],
                   reasons=[str(w.message)[:200] for w in why][:4])
    lines = [f"Attention implementation of the HF CLIP modules: `{res['attn_implementation']}`.",
             f"The video backbone's forward+backward (per-frame attention) with only the flash kernel allowed: "
             f"{'**runs**' if res['flash_only_runs'] else '**fails**: ' + res.get('error', '')}."]
    if res.get("flash_kernels"):
        lines.append("Flash kernels seen: " + ", ".join(f"`{k[:80]}`" for k in res["flash_kernels"]))
    lines += [f"- PyTorch: {r}" for r in res.get("reasons", [])]
    return res, lines


# ----- 4, 5 ------------------------------------------------------------------------------------
def _measure(ctx: Context, name: str, batch: int, compile: bool = False, workers: int | None = None) -> dict:
    from train_throughput import measure
    args = Namespace(device=ctx.device.type, size=ctx.size, frames=ctx.frames, text_len=ctx.text_len,
                     compile=compile, warmup=1 if ctx.dry else 3, steps=2 if ctx.dry else 10, batch=batch,
                     workers=ctx.train_workers if workers is None else workers, precision=ctx.precision)
    error = None
    try:
        result = measure(name, args, ctx.tokenizer)
    except torch.OutOfMemoryError as exc:
        error = f"out of memory ({str(exc).splitlines()[0][:120]})"
    except Exception as exc:  # noqa: BLE001 - one measurement failing keeps the others of the stage
        error = f"failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
    if error is not None:  # outside the except block: its traceback no longer holds the tensors
        ctx.cleanup()
        return {"name": name, "batch": batch, "status": error}
    result.update(batch=batch, status="ok", busy=(result["fwd_bwd"] + result["optimiser"]) / result["step"])
    return result


def _row(r: dict) -> str:
    if r["status"] != "ok":
        return f"| {r['name']} | {r['batch']} | {r['status']} | | | | | | |"
    mfu = "n/a" if r.get("mfu") is None else f"{r['mfu']:.1%}"
    return (f"| {r['name']} | {r['batch']} | {r['step']:.4f} | {r['clips_per_s']:.1f} | {r['wait']:.4f} | "
            f"{r['fwd_bwd']:.4f} | {r['optimiser']:.4f} | {r['busy']:.0%} | {mfu} |")


HEAD = ["| tower | batch | step (s) | clips/s | data wait (s) | forward+backward (s) | optimiser (s) | GPU busy | MFU |",
        "|---|---|---|---|---|---|---|---|---|"]


def step_time(ctx: Context):
    runs = {f"{name}_{b}": _measure(ctx, name, b) for b in ctx.batches for name in ("pig", "clip-vip")}
    lines = [f"Eager, random weights, {ctx.size}, {ctx.frames} frames, `{ctx.precision}`, in-memory random clips "
             f"through a DataLoader; mean of the timed steps (`benchmarks/train_throughput.py`).", "", *HEAD]
    lines += [_row(r) for r in runs.values()]
    ratios = {}
    for b in ctx.batches:
        pig, vip = runs[f"pig_{b}"], runs[f"clip-vip_{b}"]
        if pig["status"] == vip["status"] == "ok":
            ratios[b] = pig["step"] / vip["step"]
    lines += ["", "PIG ÷ CLIP-ViP step: " + (", ".join(f"batch {b}: **{r:.3f}**" for b, r in ratios.items()) or "n/a")
              + " (target ≤ 1.10)."]
    return {"runs": runs, "pig_over_clipvip": ratios}, lines


def mfu(ctx: Context):
    ctx.need_bf16()
    import pig_lightning.module as module_code

    b = ctx.batches[0]
    step4 = ctx.results.get(4, {}).get("runs", {})
    fused = {name: step4.get(f"{name}_{b}") or _measure(ctx, name, b) for name in ("pig", "clip-vip")}
    original = module_code.fused_adamw
    module_code.fused_adamw = lambda parameters: None  # AdamW's default (foreach) kernels
    try:
        unfused = _measure(ctx, "pig", b)
    finally:
        module_code.fused_adamw = original
    unfused["name"] = "pig (AdamW foreach)"
    matmul = ctx.results.get(1, {}).get("matmul_tflops")
    res = {"runs": {**fused, "pig_unfused": unfused}, "spec_peak_tflops": (spec_peak() or 0) / 1e12,
           "matmul_tflops": matmul}
    lines = [f"Batch {b}, {ctx.frames} frames, bf16. MFU = model FLOP/s (`torch.utils.flop_counter`) over the spec "
             f"sheet's dense bf16 peak ({res['spec_peak_tflops']:.0f} TFLOP/s)"
             + (f"; over the measured matmul peak ({matmul:.0f} TFLOP/s) in the last column" if matmul else "")
             + ".", "", HEAD[0] + " MFU (matmul peak) |", HEAD[1] + "---|"]
    for r in res["runs"].values():
        extra = f" {r['flop_per_s'] / 1e12 / matmul:.1%} |" if matmul and r["status"] == "ok" else " |"
        lines.append(_row(r) + extra)
    if fused["pig"]["status"] == "ok" and unfused["status"] == "ok":
        res["fused_saves"] = 1 - fused["pig"]["step"] / unfused["step"]
        lines += ["", f"Fused AdamW saves {res['fused_saves']:.1%} of PIG's step; target MFU ≥ 40 %."]
    return res, lines


# ----- 6 ---------------------------------------------------------------------------------------
def compile_step(ctx: Context):
    ctx.need_cuda("inductor is measured on a GPU; its C++ build alone takes minutes on a CPU")
    if not any(shutil.which(c) for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c):
        raise Skip("no C compiler (Triton builds its launcher with one)")
    import torch._dynamo
    import torch._dynamo.utils as dynamo_utils

    dynamo_utils.counters.clear()
    start = time.perf_counter()
    compiled = _measure(ctx, "pig", ctx.batches[0], compile=True)
    total = time.perf_counter() - start
    counters = {k: dict(v) for k, v in dynamo_utils.counters.items() if v}
    torch._dynamo.reset()  # the compiled code keeps the model alive
    eager = ctx.results.get(4, {}).get("runs", {}).get(f"pig_{ctx.batches[0]}")
    res = {"compiled": compiled, "run_seconds": total, "counters": counters,
           "first_step_s": compiled.get("first_step"),
           "unique_graphs": counters.get("stats", {}).get("unique_graphs"),
           "graph_breaks": sum(counters.get("graph_break", {}).values())}
    lines = [f"PIG, batch {ctx.batches[0]}, `model.compile: true` (inductor; the tower's whole training forward): "
             f"the first step (compilation included) took {res['first_step_s'] or float('nan'):.1f} s, the whole run "
             f"(build, compile, {'3 + 10' if not ctx.dry else '1 + 2'} steps) {total:.1f} s.", "", *HEAD, _row(compiled)]
    if compiled["status"] == "ok" and eager and eager["status"] == "ok":
        res["eager_over_compiled"] = eager["step"] / compiled["step"]
        lines += ["", f"Eager ÷ compiled step: **{res['eager_over_compiled']:.2f}**."]
    lines += ["", f"dynamo: {res['unique_graphs']} graphs, {res['graph_breaks']} graph breaks; counters "
                  f"`{ {k: v for k, v in counters.items() if k in ('stats', 'recompiles', 'frames')} }`."]
    return res, lines


# ----- 7 ---------------------------------------------------------------------------------------
def largest_batch(ctx: Context):
    ctx.need_bf16()
    from train_throughput import build, training_loss

    module = build("pig", ctx.size, ctx.frames, ctx.text_len, ctx.tokenizer, compile=False).cuda()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-6, fused=True)
    clip = torch.randint(0, 256, (ctx.frames, ctx.image_size, ctx.image_size, 3), dtype=torch.uint8, device="cuda")

    def probe(batch: int) -> float:
        torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            ids = torch.randint(2, 200, (batch, ctx.text_len), device="cuda")
            inputs = module.on_after_batch_transfer({"frames": clip.expand(batch, *clip.shape).contiguous(),
                                                     "input_ids": ids, "attention_mask": torch.ones_like(ids)}, 0)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = training_loss(module, inputs)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30

    fits, failed, why, batch = {}, None, "", ctx.batches[0]
    while batch <= (64 if ctx.dry else 4096):
        try:
            fits[batch] = probe(batch)
        except (torch.OutOfMemoryError, RuntimeError) as exc:  # cuBLAS/cuDNN workspaces fail as RuntimeError
            failed, why = batch, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            break
        finally:
            optimizer.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
        batch *= 2
    if failed and fits:  # one step of bisection between the largest that fits and the first that does not
        middle = (max(fits) + failed) // 2
        try:
            fits[middle] = probe(middle)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            failed, why = middle, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        finally:
            optimizer.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
    sizes = sorted(fits)
    per_clip = ((fits[sizes[-1]] - fits[sizes[-2]]) / (sizes[-1] - sizes[-2])) if len(sizes) > 1 else None
    res = {"peak_gib": fits, "largest": sizes[-1] if sizes else None, "first_oom": failed, "why": why,
           "gib_per_clip": per_clip,
           "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30}
    lines = [f"PIG {ctx.size}, {ctx.frames} frames, bf16 autocast, fused AdamW, 3 steps per probe, "
             "`PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`.", "", "| batch | peak memory (GiB) |", "|---|---|"]
    lines += [f"| {b} | {fits[b]:.1f} |" for b in sizes]
    lines += ["", f"Largest batch that fits: **{res['largest']}**" + (f" (first out of memory: {failed})" if failed else
                                                                       " (no probe ran out of memory)")
              + (f"; {per_clip:.3f} GiB per clip." if per_clip else ".")]
    return res, lines


# ----- 8 ---------------------------------------------------------------------------------------
def _loader_rate(loader, epochs: int = 1) -> tuple[float, int]:
    """clips/s over whole rounds of the workers (one batch each), after the first round (their
    start-up), over ``epochs`` epochs (persistent workers carry on)."""
    workers = max(1, getattr(loader, "num_workers", 0))
    total = len(loader) * epochs
    stop = workers + ((total - workers) // workers) * workers
    batches = (batch for _ in range(epochs) for batch in loader)
    start, clips = time.perf_counter(), 0
    for i, batch in enumerate(batches):
        if i == workers:
            start, clips = time.perf_counter(), 0
        if i == stop:
            break
        clips += batch["frames"].shape[0]
    return clips / max(time.perf_counter() - start, 1e-9), clips


def _write_video(job: tuple) -> None:
    from loader_throughput import write_videos
    path, seconds, seed = job
    write_videos({250: path}, 320, 240, seconds, seed=seed)


def loader(ctx: Context):
    ctx.need("av", "litdata", "simplejpeg")
    import logging

    from concurrent.futures import ProcessPoolExecutor

    from pig_lightning.data.datamodule import VideoTextDataModule
    from pig_lightning.data.optimized.optimize import optimize_dataset
    from pig_lightning.data.optimized.streaming import OptimizedDatasets
    from pig_lightning.data.source import AnnotationFiles
    from pig_lightning.data.sources.annotations import VideoRecord, write_jsonl

    logging.getLogger("litdata").setLevel(logging.WARNING)
    n_videos, copies, seconds, size = (2, 8, 1, 32) if ctx.dry else (8, 64, 15, 224)
    videos = ctx.work / "videos"
    start = time.perf_counter()
    videos.mkdir(parents=True, exist_ok=True)
    jobs = [(videos / f"v{i}.mp4", seconds, i) for i in range(n_videos)]
    if ctx.dry:  # two 1-second videos: a pool's start-up would cost more
        list(map(_write_video, jobs))
    else:  # spawned, not forked: a fork of this threaded process (torch, the stages before) can deadlock
        with ProcessPoolExecutor(min(n_videos, os.cpu_count() or 1), mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_write_video, jobs))
    records = [VideoRecord(f"v{i}_{c}", str(videos / f"v{i}.mp4"), (f"clip {i} copy {c}",))
               for c in range(copies) for i in range(n_videos)]
    annotations = write_jsonl(records, ctx.work / "loader_train.jsonl")
    summary = optimize_dataset(str(annotations), "/", str(ctx.work / "optimized"), frames_per_video=32 if not ctx.dry
                               else 8, image_size=size, num_workers=1 if ctx.dry else max(1, min(14, os.cpu_count() or 1)),
                               part_size=len(records))
    prepare_seconds = time.perf_counter() - start
    common = dict(tokenizer=ctx.tokenizer, num_frames=ctx.frames, image_size=size, max_text_length=ctx.text_len,
                  batch_size=ctx.batches[0] // 2 or 1)
    sources = {"mp4 files": lambda: AnnotationFiles("/", train_annotations=str(annotations)),
               "optimized (litdata)": lambda: OptimizedDatasets(train_dir=str(ctx.work / "optimized"))}
    rates = {}
    for name, source in sources.items():
        for workers in ctx.workers:
            dm = VideoTextDataModule(source(), num_workers=workers, **common)
            dm.setup("fit")
            epochs = 4 if name.startswith("optimized") and not ctx.dry else 1  # seconds, not a fraction of one
            rates[f"{name}, {workers} workers"] = _loader_rate(dm.train_dataloader(), epochs)[0]
            del dm
    gpu = ctx.results.get(4, {}).get("runs", {}).get(f"pig_{ctx.batches[0]}", {})
    gpu_rate = gpu.get("clips_per_s") if gpu.get("status") == "ok" else None
    res = {"rates": rates, "gpu_clips_per_s": gpu_rate, "prepare_seconds": prepare_seconds,
           "optimized_mb_per_clip": summary["bytes_per_video"] / 1e6}
    lines = [f"{len(records)} training records ({n_videos} MSR-VTT-like mp4 files of {seconds} s, 320x240, listed "
             f"{copies} times); clips of {ctx.frames} frames, {size} px, uint8, captions tokenised; the optimized "
             f"dataset written here ({prepare_seconds:.0f} s with the videos, "
             f"{res['optimized_mb_per_clip']:.2f} MB per clip).", "", "| source | clips/s | ÷ GPU at batch "
             f"{ctx.batches[0]} |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / gpu_rate:.2f} |" if gpu_rate else f"| {k} | {v:.1f} | n/a |"
              for k, v in rates.items()]
    if gpu_rate:
        lines += ["", f"The GPU trains PIG at {gpu_rate:.0f} clips/s (stage 4); the loader keeps up when the ratio is ≥ 1."]
    return res, lines


# ----- 9 ---------------------------------------------------------------------------------------
def _fitted_trainer(ctx: Context, steps: int, batch: int):
    import lightning as L
    from torch.utils.data import DataLoader
    from train_throughput import RandomClips, build, collate

    module = build("pig", ctx.size, ctx.frames, ctx.text_len, ctx.tokenizer, compile=False)
    data = RandomClips(steps * batch, ctx.frames, ctx.image_size, ctx.text_len)
    trainer = L.Trainer(accelerator=ctx.device.type, devices=1, precision=ctx.precision, max_steps=steps,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=batch, collate_fn=collate))
    return trainer, module


def checkpoint(ctx: Context):
    from pig_lightning.module import RetrievalModule
    from train_throughput import build

    trainer, module = _fitted_trainer(ctx, steps=1, batch=ctx.batches[0] // 4 or 1)
    template = build("pig", ctx.size, ctx.frames, ctx.text_len, ctx.tokenizer, compile=False).tower
    res = {}
    for kind, weights_only in (("full", False), ("weights-only", True)):
        path = ctx.work / f"{kind}.ckpt"
        start = time.perf_counter()
        trainer.save_checkpoint(path, weights_only=weights_only)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        save = time.perf_counter() - start
        start = time.perf_counter()
        torch.load(path, map_location="cpu", weights_only=False)
        read = time.perf_counter() - start
        start = time.perf_counter()
        # built in Python, the module records no tower recipe: a fresh tower is given (as `load_model`
        # builds one from a config-built checkpoint's recipe), then its state is loaded
        RetrievalModule.load_from_checkpoint(path, map_location=ctx.device, tower=copy.deepcopy(template))
        rebuild = time.perf_counter() - start
        res[kind] = {"gib": path.stat().st_size / 2**30, "save_s": save, "torch_load_s": read, "rebuild_s": rebuild}
        path.unlink()
    res["params_m"] = sum(p.numel() for p in module.parameters()) / 1e6
    lines = [f"PIG {ctx.size} ({res['params_m']:.1f} M parameters) after one AdamW step; saved with "
             "`trainer.save_checkpoint` and fsynced, read with `torch.load`, rebuilt (a new tower + "
             "`RetrievalModule.load_from_checkpoint`).", "",
             "| checkpoint | size (GiB) | save (s) | torch.load (s) | rebuild (s) |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['gib']:.3f} | {v['save_s']:.2f} | {v['torch_load_s']:.2f} | {v['rebuild_s']:.2f} |"
              for k, v in res.items() if isinstance(v, dict)]
    return res, lines


# ----- 10 --------------------------------------------------------------------------------------
def _eval_collate(items: list[dict]) -> dict:
    """``train_throughput.collate`` plus the caption indices evaluation needs (one caption a video)."""
    from train_throughput import collate

    batch = collate(items)
    return {**batch, "text_index": batch["video_index"]}


def validation(ctx: Context):
    from torch.utils.data import DataLoader
    from train_throughput import RandomClips

    n_videos = 32 if ctx.dry else 1000
    trainer, module = _fitted_trainer(ctx, steps=1, batch=ctx.batches[0] // 4 or 1)
    module.hparams.dsl = True
    loader_ = DataLoader(RandomClips(n_videos, ctx.frames, ctx.image_size, ctx.text_len),
                         batch_size=ctx.batches[0] * 2, collate_fn=_eval_collate, num_workers=ctx.train_workers,
                         pin_memory=ctx.cuda)
    start = time.perf_counter()
    metrics = trainer.validate(module, dataloaders=loader_, verbose=False)[0]
    if ctx.cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    step = ctx.results.get(4, {}).get("runs", {}).get(f"pig_{ctx.batches[0]}", {})
    res = {"videos": n_videos, "seconds": seconds, "metrics": sorted(metrics),
           "has_dsl": any("dsl" in k for k in metrics)}
    lines = [f"One validation of {n_videos} videos (one caption each, batch {ctx.batches[0] * 2}; embedding, "
             f"gathering, exact ranks, DSL): {seconds:.1f} s; {len(metrics)} metrics logged"
             f"{' including DSL' if res['has_dsl'] else ''}."]
    if step.get("status") == "ok":
        res["fifty_steps_s"] = 50 * step["step"]
        res["validation_over_50_steps"] = seconds / res["fifty_steps_s"]
        lines.append(f"50 training steps at batch {ctx.batches[0]} (stage 4): {res['fifty_steps_s']:.1f} s; the "
                     f"validation costs **{res['validation_over_50_steps']:.2f}×** that (a recipe validating every 50 "
                     "steps spends this fraction on it).")
    if not res["has_dsl"]:
        raise AssertionError(f"validation logged no DSL metric: {sorted(metrics)}")
    return res, lines


# compile last: the slowest and least predictable stage must not crowd out the others
RUN_ORDER = (1, 2, 3, 4, 5, 7, 9, 10, 8, 6)

STAGES = [  # (title, time limit in seconds, function); numbered from 1, run in RUN_ORDER
    ("environment", 30, environment),
    ("tiny fit and host syncs", 90, tiny_fit_and_syncs),
    ("SDPA flash attention", 20, sdpa_flash),
    ("step time, eager", 120, step_time),
    ("MFU and fused AdamW", 45, mfu),
    ("torch.compile", 150, compile_step),
    ("largest batch", 60, largest_batch),
    ("loader", 75, loader),
    ("checkpoint", 60, checkpoint),
    ("validation", 40, validation),
]
