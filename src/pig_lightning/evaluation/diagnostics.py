"""Does a hybrid tower's offline query depend on the video? Diagnostics at every evaluation.

PIG stores one vector per video, pooled by a pseudo-query that its generator writes from the
video alone. A low reconstruction loss does not show that this query carries the video: when a
data set's captions crowd into a narrow cone, a *constant* vector reaches a high cosine with every
caption, and the tower is then one fixed pooling. The authors' release logs the check that tells
(``text2generated_text``); so do we, from the embeddings an evaluation already holds
(METHOD.md §8):

* ``diag/text2pseudo_query/R@1``: text -> video retrieval with the pseudo-queries standing in for
  the videos (chance: 100 / number of videos);
* ``diag/pseudo_query/cos_own``, ``cos_other``, ``cos_gap``: the mean cosine of a caption with its
  own video's pseudo-query, with the other videos' (mean over them), and the difference; about 0
  when the pseudo-query ignores the video;
* ``diag/text2video_cls/R@1``: the same retrieval with the un-fused video CLS (what the two-tower
  CLIP-ViP would store), against which the fused vector's gain is read.

Computed from L2-normalised embeddings, without building a texts x videos matrix.
"""

from __future__ import annotations

import torch

from pig_lightning.evaluation.metrics import EmbeddingSimilarity, text_to_video_ranks


def offline_query_diagnostics(texts: torch.Tensor, text_video: torch.Tensor,
                              extras: dict[str, torch.Tensor]) -> dict[str, float]:
    """``texts [M, D]`` and every ``extras[name] [N, D]`` normalised, ``text_video [M]`` the
    position of each text's video among the N; the metrics named in the module docstring for
    the extras given (``pseudo_query``, ``video_cls``)."""
    metrics: dict[str, float] = {}
    for name, videos in extras.items():
        ranks = text_to_video_ranks(EmbeddingSimilarity(texts, videos.to(texts.dtype)), text_video)
        metrics[f"diag/text2{name}/R@1"] = float((ranks <= 1).double().mean() * 100)
    query = extras.get("pseudo_query")
    if query is not None and len(query) > 1:
        query = query.to(texts.dtype)
        own = (texts * query[text_video]).sum(dim=-1)  # [M]
        # sum over all videos of cos(text, query_j) = text . (sum_j query_j): linear, no matrix
        other = (texts @ query.sum(dim=0) - own) / (len(query) - 1)
        metrics["diag/pseudo_query/cos_own"] = float(own.mean())
        metrics["diag/pseudo_query/cos_other"] = float(other.mean())
        metrics["diag/pseudo_query/cos_gap"] = float((own - other).mean())
    return metrics
