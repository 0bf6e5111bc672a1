"""Offline-query diagnostics against a naive reference, and the cases they exist to tell apart."""

import torch
import torch.nn.functional as F

from pig_lightning.evaluation.diagnostics import offline_query_diagnostics
from pig_lightning.evaluation.distributed import EvaluationCollector, evaluate


def _data(seed: int = 0, videos: int = 12, per_video: int = 3, dim: int = 16):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(videos, dim, generator=g), dim=-1)
    text_video = torch.arange(videos).repeat_interleave(per_video)
    texts = F.normalize(centres[text_video] + 0.6 * torch.randn(len(text_video), dim, generator=g), dim=-1)
    return centres, texts, text_video


def test_matches_a_naive_reference():
    centres, texts, text_video = _data()
    query = F.normalize(centres + 0.8 * torch.randn(centres.shape, generator=torch.Generator().manual_seed(1)), dim=-1)
    got = offline_query_diagnostics(texts, text_video, {"pseudo_query": query, "video_cls": centres})
    cos = texts @ query.T  # the matrix the function avoids building
    own = cos[torch.arange(len(texts)), text_video]
    others = (cos.sum(1) - own) / (len(query) - 1)
    assert abs(got["diag/pseudo_query/cos_own"] - own.mean().item()) < 1e-6
    assert abs(got["diag/pseudo_query/cos_other"] - others.mean().item()) < 1e-6
    assert abs(got["diag/pseudo_query/cos_gap"] - (own - others).mean().item()) < 1e-6
    for name, videos in (("pseudo_query", query), ("video_cls", centres)):
        sim = texts @ videos.T
        best = (sim >= sim[torch.arange(len(texts)), text_video][:, None]).sum(1) == 1
        assert abs(got[f"diag/text2{name}/R@1"] - 100 * best.double().mean().item()) < 1e-9


def test_a_constant_query_is_told_from_one_that_follows_the_video():
    centres, texts, text_video = _data(seed=2)
    constant = F.normalize(torch.ones(len(centres), centres.shape[1]), dim=-1)
    flat = offline_query_diagnostics(texts, text_video, {"pseudo_query": constant})
    assert abs(flat["diag/pseudo_query/cos_gap"]) < 1e-6
    assert flat["diag/text2pseudo_query/R@1"] == 0.0  # every video ties: ranks are pessimistic
    follows = offline_query_diagnostics(texts, text_video, {"pseudo_query": centres})
    assert follows["diag/pseudo_query/cos_gap"] > 0.25 and follows["diag/text2pseudo_query/R@1"] > 40  # chance: 8.3


def test_evaluate_adds_them_when_a_tower_hands_extras_and_only_then():
    centres, texts, text_video = _data(seed=3, videos=6, per_video=2)
    def collect(with_extras: bool) -> EvaluationCollector:
        collected = EvaluationCollector()
        for half in (slice(0, 3), slice(3, 6)):  # two batches, as a dataloader gives them
            ids = torch.arange(6)[half]
            mine = (text_video[:, None] == ids[None]).any(1)
            batch = {"video_index": ids, "text_index": torch.nonzero(mine)[:, 0],
                     "text_video": text_video[mine] - ids[0]}
            extras = {"pseudo_query": centres[half], "video_cls": centres[half]} if with_extras else None
            collected.add(batch, centres[half], texts[mine], extras)
        return collected
    plain, _ = evaluate(collect(False), lambda t, v: t @ v.T, "two-tower", "cpu")
    assert not any(k.startswith("diag/") for k in plain)
    metrics, _ = evaluate(collect(True), lambda t, v: t @ v.T, "hybrid", "cpu")
    assert metrics["diag/text2video_cls/R@1"] == metrics["t2v/R@1"]  # the same vectors stored
    assert metrics["diag/text2pseudo_query/R@1"] == metrics["t2v/R@1"]
