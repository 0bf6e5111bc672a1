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
"""

from __future__ import annotations

import torch

RECALL_KS = (1, 5, 10)


def _check(sim: torch.Tensor, text_video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if sim.ndim != 2:
        raise ValueError(f"sim must be [num_texts, num_videos], got shape {tuple(sim.shape)}")
    text_video = torch.as_tensor(text_video, device=sim.device).long()
    if text_video.shape != (sim.shape[0],):
        raise ValueError(f"text_video must have one entry per text ({sim.shape[0]}), got {tuple(text_video.shape)}")
    if sim.numel() == 0:
        raise ValueError("empty similarity matrix")
    if text_video.min() < 0 or text_video.max() >= sim.shape[1]:
        raise ValueError(f"text_video holds video indices outside [0, {sim.shape[1] - 1}]")
    if torch.isnan(sim).any():
        raise ValueError("sim contains NaN: the embeddings are broken (check for a diverged run)")
    return sim.float(), text_video


def text_to_video_ranks(sim: torch.Tensor, text_video: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
    """``[num_texts]`` 1-based rank of each text's video among all videos (ties pessimistic)."""
    sim, text_video = _check(sim, text_video)
    ranks = []
    for start in range(0, sim.shape[0], chunk_size):
        block = sim[start : start + chunk_size]
        target = text_video[start : start + chunk_size]
        positive = block.gather(1, target[:, None])
        # >= counts the positive itself once: that is the "1 +" of the rank.
        ranks.append((block >= positive).sum(dim=1))
    return torch.cat(ranks)


def video_to_text_ranks(
    sim: torch.Tensor, text_video: torch.Tensor, protocol: str = "group"
) -> torch.Tensor:
    """``[num_videos]`` 1-based rank of each video's own captions (see module docstring).

    Videos without any caption cannot be ranked and raise an error.
    """
    sim, text_video = _check(sim, text_video)
    num_videos = sim.shape[1]
    counts = torch.bincount(text_video, minlength=num_videos)
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten()[:5].tolist()
        raise ValueError(f"videos {missing} have no caption: video->text ranks are undefined")
    if protocol == "group":
        # group_score[u, v] = max over captions c of video u of sim[c, v]
        group_score = torch.full((num_videos, num_videos), float("-inf"), device=sim.device)
        group_score.scatter_reduce_(0, text_video[:, None].expand_as(sim), sim, reduce="amax")
        positive = group_score.diagonal()
        return (group_score >= positive[None, :]).sum(dim=0)
    if protocol == "caption":
        own = text_video[:, None] == torch.arange(num_videos, device=sim.device)[None, :]
        positive = sim.masked_fill(~own, float("-inf")).amax(dim=0)  # best own caption per video
        others = (sim >= positive[None, :]) & ~own
        return others.sum(dim=0) + 1
    raise ValueError(f"unknown video->text protocol {protocol!r}; use 'group' or 'caption'")


def summarize_ranks(ranks: torch.Tensor, prefix: str) -> dict[str, float]:
    ranks = ranks.double()
    out = {f"{prefix}/R@{k}": float((ranks <= k).double().mean() * 100) for k in RECALL_KS}
    out[f"{prefix}/MdR"] = float(ranks.median() if ranks.numel() % 2 else ranks.quantile(0.5))
    out[f"{prefix}/MnR"] = float(ranks.mean())
    return out


def retrieval_metrics(
    sim: torch.Tensor, text_video: torch.Tensor, v2t_protocol: str = "group"
) -> dict[str, float]:
    """R@1/5/10, MdR, MnR for text->video (``t2v/``) and video->text (``v2t/``).

    ``sim`` is ``[num_texts, num_videos]``; ``text_video[i]`` is the video index of text i.
    """
    out = summarize_ranks(text_to_video_ranks(sim, text_video), "t2v")
    out.update(summarize_ranks(video_to_text_ranks(sim, text_video, v2t_protocol), "v2t"))
    return out
