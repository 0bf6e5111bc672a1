"""Rank-based retrieval metrics (the functional core).

Conventions of this field, made explicit:

* Text -> video: each text ranks all videos; the rank of its own video is
  ``1 + #(other videos scoring >= the true one)``: **ties count against the positive**, so a
  constant similarity matrix gives the worst rank, never a lucky R@1.
* Video -> text with several captions per video (MSR-VTT full, MSVD, VATEX): video ``v``
  scores caption group ``u`` (the captions of video ``u``) by the best of them,
  ``max_c sim[c, v]``, and the rank of its own group is computed as above
  (``v2t_protocol="group"``). ``"caption"`` ranks *single* captions instead: the rank of
  ``v``'s best own caption among all captions, where other captions of ``v`` do not count.
  Both agree when every video has one caption.
* R@K in percent, MdR = median rank (the mean of the two middle ranks for an even count,
  as ``numpy.median``), MnR = mean rank.

torchmetrics' retrieval classes keep every (query, item) pair and have neither MdR/MnR nor
the multi-caption protocol, hence this small core; it is tested against naive loops.

Ranks are computed in blocks of rows (text->video) and of columns (video->text), from a
similarity matrix or straight from embeddings and a tower's ``score``, so the full matrix
never has to exist: a 100k x 100k evaluation needs a few hundred MB, not 40 GB.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RECALL_KS = (1, 5, 10)


class MatrixSimilarity:
    """Blocks of a similarity matrix that is already in memory."""

    def __init__(self, sim: torch.Tensor):
        if sim.ndim != 2:
            raise ValueError(f"sim must be [num_texts, num_videos], got shape {tuple(sim.shape)}")
        self.sim = sim
        self.num_texts, self.num_videos = sim.shape
        self.device = sim.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self.sim[start:stop]

    def cols(self, start: int, stop: int) -> torch.Tensor:
        return self.sim[:, start:stop]


class EmbeddingSimilarity:
    """Blocks of ``score(text_emb, video_emb)`` computed on demand (the matrix is never built)."""

    def __init__(self, text_emb: torch.Tensor, video_emb: torch.Tensor,
                 score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        self.text_emb, self.video_emb = text_emb, video_emb
        self.score = score or (lambda t, v: t @ v.transpose(0, 1))
        self.num_texts, self.num_videos = text_emb.shape[0], video_emb.shape[0]
        self.device = text_emb.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self.score(self.text_emb[start:stop], self.video_emb)

    def cols(self, start: int, stop: int) -> torch.Tensor:
        return self.score(self.text_emb, self.video_emb[start:stop])


class DSLSimilarity:
    """Dual softmax (DSL / inverted softmax): ``sim * softmax(temperature * sim, over texts)``.

    It uses the statistics of *all* test queries at once, so results computed with it are
    reported under their own ``dsl/`` keys and never mixed with the plain ones. Blocks are
    computed from the base similarity after one pass for the per-video normalisers.
    """

    def __init__(self, base: "MatrixSimilarity | EmbeddingSimilarity", temperature: float = 100.0,
                 chunk_size: int = 1024):
        self.base, self.temperature = base, temperature
        self.num_texts, self.num_videos, self.device = base.num_texts, base.num_videos, base.device
        lse = [torch.logsumexp(temperature * base.cols(s, min(s + chunk_size, base.num_videos)).float(), dim=0)
               for s in range(0, base.num_videos, chunk_size)]
        self.log_norm = torch.cat(lse)  # [num_videos]

    def _apply(self, block: torch.Tensor, video_slice: slice) -> torch.Tensor:
        block = block.float()
        return block * torch.exp(self.temperature * block - self.log_norm[video_slice])

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self._apply(self.base.rows(start, stop), slice(None))

    def cols(self, start: int, stop: int) -> torch.Tensor:
        return self._apply(self.base.cols(start, stop), slice(start, stop))


Similarity = MatrixSimilarity | EmbeddingSimilarity | DSLSimilarity


def _source(sim: torch.Tensor | Similarity) -> Similarity:
    return MatrixSimilarity(sim) if isinstance(sim, torch.Tensor) else sim


def _check(source: Similarity, text_video: torch.Tensor) -> torch.Tensor:
    text_video = torch.as_tensor(text_video, device=source.device).long()
    if text_video.shape != (source.num_texts,):
        raise ValueError(f"text_video must have one entry per text ({source.num_texts}), got {tuple(text_video.shape)}")
    if source.num_texts == 0 or source.num_videos == 0:
        raise ValueError("empty similarity matrix: no texts or no videos")
    if text_video.min() < 0 or text_video.max() >= source.num_videos:
        raise ValueError(f"text_video holds video indices outside [0, {source.num_videos - 1}]")
    return text_video


def _block(block: torch.Tensor) -> torch.Tensor:
    block = block.float()
    if torch.isnan(block).any():
        raise ValueError("sim contains NaN: the embeddings are broken (check for a diverged run)")
    return block


def text_to_video_ranks(sim: torch.Tensor | Similarity, text_video: torch.Tensor,
                        chunk_size: int = 1024) -> torch.Tensor:
    """``[num_texts]`` 1-based rank of each text's video among all videos (ties pessimistic)."""
    source = _source(sim)
    text_video = _check(source, text_video)
    ranks = []
    for start in range(0, source.num_texts, chunk_size):
        stop = min(start + chunk_size, source.num_texts)
        block = _block(source.rows(start, stop))
        positive = block.gather(1, text_video[start:stop, None])
        # >= counts the positive itself once: that is the "1 +" of the rank.
        ranks.append((block >= positive).sum(dim=1))
    return torch.cat(ranks)


def video_to_text_ranks(sim: torch.Tensor | Similarity, text_video: torch.Tensor, protocol: str = "group",
                        chunk_size: int = 1024) -> torch.Tensor:
    """``[num_videos]`` 1-based rank of each video's own captions (see module docstring).

    Videos without any caption cannot be ranked and raise an error.
    """
    if protocol not in ("group", "caption"):
        raise ValueError(f"unknown video->text protocol {protocol!r}; use 'group' or 'caption'")
    source = _source(sim)
    text_video = _check(source, text_video)
    num_videos = source.num_videos
    counts = torch.bincount(text_video, minlength=num_videos)
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten()[:5].tolist()
        raise ValueError(f"videos {missing} have no caption: video->text ranks are undefined")
    ranks = []
    for start in range(0, num_videos, chunk_size):
        stop = min(start + chunk_size, num_videos)
        videos = torch.arange(start, stop, device=source.device)
        ranks.append(video_block_ranks(_block(source.cols(start, stop)), text_video, videos, num_videos, protocol))
    return torch.cat(ranks)


def video_block_ranks(block: torch.Tensor, text_video: torch.Tensor, videos: torch.Tensor, num_videos: int,
                      protocol: str = "group") -> torch.Tensor:
    """Video->text ranks of the videos ``videos [c]`` from their columns ``block [num_texts, c]``.

    Every text is in ``block``, so the ranks of a set of videos need nothing else: this is
    what lets a process rank the videos it holds without the others' (sharded evaluation).
    """
    c = block.shape[1]
    if protocol == "group":
        # group_score[u, j] = max over captions of video u of sim[caption, videos[j]]
        group_score = torch.full((num_videos, c), float("-inf"), device=block.device)
        group_score.scatter_reduce_(0, text_video[:, None].expand_as(block), block, reduce="amax")
        positive = group_score[videos, torch.arange(c, device=block.device)]
        return (group_score >= positive[None, :]).sum(dim=0)
    own = text_video[:, None] == videos[None, :]
    positive = block.masked_fill(~own, float("-inf")).amax(dim=0)  # best own caption per video
    return ((block >= positive[None, :]) & ~own).sum(dim=0) + 1


def summarize_ranks(ranks: torch.Tensor, prefix: str) -> dict[str, float]:
    ranks = ranks.double()
    out = {f"{prefix}/R@{k}": float((ranks <= k).double().mean() * 100) for k in RECALL_KS}
    ordered = ranks.sort().values
    n = ordered.numel()
    out[f"{prefix}/MdR"] = float(ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2)
    out[f"{prefix}/MnR"] = float(ranks.mean())
    return out


def retrieval_ranks(
    sim: torch.Tensor | Similarity, text_video: torch.Tensor, v2t_protocol: str = "group", chunk_size: int = 1024
) -> dict[str, torch.Tensor]:
    """Per-query ranks: ``{"t2v": [num_texts], "v2t": [num_videos]}``."""
    return {
        "t2v": text_to_video_ranks(sim, text_video, chunk_size),
        "v2t": video_to_text_ranks(sim, text_video, v2t_protocol, chunk_size),
    }


def retrieval_metrics(
    sim: torch.Tensor | Similarity, text_video: torch.Tensor, v2t_protocol: str = "group", chunk_size: int = 1024
) -> dict[str, float]:
    """R@1/5/10, MdR, MnR for text->video (``t2v/``) and video->text (``v2t/``).

    ``sim`` is a ``[num_texts, num_videos]`` matrix or an :class:`EmbeddingSimilarity`;
    ``text_video[i]`` is the video index of text i.
    """
    ranks = retrieval_ranks(sim, text_video, v2t_protocol, chunk_size)
    return {**summarize_ranks(ranks["t2v"], "t2v"), **summarize_ranks(ranks["v2t"], "v2t")}
