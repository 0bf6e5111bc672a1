"""The LightningModule: training step, evaluation loop and optimiser for any tower."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import logging

import lightning as L
import torch
import torch.distributed as dist
from transformers import get_cosine_schedule_with_warmup

from pig_lightning import checkpoints
from pig_lightning.atomic import write_json_atomic
from pig_lightning.evaluation import DSLSimilarity, EmbeddingSimilarity, retrieval_ranks, summarize_ranks
from pig_lightning.evaluation.metrics import video_block_ranks
from pig_lightning.losses import symmetric_infonce
from pig_lightning.models.towers import Tower
from pig_lightning.training.faults import NonFiniteLossError, batch_video_ids, describe, nonfinite_on_any_rank
from pig_lightning.weights.folder import read_weights

log = logging.getLogger(__name__)


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
            step, each loss term and the batch's video ids; ``skip`` leaves the weights and the
            optimiser state as they were (on every rank; the step still counts for the schedule),
            counts it (``train/nonfinite_skips``) and logs a warning.
        max_nonfinite_skips: with ``skip``, stop with the error after this many skipped steps.
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
    ):
        super().__init__()
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        if gradient_scale not in ("global_batch", "horovod"):
            raise ValueError(f"model.gradient_scale must be one of ('global_batch', 'horovod'), got {gradient_scale!r}")
        # Built by the CLI, the tower's class_path/init_args are recorded, so
        # `load_from_checkpoint` can rebuild it; a tower object built in Python cannot be.
        self.save_hyperparameters(ignore=[] if _built_from_config() else ["tower"])
        self.tower = tower
        self._eval: dict[str, list[torch.Tensor]] = {}
        self._nonfinite_skips = 0
        self._skipped_optimizer_state: dict | None = None
        self._skipping = False
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

    # ----- self-contained checkpoints (see pig_lightning.checkpoints) -------------------------
    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's ``load_from_checkpoint``, rebuilt from what the checkpoint carries: its CLIP
        config and tokenizer files replace the paths the run used, so it loads from any folder and
        on another machine. A file that is not a pig-lightning checkpoint is named as what it is."""
        checkpoint = checkpoints.read_checkpoint(checkpoint_path)
        overrides = {} if "tower" in kwargs else checkpoints.restored_hparams(checkpoint, checkpoint_path)
        overrides.update(kwargs)
        model = super().load_from_checkpoint(checkpoint_path, map_location=map_location, hparams_file=hparams_file,
                                             strict=strict, weights_only=True, **overrides)  # whatever the environment
        model.trained_settings = checkpoints.training_settings(checkpoint)  # data settings of its training run
        entry = checkpoint.get(checkpoints.KEY)
        backbone = getattr(model.tower, "backbone", None)
        if isinstance(entry, dict) and backbone is not None:
            backbone.model_source = entry.get("model_source", backbone.model_source)  # as trained, not "config"
        return model

    def current_settings(self) -> dict[str, Any]:
        """The data settings of this model (and of the attached data module, when there is one)."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        settings = {name: getattr(datamodule, name) for name in checkpoints.DATA_SETTINGS
                    if isinstance(getattr(datamodule, name, None), (int, str))}
        backbone = getattr(self.tower, "backbone", None)
        settings["num_frames"] = self.tower.num_frames
        if backbone is not None:
            settings["image_size"] = backbone.image_size
            settings["max_text_length"] = backbone.max_text_length
        return settings

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        backbone = getattr(self.tower, "backbone", None)
        if backbone is None or not hasattr(backbone, "clip"):
            return
        if getattr(self, "_tokenizer_files", None) is None:  # written once per run, not per checkpoint
            from pig_lightning.loading import load_tokenizer

            self._tokenizer_files = checkpoints.tokenizer_files(load_tokenizer(backbone.tokenizer_source))
        checkpoint[checkpoints.KEY] = checkpoints.embedded_entry(backbone, self._tokenizer_files,
                                                                 self.current_settings())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        differences = checkpoints.setting_differences(checkpoints.training_settings(checkpoint),
                                                      self.current_settings())
        if differences:
            log.warning("this run's data settings differ from the checkpoint's training: %s. The results are not "
                        "those of the model as trained; set them as in training (data.*) unless this is intended.",
                        "; ".join(differences))

    # ----- the tower contract -------------------------------------------------------------
    def encode_videos(self, frames: torch.Tensor) -> torch.Tensor:
        return self.tower.encode_videos(frames)

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
        batch_size = batch["frames"].shape[0]
        if nonfinite_on_any_rank(loss):
            return self._nonfinite(batch, {"loss": loss, "contrastive": contrastive, **out.losses})
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        if out.losses:  # each term on its own, so their balance can be watched
            self.log("train/loss_contrastive", contrastive, batch_size=batch_size)
            for name, value in out.losses.items():
                self.log(f"train/loss_{name}", value, batch_size=batch_size)
        self.log("train/logit_scale", self.tower.logit_scale.detach().exp(), batch_size=batch_size)
        if self.hparams.gradient_scale == "horovod":  # logged unscaled; only the gradients shrink
            return loss / (dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1)
        return loss

    def _nonfinite(self, batch: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raise (default), or skip this optimiser step on every rank, counted and logged.

        Lightning refuses a ``None`` step under DDP, so a skipped step still runs a backward pass,
        of a zero loss (zero gradients, every rank in step), and then an optimiser step at learning
        rate 0 whose moment updates are undone (:meth:`on_before_optimizer_step`)."""
        message = describe(self.global_step, self.global_rank, terms,
                           batch_video_ids(self._trainer, batch["video_index"]))
        if self.hparams.on_nonfinite_loss != "skip" or self._nonfinite_skips >= self.hparams.max_nonfinite_skips:
            limit = (f" after {self._nonfinite_skips} skipped steps (model.max_nonfinite_skips)"
                     if self.hparams.on_nonfinite_loss == "skip" else "")
            raise NonFiniteLossError(f"{message}{limit}. Lower the learning rate, check these videos with "
                                     "`pig-lightning data-check`, or set model.on_nonfinite_loss: skip")
        self._nonfinite_skips += 1
        log.warning("skipping the step: %s (%d skipped so far)", message, self._nonfinite_skips)
        self.log("train/nonfinite_skips", float(self._nonfinite_skips), batch_size=batch["frames"].shape[0])
        self._skipping = True
        trainable = [p for p in self.parameters() if p.requires_grad]
        return sum(((p * 0).sum() for p in trainable), torch.zeros((), device=self.device))

    def on_before_optimizer_step(self, optimizer) -> None:
        if self._skipping:  # no update: learning rate 0 (weight decay too), moments restored after
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
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = math.ceil(self.hparams.warmup_ratio * total)
        scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----- evaluation: videos and texts embedded once, gathered with their indices ------------
    def _eval_start(self) -> None:
        self._eval = {"video_index": [], "video_emb": [], "text_index": [], "text_video": [], "text_emb": []}

    def _eval_step(self, batch: dict[str, torch.Tensor]) -> None:
        video_emb = self.encode_videos(batch["frames"])
        text_emb = self.encode_texts(batch["input_ids"], batch["attention_mask"])
        self._eval["video_index"].append(batch["video_index"].cpu())
        self._eval["video_emb"].append(video_emb.float().cpu())
        self._eval["text_index"].append(batch["text_index"].cpu())
        self._eval["text_video"].append(batch["video_index"][batch["text_video"]].cpu())
        self._eval["text_emb"].append(text_emb.float().cpu())

    def _gathered(self) -> dict[str, torch.Tensor]:
        local = {k: torch.cat(v) for k, v in self._eval.items()}
        self._eval = {}
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts: list[dict[str, torch.Tensor]] = [None] * dist.get_world_size()  # type: ignore[list-item]
            dist.all_gather_object(parts, local)
            local = {k: torch.cat([p[k] for p in parts]) for k in local}
        return local

    def compute_eval_metrics(self) -> dict[str, float]:
        """Metrics over everything seen since the evaluation epoch started (all ranks)."""
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, float], dict[str, Any]]:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if distributed and self.tower.kind == "single-tower":
            return self._evaluate_sharded()
        data = self._gathered()
        # Distributed samplers pad with duplicates: keep the first copy of every index, in order.
        video_index, first = _unique_first(data["video_index"])
        videos = data["video_emb"][first]
        text_index, first_t = _unique_first(data["text_index"])
        texts = data["text_emb"][first_t]
        text_video = torch.searchsorted(video_index, data["text_video"][first_t]).to(self.device)
        # scored block by block: the [texts x videos] matrix is never held whole
        sim = EmbeddingSimilarity(texts.to(self.device), videos.to(self.device), self.score)
        ranks = retrieval_ranks(sim, text_video, self.hparams.v2t_protocol)
        dsl_ranks = retrieval_ranks(DSLSimilarity(sim), text_video, self.hparams.v2t_protocol) if self.hparams.dsl else None
        return self._summarise(ranks, dsl_ranks, video_index, text_index, text_video)

    def _summarise(self, ranks: dict[str, torch.Tensor], dsl_ranks: dict[str, torch.Tensor] | None,
                   video_index: torch.Tensor, text_index: torch.Tensor,
                   text_video: torch.Tensor) -> tuple[dict[str, float], dict[str, Any]]:
        metrics = {**summarize_ranks(ranks["t2v"], "t2v"), **summarize_ranks(ranks["v2t"], "v2t")}
        if dsl_ranks is not None:
            metrics.update(summarize_ranks(dsl_ranks["t2v"], "dsl/t2v"))
            metrics.update(summarize_ranks(dsl_ranks["v2t"], "dsl/v2t"))
        metrics["num_videos"] = float(len(video_index))
        metrics["num_texts"] = float(len(text_index))
        per_query = {
            "text_index": text_index.tolist(),
            "text_video_index": video_index[text_video.cpu()].tolist(),
            "t2v_rank": ranks["t2v"].tolist(),
            "video_index": video_index.tolist(),
            "v2t_rank": ranks["v2t"].tolist(),
        }
        return metrics, per_query

    def _evaluate_sharded(self) -> tuple[dict[str, float], dict[str, Any]]:
        """Single tower on several processes: texts are gathered, video token sets stay where
        they were encoded, and every process scores all texts against its own videos.

        t2v: the positive score is shared (max-reduce) and the videos scoring at least as high
        are counted on every process (sum-reduce); v2t needs only a video's own column, so each
        process ranks its videos and the ranks are gathered. Padding duplicates are scored by
        one process only (the first that holds them).
        """
        local = {k: torch.cat(v) for k, v in self._eval.items()}
        self._eval = {}
        world, rank = dist.get_world_size(), dist.get_rank()
        small = {k: local[k] for k in ("video_index", "text_index", "text_video", "text_emb")}
        parts: list[dict[str, torch.Tensor]] = [None] * world  # type: ignore[list-item]
        dist.all_gather_object(parts, small)
        text_index, first_t = _unique_first(torch.cat([p["text_index"] for p in parts]))
        texts = torch.cat([p["text_emb"] for p in parts])[first_t].to(self.device)
        text_video_global = torch.cat([p["text_video"] for p in parts])[first_t]
        video_index = torch.unique(torch.cat([p["video_index"] for p in parts]), sorted=True)
        owner: dict[int, int] = {}
        for r, part in enumerate(parts):
            for v in part["video_index"].tolist():
                owner.setdefault(v, r)
        seen: set[int] = set()
        keep = []
        for i, v in enumerate(local["video_index"].tolist()):
            if owner[v] == rank and v not in seen:
                seen.add(v)
                keep.append(i)
        keep_t = torch.tensor(keep, dtype=torch.long)
        columns = torch.searchsorted(video_index, local["video_index"][keep_t]).to(self.device)
        text_video = torch.searchsorted(video_index, text_video_global).to(self.device)
        block = self.score(texts, local["video_emb"][keep_t].to(self.device)).float()  # [M, local videos]
        ranks = self._sharded_ranks(block, text_video, columns, len(video_index), parts)
        dsl_ranks = None
        if self.hparams.dsl:  # the softmax over texts is per video column: local too
            dsl_block = block * torch.softmax(100.0 * block, dim=0)
            dsl_ranks = self._sharded_ranks(dsl_block, text_video, columns, len(video_index), parts)
        return self._summarise(ranks, dsl_ranks, video_index, text_index, text_video.cpu())

    def _sharded_ranks(self, block: torch.Tensor, text_video: torch.Tensor, columns: torch.Tensor,
                       num_videos: int, parts: list) -> dict[str, torch.Tensor]:
        positive = torch.full((block.shape[0],), float("-inf"), device=block.device)
        where = (text_video[:, None] == columns[None, :]).nonzero()  # (text, local column) pairs
        positive[where[:, 0]] = block[where[:, 0], where[:, 1]]
        dist.all_reduce(positive, op=dist.ReduceOp.MAX)
        count = (block >= positive[:, None]).sum(dim=1)
        dist.all_reduce(count, op=dist.ReduceOp.SUM)
        v2t_local = video_block_ranks(block, text_video, columns, num_videos, self.hparams.v2t_protocol)
        gathered: list = [None] * len(parts)
        dist.all_gather_object(gathered, (columns.cpu(), v2t_local.cpu()))
        v2t = torch.zeros(num_videos, dtype=torch.long)
        for cols, r in gathered:
            v2t[cols] = r
        return {"t2v": count.cpu(), "v2t": v2t}

    def _eval_end(self, stage: str) -> None:
        metrics, per_query = self._evaluate()
        # Every rank holds the same gathered metrics: no further reduction is needed.
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False)
        if self.hparams.write_reports and self._trainer is not None and not self.trainer.sanity_checking:
            self._write_report(stage, metrics, per_query)

    def _write_report(self, stage: str, metrics: dict[str, float], per_query: dict[str, Any]) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if not self.trainer.is_global_zero or not log_dir:
            return
        hparams = json.dumps(dict(self.hparams), sort_keys=True, default=str)
        report = {
            "stage": stage,
            "metrics": {k: v for k, v in metrics.items() if not k.startswith("dsl/")},
            "dsl_metrics": {k: v for k, v in metrics.items() if k.startswith("dsl/")} or None,
            "num_texts": int(metrics["num_texts"]),
            "num_videos": int(metrics["num_videos"]),
            "v2t_protocol": self.hparams.v2t_protocol,
            "checkpoint": self.trainer.ckpt_path,
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "tower": type(self.tower).__name__,
            "config_hash": hashlib.sha256(hparams.encode()).hexdigest()[:16],
            "per_query": per_query,
        }
        write_json_atomic(Path(log_dir) / f"{stage}_report.json", report)

    def on_validation_epoch_start(self) -> None:
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


def _unique_first(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique values of ``index`` and, for each, the position of its first occurrence."""
    values, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index))
    first = torch.full((len(values),), len(index), dtype=torch.long).scatter_reduce(
        0, inverse, positions, reduce="amin"
    )
    return values, first
