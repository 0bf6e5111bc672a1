"""The LightningModule: training step, evaluation loop and optimiser for any tower."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import logging
import warnings

import lightning as L
import torch
import torch.distributed as dist
from transformers import get_cosine_schedule_with_warmup

from pig_lightning.settings import DataSettings
from pig_lightning.weights import checkpoint_file
from pig_lightning.data.video.transforms import clip_normalise
from pig_lightning.evaluation.distributed import EvaluationCollector, evaluate
from pig_lightning.evaluation.report import write_report
from pig_lightning.evaluation.distributed import unique_first as _unique_first  # noqa: F401 (tests, callers)
from pig_lightning.losses import symmetric_infonce
from pig_lightning.models.compiled import compile_tower
from pig_lightning.models.towers import Tower
from pig_lightning.nonfinite import (NonFiniteLossError, PendingCheck, StepPart, batch_video_ids, describe,
                                     nonfinite_flag)
from pig_lightning.weights.folder import read_weights

log = logging.getLogger(__name__)
# Pixels are converted in this module's on_after_batch_transfer on purpose (for any loader, with or
# without a data module): Lightning's notice that a data module is attached too is noise here.
warnings.filterwarnings("ignore", message="You have overridden `on_after_batch_transfer` in `LightningModule` but",
                        category=UserWarning)


def fused_adamw(parameters) -> bool | None:
    """``True`` when every trainable parameter is on a CUDA device: AdamW then updates them all in a
    few fused kernels (its default, ``foreach``, launches several per parameter group and is ~10 %
    of a B/32 step). ``None`` elsewhere: the default, so CPU runs compute as they always did."""
    trainable = [p for p in parameters if p.requires_grad]
    return True if trainable and all(p.is_cuda for p in trainable) else None


class RetrievalModule(L.LightningModule):
    """Text-video retrieval with an injected :class:`~pig_lightning.models.towers.Tower`.

    Args:
        tower: the method (``class_path`` / ``init_args`` in the config).
        lr: peak learning rate (AdamW), reached after the linear warm-up.
        weight_decay: AdamW weight decay for every parameter not matched by ``no_decay``.
        betas, eps: AdamW settings (reference recipe: (0.9, 0.98), 1e-6).
        warmup_ratio: fraction of all optimiser steps spent in linear warm-up, then cosine decay to 0.
        no_decay: parameter-name substrings excluded from weight decay.
        lr_multipliers: parameter-name prefix -> factor on ``lr``, e.g.
            ``{"tower.generator": 10, "tower.fusion": 10}`` for the new modules; the longest
            matching prefix wins, unmatched parameters use ``lr`` (reference: all at ``lr``).
        max_logit_scale: ``logit_scale`` (log scale) is clamped to ``[0, max_logit_scale]`` after each step.
        loss_reduction: ``"sum"`` of the two InfoNCE directions (reference) or their ``"mean"``.
        gradient_scale: ``"global_batch"``: the gradient of the global-batch loss (the gathered
            loss's backward sums over ranks, DDP averages), the same on any number of processes.
            ``"horovod"``: that gradient divided by the world size, as the authors' Horovod
            training had it (its all-gather's backward averages over ranks and its optimiser
            averages again): AdamW hardly changes, but ``gradient_clip_val`` then clips the same
            gradients as the release's clip did, and ``eps`` weighs as it did. See docs/reproducing.md.
        contrastive_weight: weight of the contrastive loss; 0 trains on the tower's other
            losses only (PIG's optional generator pre-training on image-caption pairs, METHOD.md §7).
        frozen: parameter-name prefixes that are not trained (e.g. ``["tower.backbone"]``).
        init_checkpoint: start from the weights of a Lightning checkpoint of this module (a
            previous stage) or of a model folder (``export --format model``, ``import-weights``);
            unlike ``--ckpt_path`` it does not resume the optimiser or epoch.
        v2t_protocol: video->text ranking with several captions per video, see
            :func:`pig_lightning.evaluation.video_to_text_ranks`.
        dsl: also report dual-softmax (DSL) post-processed results, under ``<stage>/dsl/...``
            keys; they use all test queries at once, so they are never mixed with the plain ones.
        write_reports: write ``<log_dir>/<stage>_report.json`` after each evaluation: metrics,
            sizes, checkpoint, config hash and the rank of the true item for every query.
        on_nonfinite_loss: ``raise`` stops at a NaN/inf loss with an error that names the global
            step, each loss term and the batch's video ids (read at the next step, or before a
            validation or checkpoint, so the GPU is not waited for each step: the bad update is
            never saved; ``pig_lightning.nonfinite``); ``skip`` leaves the weights and the
            optimiser state as they were (on every rank; the step still counts for the schedule),
            counts it (``train/nonfinite_skips``) and logs a warning.
        max_nonfinite_skips: with ``skip``, stop with the error after this many skipped steps.
        compile: ``torch.compile`` what the steps run, when the Trainer sets the model up
            (``configure_model``): the tower's ``training_outputs`` (the whole training forward; for
            PIG the backbone, token selection, pseudo-query generator and fusion are one graph),
            ``evaluation_outputs``, ``encode_videos`` and ``encode_texts``, and the backbone's
            encoders for direct callers (``pig_lightning.models.compiled``). Each compiles
            once per mode rather than once per batch size: training batches have one size (the
            training loader drops its last batch), and in evaluation (tower in eval mode) a smaller
            batch, such as a split's last, is padded up to the largest batch seen by repeating its
            last row and the outputs are cut back, so it reuses that graph; those methods compute
            each row from its own input, so padding changes no result (a larger batch later makes
            dynamo recompile once with a dynamic batch size). Weights and checkpoints are unchanged.
            Known graph break: PIG's ``token_selection: random`` ablation draws its fixed evaluation
            tokens from a seeded ``torch.Generator``, which dynamo cannot trace, so its evaluation
            runs as a few graphs with eager code between them; its training draw traces.
        compile_options: keyword arguments of ``torch.compile`` (e.g. ``{"mode": "max-autotune"}``,
            ``{"backend": "aot_eager"}``), the same for every compiled method.
        trained_settings: the data settings the weights were trained with
            (:class:`~pig_lightning.settings.DataSettings` fields), as :func:`pig_lightning.load_model`
            reads them from a checkpoint or model folder; ``index``, ``search`` and ``explain`` prepare
            videos with them. Empty for a new model (not recorded as a hyper-parameter: a checkpoint
            records the settings of the run that wrote it).
    """

    def __init__(
        self,
        tower: Tower,
        lr: float = 1e-4,
        weight_decay: float = 0.2,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        warmup_ratio: float = 0.01,
        no_decay: Sequence[str] = ("bias", "logit_scale"),
        lr_multipliers: dict[str, float] | None = None,
        max_logit_scale: float = math.log(200.0),
        loss_reduction: Literal["sum", "mean"] = "sum",
        gradient_scale: Literal["global_batch", "horovod"] = "global_batch",
        contrastive_weight: float = 1.0,
        frozen: Sequence[str] = (),
        init_checkpoint: str | None = None,
        v2t_protocol: Literal["group", "caption"] = "group",
        dsl: bool = False,
        write_reports: bool = True,
        on_nonfinite_loss: Literal["raise", "skip"] = "raise",
        max_nonfinite_skips: int = 10,
        compile: bool = False,
        compile_options: dict[str, Any] | None = None,
        trained_settings: dict[str, Any] | None = None,
    ):
        super().__init__()
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        if gradient_scale not in ("global_batch", "horovod"):
            raise ValueError(f"model.gradient_scale must be one of ('global_batch', 'horovod'), got {gradient_scale!r}")
        # Built by the CLI, the tower's class_path/init_args are recorded, so
        # `load_from_checkpoint` can rebuild it; a tower object built in Python cannot be.
        self.save_hyperparameters(ignore=["trained_settings"] + ([] if _built_from_config() else ["tower"]))
        self.tower = tower
        self.trained_settings = DataSettings.from_mapping(trained_settings).to_dict()
        self._eval = EvaluationCollector()
        # what this process embedded in the last validation (ids and embeddings), for callbacks that
        # look at it afterwards, e.g. pig_lightning.training.qualitative; replaced at each validation
        self.last_validation: EvaluationCollector | None = None
        self._nonfinite_skips = 0
        self._skipped_optimizer_state: dict | None = None
        self._skipping = False
        self._step_parts: list[StepPart] = []  # this optimiser step's batches, checked after backward
        self._pending_check: PendingCheck | None = None  # the last step's flag, read later (nonfinite.py)
        if init_checkpoint is not None:
            self._load_initial_weights(init_checkpoint)
        names = [n for n, _ in self.named_parameters()]
        for prefix in frozen:
            if not any(n == prefix or n.startswith(prefix + ".") for n in names):
                raise ValueError(f"model.frozen: no parameter name starts with {prefix!r}")
        for name, param in self.named_parameters():
            if any(name == p or name.startswith(p + ".") for p in frozen):
                param.requires_grad_(False)

    def _load_initial_weights(self, path: str) -> None:
        """Weights only (``torch.load(weights_only=True)``: a checkpoint cannot run code). Parts
        of the tower the checkpoint lacks are left to :meth:`Tower.initialise_missing`
        (e.g. PIG from a CLIP-ViP checkpoint); any other difference is an error."""
        try:
            checkpoint = read_weights(path)  # a model folder, safetensors, or torch.load(weights_only=True)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"model.init_checkpoint not found: {path}") from exc
        except pickle.UnpicklingError as exc:
            raise ValueError(
                f"model.init_checkpoint {path}: refused, it holds objects other than tensors and plain "
                f"data, and only weights are loaded (torch.load weights_only=True): {exc}"
            ) from exc
        state = checkpoint.get("state_dict", checkpoint)
        result = self.load_state_dict(state, strict=False)
        in_tower = {key.removeprefix("tower.") for key in result.missing_keys if key.startswith("tower.")}
        missing = sorted({f"tower.{key}" for key in self.tower.initialise_missing(in_tower)}
                         | {key for key in result.missing_keys if not key.startswith("tower.")})
        if missing or result.unexpected_keys:
            raise ValueError(
                f"model.init_checkpoint {path} does not fit this model: missing {missing[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}"
            )

    # ----- self-contained checkpoints (see pig_lightning.weights.checkpoint_file) -------------------------
    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's ``load_from_checkpoint``, rebuilt from what the checkpoint carries: its CLIP
        config and tokenizer files replace the paths the run used, so it loads from any folder and
        on another machine. A file that is not a pig-lightning checkpoint is named as what it is."""
        checkpoint = checkpoint_file.read_checkpoint(checkpoint_path)
        overrides = {} if "tower" in kwargs else checkpoint_file.restored_hparams(checkpoint, checkpoint_path)
        overrides["trained_settings"] = checkpoint_file.training_settings(checkpoint)  # of its training run
        overrides.update(kwargs)
        model = super().load_from_checkpoint(checkpoint_path, map_location=map_location, hparams_file=hparams_file,
                                             strict=strict, weights_only=True, **overrides)  # whatever the environment
        recorded = (checkpoint.get("hyper_parameters") or {}).get("tower")
        if "tower" not in model.hparams and isinstance(recorded, dict):
            model.hparams["tower"] = recorded  # the recipe, as a module built from the config records it
        entry = checkpoint.get(checkpoint_file.KEY)
        backbone = getattr(model.tower, "backbone", None)
        if isinstance(entry, dict) and backbone is not None:
            backbone.model_source = entry.get("model_source", backbone.model_source)  # as trained, not "config"
        return model

    def current_settings(self) -> DataSettings:
        """The data settings of this run: the attached data module's, with what the model fixes itself
        (frames, image size, caption length) on top."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return DataSettings.of_module(self)
        return DataSettings.of(datamodule).merged(DataSettings.fixed_by(self))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_previous_step()  # never keep the weights of a non-finite step
        backbone = getattr(self.tower, "backbone", None)
        if backbone is None or not hasattr(backbone, "clip"):
            return
        if getattr(self, "_tokenizer_files", None) is None:  # written once per run, not per checkpoint
            from pig_lightning.weights.hf_folder import load_tokenizer

            self._tokenizer_files = checkpoint_file.tokenizer_files(load_tokenizer(backbone.tokenizer_source))
        checkpoint[checkpoint_file.KEY] = checkpoint_file.embedded_entry(backbone, self._tokenizer_files,
                                                                         self.current_settings().to_dict())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trained = DataSettings.from_mapping(checkpoint_file.training_settings(checkpoint))
        differences = trained.training_differences(self.current_settings())
        if differences:
            log.warning("this run's data settings differ from the checkpoint's training: %s. The results are not "
                        "those of the model as trained; set them as in training (data.*) unless this is intended.",
                        "; ".join(differences))

    # ----- the tower contract -------------------------------------------------------------
    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames``: CLIP-normalised float ``[B, T, 3, H, W]``, or decoded ``uint8 [B, T, H, W, 3]``
        (e.g. stacked :func:`~pig_lightning.data.load_frames`), normalised here by ``clip_normalise``."""
        if frames.dtype == torch.uint8:
            frames = clip_normalise(frames)
        return self.tower.encode_videos(frames)

    def configure_model(self) -> None:
        """With ``compile``: compile the tower's methods and the backbone's encoders (see ``compile``).
        Instance attributes shadow the methods, so ``state_dict`` and checkpoints are untouched."""
        if not self.hparams.get("compile") or getattr(self, "_compiled", False):
            return
        compile_tower(self.tower, dict(self.hparams.get("compile_options") or {}))
        self._compiled = True

    # ----- pixels: uint8 through the loader, converted on the device ----------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Batches arrive with ``uint8 [B, T, H, W, 3]`` frames (a quarter of float32's bytes through
        worker processes and host-to-device copies); here, on the device, they become the tower's
        CLIP-normalised float ``[B, T, 3, H, W]`` (:func:`~pig_lightning.data.video.transforms.clip_normalise`),
        then the precision plugin's input dtype (e.g. bf16 for ``bf16-true``; unchanged for ``*-mixed``)."""
        if isinstance(batch, dict) and isinstance(batch.get("frames"), torch.Tensor) \
                and batch["frames"].dtype == torch.uint8:
            frames = clip_normalise(batch["frames"])
            if self._trainer is not None:
                frames = self.trainer.precision_plugin.convert_input(frames)
            batch = {**batch, "frames": frames}
        return batch

    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.tower.encode_texts(input_ids, attention_mask)

    def score(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        return self.tower.score(text_emb, video_emb)

    # ----- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.tower.training_outputs(batch["frames"], batch["input_ids"], batch["attention_mask"])
        contrastive = symmetric_infonce(out.text_emb, out.video_emb, self.tower.logit_scale,
                                        self.hparams.loss_reduction, score=self.tower.score)
        loss = self.hparams.contrastive_weight * contrastive + sum(
            out.losses.values(), torch.zeros((), device=contrastive.device)
        )
        # Whether the loss is finite is read after the backward pass (on_before_optimizer_step):
        # reading it here would drain the device queue between forward and backward at every step.
        self._step_parts.append(StepPart({"loss": loss.detach(), "contrastive": contrastive.detach(),
                                          **{k: v.detach() for k, v in out.losses.items()}},
                                         batch.get("video_index"), batch["frames"].shape[0]))
        if self.hparams.gradient_scale == "horovod":  # logged unscaled; only the gradients shrink
            return loss / (dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """After the backward pass of every (accumulated) batch, before the update: a non-finite
        loss on any rank raises (default: read at the next step, see ``pig_lightning.nonfinite``),
        or makes every rank skip this update; the step's losses are logged."""
        parts, self._step_parts = self._step_parts, []
        if not parts:
            return
        self.check_previous_step()
        flag = nonfinite_flag(torch.stack([part.terms["loss"] for part in parts]))
        if self.hparams.on_nonfinite_loss != "skip":
            self._pending_check = PendingCheck.start(flag, parts, self.global_step)
        elif bool(flag.item() > 0):  # skip: the update must know now
            self._nonfinite(parts, optimizer, self.global_step)
            return
        for part in parts:
            self.log("train/loss", part.terms["loss"], prog_bar=True, batch_size=part.batch_size)
            if len(part.terms) > 2:  # each term on its own, so their balance can be watched
                for name, value in part.terms.items():
                    if name != "loss":
                        self.log(f"train/loss_{name}", value, batch_size=part.batch_size)
        self.log("train/logit_scale", self.tower.logit_scale.detach().exp(), batch_size=parts[-1].batch_size)

    def check_previous_step(self) -> None:
        """Raise for the last step's non-finite loss, if it had one (read now: its work is done)."""
        pending, self._pending_check = self._pending_check, None
        if pending is not None and pending.nonfinite():
            self._nonfinite(pending.parts, None, pending.step)

    def on_train_epoch_end(self) -> None:
        self.check_previous_step()

    def on_train_end(self) -> None:
        self.check_previous_step()

    def _nonfinite(self, parts: list[StepPart], optimizer, step: int) -> None:
        """Raise (default), or skip this update on every rank, counted and logged.

        The backward pass has run (every rank in step): the gradients are zeroed, the optimiser
        steps at learning rate 0 (no weight decay either) and its moments are restored after it
        (:meth:`on_train_batch_end`); the step still counts for the schedule."""
        bad = next((part for part in parts if not all(bool(torch.isfinite(v).all()) for v in part.terms.values())),
                   parts[-1])  # this rank's non-finite batch (another rank's when all of these are finite)
        message = describe(step, self.global_rank, bad.terms,
                           batch_video_ids(self._trainer, bad.video_index))
        if self.hparams.on_nonfinite_loss != "skip" or self._nonfinite_skips >= self.hparams.max_nonfinite_skips:
            limit = (f" after {self._nonfinite_skips} skipped steps (model.max_nonfinite_skips)"
                     if self.hparams.on_nonfinite_loss == "skip" else "")
            raise NonFiniteLossError(f"{message}{limit}. Lower the learning rate, check these videos with "
                                     "`pig-lightning data-check`, or set model.on_nonfinite_loss: skip")
        self._nonfinite_skips += 1
        log.warning("skipping the step: %s (%d skipped so far)", message, self._nonfinite_skips)
        self.log("train/nonfinite_skips", float(self._nonfinite_skips), batch_size=bad.batch_size)
        self._skipping = True
        for param in self.parameters():
            if param.grad is not None:
                param.grad.zero_()
        # no update: learning rate 0 (weight decay too), moments restored after the step
        self._skipped_optimizer_state = {param: copy.deepcopy(state) for param, state in optimizer.state.items()}
        for group in optimizer.param_groups:
            group["lr"] = 0.0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._skipping:  # the scheduler has set the next step's learning rate already
            self._skipping = False
            optimizer = self.optimizers(use_pl_optimizer=False)
            if self._skipped_optimizer_state is not None:
                optimizer.state.clear()
                optimizer.state.update(self._skipped_optimizer_state)
                self._skipped_optimizer_state = None
        with torch.no_grad():
            self.tower.logit_scale.clamp_(0.0, self.hparams.max_logit_scale)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: (weight decay or not) x (learning-rate multiplier), each named."""
        multipliers = dict(self.hparams.lr_multipliers or {})
        names = {name for name, _ in self.named_parameters()}
        for prefix in multipliers:
            if not any(n == prefix or n.startswith(prefix + ".") for n in names):
                raise ValueError(f"model.lr_multipliers: no parameter name starts with {prefix!r}")
        groups: dict[tuple[bool, float], dict[str, Any]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            decays = not any(p in name for p in self.hparams.no_decay)
            matching = [p for p in multipliers if name == p or name.startswith(p + ".")]
            factor = float(multipliers[max(matching, key=len)]) if matching else 1.0
            group = groups.setdefault((decays, factor), {
                "params": [], "names": [], "lr": self.hparams.lr * factor,
                "weight_decay": self.hparams.weight_decay if decays else 0.0,
                "name": f"{'decay' if decays else 'no_decay'}_x{factor:g}",
            })
            group["params"].append(param)
            group["names"].append(name)
        return list(groups.values())

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            self.parameter_groups(),
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            eps=self.hparams.eps,
            fused=fused_adamw(self.parameters()),
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = math.ceil(self.hparams.warmup_ratio * total)
        scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----- evaluation: the module embeds; pig_lightning.evaluation.distributed gathers and ranks --
    def _eval_start(self) -> None:
        self._eval = EvaluationCollector()

    def _eval_step(self, batch: dict[str, torch.Tensor]) -> None:
        video_emb, extras = self.tower.evaluation_outputs(batch["frames"])
        self._eval.add(batch, video_emb, self.encode_texts(batch["input_ids"], batch["attention_mask"]), extras)

    def compute_eval_metrics(self) -> dict[str, float]:
        """Metrics over everything seen since the evaluation epoch started (all ranks)."""
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, float], dict[str, Any]]:
        collected, self._eval = self._eval, EvaluationCollector()
        return evaluate(collected, self.score, self.tower.kind, self.device, self.hparams.v2t_protocol,
                        self.hparams.dsl)

    def _eval_end(self, stage: str) -> None:
        if stage == "val":
            self.last_validation = self._eval
        metrics, per_query = self._evaluate()
        # Every rank holds the same gathered metrics: no further reduction is needed.
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False)
        if self.hparams.write_reports and self._trainer is not None and not self.trainer.sanity_checking:
            self._write_report(stage, metrics, per_query)

    def _write_report(self, stage: str, metrics: dict[str, float], per_query: dict[str, Any]) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if not self.trainer.is_global_zero or not log_dir:
            return
        write_report(log_dir, stage, metrics, per_query, hparams=dict(self.hparams), checkpoint=self.trainer.ckpt_path,
                     epoch=self.current_epoch, global_step=self.global_step, tower=type(self.tower).__name__)

    def on_validation_epoch_start(self) -> None:
        self.check_previous_step()
        self._eval_start()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Video embeddings with their dataset indices (the offline half of retrieval)."""
        return {"video_index": batch["video_index"], "video_emb": self.encode_videos(batch["frames"])}


def _built_from_config() -> bool:
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # private in Lightning; without it, never record the module object
        return False
    return _given_hyperparameters.get() is not None


