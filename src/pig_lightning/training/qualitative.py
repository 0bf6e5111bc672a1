"""Qualitative images in TensorBoard at each validation (issue #12).

:class:`QualitativeImages` logs, after a validation, a small fixed set of pictures beside the
curves, so that what the model does can be watched epoch by epoch:

* ``qualitative/video_<n>``: the first ``num_videos`` validation videos, their sampled frames and
  what the tower makes of them, drawn by ``explain`` (:func:`~pig_lightning.explain.explanation_figure`):
  for PIG the patches token selection chose (outlined, ranked), the fusion's attention and the
  validation captions nearest to the pseudo-query; for every tower the validation captions it
  scores highest for the video and the video's own captions;
* ``qualitative/query_<n>``: the first ``num_queries`` validation captions with their ``top_k``
  videos as thumbnail strips with scores, the true video marked (or its rank said).

Nothing is encoded again: the embeddings are the ones the validation computed
(``RetrievalModule.last_validation``) and the frames of the chosen videos are taken from the
validation batches as they pass; only the few strip videos are decoded, small, once per run.
Only global rank 0 draws, with no collective; under DDP it draws from its own share of the
validation set (the captions and videos it embedded), which the pictures say. Sanity-check
validations are skipped; without a ``TensorBoardLogger`` the callback does nothing (said once).
"""

from __future__ import annotations

import importlib.util

import logging
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from pig_lightning.data.video.transforms import clip_denormalise, clip_normalise
from pig_lightning.evaluation.distributed import unique_first

log = logging.getLogger(__name__)

TRUE_COLOUR = "#1a8c1a"
MISS_COLOUR = "#b22222"


# ----- the numbers the pictures are drawn from --------------------------------------------------
@dataclass
class Hit:
    rank: int
    video_index: int
    video_id: str
    score: float
    is_true: bool


@dataclass
class QueryRanking:
    """One query's top videos among the validation videos, and where its true video ranks
    (``1 + #`` other videos scoring at least as high, as the metrics count ties)."""

    text_index: int
    caption: str
    true_video_id: str
    true_rank: int
    num_videos: int
    hits: list[Hit]


def rank_videos(scores: torch.Tensor, video_index: torch.Tensor, video_ids: list[str], true_column: int,
                top_k: int) -> tuple[list[Hit], int]:
    """The ``top_k`` columns of one query's ``scores [N]`` as hits, and the true column's rank."""
    scores = scores.float().cpu()
    order = scores.argsort(descending=True, stable=True)[:top_k].tolist()
    hits = [Hit(rank, int(video_index[c]), video_ids[c], float(scores[c]), c == true_column)
            for rank, c in enumerate(order, start=1)]
    others = torch.cat([scores[:true_column], scores[true_column + 1:]])
    return hits, 1 + int((others >= scores[true_column]).sum())


# ----- what the validation set says about an index ----------------------------------------------
def validation_dataset(trainer: L.Trainer) -> Any:
    loaders = trainer.val_dataloaders
    if isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    return getattr(loaders, "dataset", None)


def text_captions(dataset: Any) -> list[str] | None:
    """Captions in global text order (``text_index``), when the data set has annotation records."""
    records = getattr(dataset, "records", None)
    return None if records is None else [c for record in records for c in record.captions]


def video_name(dataset: Any, index: int) -> str:
    records = getattr(dataset, "records", None)
    return records[index].video_id if records is not None else f"video {index}"


def display_frames(frames: torch.Tensor) -> np.ndarray:
    """CLIP-normalised ``[T, 3, H, W]`` back to ``uint8 [T, H, W, 3]`` for drawing."""
    return clip_denormalise(frames.detach().cpu()).numpy()


class StripFrames:
    """A few small frames per video (uniformly spaced), decoded once and kept for the run."""

    def __init__(self, size: int, per_video: int):
        self.size, self.per_video = size, per_video
        self._frames: dict[int, np.ndarray | None] = {}

    def get(self, dataset: Any, index: int) -> np.ndarray | None:
        key = (video_name(dataset, index), index)  # another validation set (validate after fit) is other videos
        if key not in self._frames:
            self._frames[key] = self._decode(dataset, index)
        return self._frames[key]

    def _decode(self, dataset: Any, index: int) -> np.ndarray | None:
        preview = getattr(dataset, "preview_frames", None)  # evaluation datasets: mp4 files or stored frames
        if preview is None:
            return None
        try:
            return preview(index, self.per_video, self.size)
        except Exception as exc:  # noqa: BLE001 - a picture without frames, never a stopped training
            log.warning("qualitative images: could not read %s for its thumbnails: %s", video_name(dataset, index), exc)
            return None


# ----- the top-k picture ------------------------------------------------------------------------
def ranking_figure(ranking: QueryRanking, strips: Mapping[int, np.ndarray | None], note: str = ""):
    """One query's top videos as rows: rank, score, id and a thumbnail strip; the true video framed
    in green, its rank said below. One axes holding every strip (matplotlib is slow per axes).
    The caller closes the figure."""
    from matplotlib.patches import Rectangle

    from pig_lightning.plotting import pyplot

    plt = pyplot()
    shown = [s for s in strips.values() if s is not None]
    height, width = (shown[0].shape[1], shown[0].shape[2] * len(shown[0])) if shown else (32, 128)
    gap = max(4, height // 6)
    rows = len(ranking.hits)
    canvas = np.full((rows * (height + gap) + gap, width, 3), 255, dtype=np.uint8)
    fig = plt.figure(figsize=(7.5, 0.75 * rows + 0.9))
    ax = fig.add_axes((0.45, 0.35 / fig.get_figheight(), 0.53, 1 - 0.85 / fig.get_figheight()))
    for row, hit in enumerate(ranking.hits):
        top = gap + row * (height + gap)
        strip = strips.get(hit.video_index)
        if strip is not None and strip.shape[1] == height:
            joined = np.concatenate(list(strip), axis=1)[:, :width]
            canvas[top : top + height, : joined.shape[1]] = joined
        colour = TRUE_COLOUR if hit.is_true else "#222222"
        ax.text(-0.04 * width, top + height / 2, f"{hit.rank}. {hit.score:+.3f}  {hit.video_id}"
                + ("\ntrue video" if hit.is_true else ""), family="monospace", fontsize=8, va="center", ha="right",
                color=colour, fontweight="bold" if hit.is_true else "normal", clip_on=False)
        if hit.is_true:
            ax.add_patch(Rectangle((-1.5, top - 2), width + 2, height + 3, fill=False, edgecolor=TRUE_COLOUR,
                                   linewidth=2.5, clip_on=False))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    title = textwrap.shorten(ranking.caption, width=90, placeholder="...")
    fig.text(0.01, 1 - 0.1 / fig.get_figheight(), f"query: {title}", fontsize=9, va="top", ha="left")
    footer = f"true video {ranking.true_video_id}: rank {ranking.true_rank} of {ranking.num_videos}"
    fig.text(0.01, 0.1 / fig.get_figheight(), footer + (f"; {note}" if note else ""), fontsize=8, va="bottom",
             ha="left", color=TRUE_COLOUR if ranking.true_rank <= rows else MISS_COLOUR)
    return fig


# ----- the callback -----------------------------------------------------------------------------
class QualitativeImages(L.Callback):
    """Log a few fixed validation videos and queries as images to TensorBoard (see the module doc).

    Args:
        enabled: ``false`` turns the callback off (``--qualitative.enabled false``).
        num_videos: the first N validation videos drawn with what the tower makes of them.
        num_queries: the first N validation captions drawn with their top videos.
        top_k: videos per query, and nearest captions per video.
        every_n_validations: draw at every n-th validation (sanity checks not counted).
        frame_size: pixels of the thumbnail frames of the top-k strips.
        frames_per_video: thumbnail frames per video in a strip.
        dpi: resolution of the logged images (a 10-inch-wide figure is 720 px at 72).
    """

    def __init__(self, enabled: bool = True, num_videos: int = 2, num_queries: int = 2, top_k: int = 5,
                 every_n_validations: int = 1, frame_size: int = 64, frames_per_video: int = 4, dpi: int = 72):
        for name, value, least in (("num_videos", num_videos, 0), ("num_queries", num_queries, 0),
                                   ("top_k", top_k, 1), ("every_n_validations", every_n_validations, 1),
                                   ("frame_size", frame_size, 8), ("frames_per_video", frames_per_video, 1),
                                   ("dpi", dpi, 10)):
            if value < least:
                raise ValueError(f"qualitative.{name} must be >= {least}, got {value}")
        self.enabled = enabled
        self.num_videos, self.num_queries, self.top_k = num_videos, num_queries, top_k
        self.every_n_validations = every_n_validations
        self.dpi = dpi
        self.strips = StripFrames(frame_size, frames_per_video)
        self.validations = 0  # counted on every rank, drawn on rank 0
        self.last_rankings: list[QueryRanking] = []
        self.last_seconds: float | None = None
        self._drawing = False
        self._captured: list[tuple[int, torch.Tensor]] = []
        self._said_no_logger = False

    # which validations are drawn
    def _logger(self, trainer: L.Trainer) -> TensorBoardLogger | None:
        found = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if found is None and not self._said_no_logger:
            log.info("qualitative images: no TensorBoardLogger, nothing is drawn")
            self._said_no_logger = True
        return found

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._captured = []
        self._drawing = False
        if not self.enabled or trainer.sanity_checking:
            return
        if importlib.util.find_spec("matplotlib") is None:
            log.warning("qualitative images need matplotlib (pip install 'pig-lightning[plots]'); none are drawn "
                        "in this run (--qualitative.enabled false silences this)")
            self.enabled = False
            return
        self.validations += 1
        due = (self.validations - 1) % self.every_n_validations == 0
        self._drawing = due and trainer.is_global_zero and self._logger(trainer) is not None

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        """Keep the frames of the first videos (as the tower saw them): they are not decoded again."""
        if not self._drawing or dataloader_idx != 0 or len(self._captured) >= self.num_videos:
            return
        frames = batch["frames"]
        if frames.dtype == torch.uint8:
            frames = clip_normalise(frames)
        for index, clip in zip(batch["video_index"].tolist(), frames):
            if len(self._captured) < self.num_videos:
                self._captured.append((int(index), clip.detach().to("cpu", copy=True)))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._drawing:
            return
        self._drawing = False
        collected = getattr(pl_module, "last_validation", None)
        if collected is None or not collected.parts["video_index"]:
            return  # nothing was validated (or a module without the hook)
        start = time.perf_counter()
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                images = self.draw(trainer, pl_module, collected.local())
        except Exception:  # noqa: BLE001 - a picture that fails must never stop a training run
            log.warning("qualitative images: drawing failed at step %d; training goes on without them",
                        trainer.global_step, exc_info=True)
            return
        finally:
            pl_module.train(was_training)
            self._captured = []
        logger = self._logger(trainer)
        for tag, image in images.items():
            logger.experiment.add_image(tag, image, global_step=trainer.global_step, dataformats="HWC")
        self.last_seconds = time.perf_counter() - start
        log.info("qualitative images: %d drawn in %.2f s (step %d)", len(images), self.last_seconds,
                 trainer.global_step)

    # the drawing (rank 0 only, no collective)
    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule, local: dict[str, torch.Tensor]
             ) -> dict[str, np.ndarray]:
        from pig_lightning.explain import explanation_figure
        from pig_lightning.plotting import figure_array

        dataset = validation_dataset(trainer)
        data = _deduplicated(local)
        all_captions = text_captions(dataset)
        captions = [all_captions[i] if all_captions is not None else f"caption {i}"
                    for i in data["text_index"].tolist()]
        note = _share_note(trainer, len(data["video_index"]))
        images = {}
        for n, (index, frames) in enumerate(self._captured, start=1):
            result = self.explain_video(pl_module, dataset, data, captions, index, frames, note)
            figure = explanation_figure(result, display_frames(frames))
            images[f"qualitative/video_{n}"] = figure_array(figure, self.dpi)
        self.last_rankings = self.rank_queries(pl_module, dataset, data, captions)
        for n, ranking in enumerate(self.last_rankings, start=1):
            strips = {hit.video_index: self.strips.get(dataset, hit.video_index) for hit in ranking.hits}
            images[f"qualitative/query_{n}"] = figure_array(ranking_figure(ranking, strips, note), self.dpi)
        return images

    def explain_video(self, pl_module: L.LightningModule, dataset: Any, data: dict[str, torch.Tensor],
                      captions: list[str], index: int, frames: torch.Tensor, note: str) -> dict[str, Any]:
        """``explain``'s numbers for one validation video, with the validation captions as the bank."""
        from pig_lightning.explain import explain_frames

        known = dict(zip(captions, data["text_emb"]))
        own = [c for c, v in zip(captions, data["text_video"].tolist()) if v == index]
        bank = list(dict.fromkeys(captions))
        tower = pl_module.tower
        query = (own or bank)[0] if tower.kind == "single-tower" and hasattr(tower, "pool") else None
        result = {"video_id": video_name(dataset, index), "image_size": int(frames.shape[-1]),
                  "caption_bank": f"the {len(bank)} validation captions" + (f", {note}" if note else "")}
        result.update(explain_frames(pl_module, None, frames, bank, own, query, self.top_k, text_embeddings=known))
        return result

    def rank_queries(self, pl_module: L.LightningModule, dataset: Any, data: dict[str, torch.Tensor],
                     captions: list[str]) -> list[QueryRanking]:
        """The first ``num_queries`` captions (by text index) ranked against every video embedded."""
        device = pl_module.device
        video_index = data["video_index"]
        video_ids = [video_name(dataset, i) for i in video_index.tolist()]
        videos = data["video_emb"].to(device)
        rankings = []
        for q in range(min(self.num_queries, len(captions))):
            scores = pl_module.score(data["text_emb"][q : q + 1].to(device), videos)[0]
            true_column = int(torch.searchsorted(video_index, data["text_video"][q]))
            hits, true_rank = rank_videos(scores, video_index, video_ids, true_column, self.top_k)
            rankings.append(QueryRanking(int(data["text_index"][q]), captions[q], video_ids[true_column], true_rank,
                                         len(video_ids), hits))
        return rankings


def _deduplicated(local: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One row per video and per caption, sorted by index (a distributed sampler pads with repeats)."""
    video_index, first = unique_first(local["video_index"])
    text_index, first_t = unique_first(local["text_index"])
    return {"video_index": video_index, "video_emb": local["video_emb"][first],
            "text_index": text_index, "text_emb": local["text_emb"][first_t],
            "text_video": local["text_video"][first_t]}


def _share_note(trainer: L.Trainer, num_videos: int) -> str:
    return f"rank 0's share of the validation set ({num_videos} videos)" if trainer.world_size > 1 else ""
