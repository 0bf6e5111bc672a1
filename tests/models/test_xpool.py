"""X-Pool, the single tower, against answers computed another way: the training loss pair by pair,
the pooling of one-hot frames by hand, and the evaluation ranks by a naive double loop."""

import math

import pytest
import torch
import torch.nn.functional as F

from pig_lightning.losses import symmetric_infonce
from pig_lightning.models import CrossAttentionPooling, FrameCLIPBackbone, XPoolTower
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP


@pytest.fixture()
def tower(tokenizer_dir):
    torch.manual_seed(0)
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    tower = XPoolTower(backbone, num_frames=3)
    with torch.no_grad():  # away from the identity start, so every projection matters
        for p in tower.pool.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return tower


def pair_score(tower: XPoolTower, text: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """cos(text, pool(text over one video's frames)): one pair, nothing shared with other pairs."""
    return F.cosine_similarity(text, tower.pool(text[None], frames[None])[0], dim=0)


def captions(n: int):
    ids = torch.randint(2, 200, (n, 16))
    ids[:, -1] = 1  # end-of-text
    return ids, torch.ones_like(ids)


def test_training_loss_equals_the_loss_computed_pair_by_pair(tower):
    tower.eval()  # dropout off: the loop and the batched path see the same network
    frames, (ids, mask) = torch.randn(4, 3, 3, 32, 32), captions(4)
    with torch.no_grad():
        out = tower.training_outputs(frames, ids, mask)
        scale = tower.logit_scale.exp()
        loss = symmetric_infonce(out.text_emb, out.video_emb, tower.logit_scale, score=tower.score)
        sim = torch.tensor([[pair_score(tower, out.text_emb[i], out.video_emb[j]).item() for j in range(4)]
                            for i in range(4)])
        t2v = -sum(math.log(torch.softmax(scale * sim[i], 0)[i]) for i in range(4)) / 4
        v2t = -sum(math.log(torch.softmax(scale * sim[:, j], 0)[j]) for j in range(4)) / 4
    assert loss.item() == pytest.approx(t2v + v2t, rel=1e-5)


def test_pooling_of_one_hot_frames_matches_the_hand_derivation():
    """Identity projections, frames e_0, e_1, e_2 in D = 8 dims, query e_0.

    LayerNorm(e_k) = (e_k - 1/D) / s with s^2 = (D - 1) / D^2, so the logits / sqrt(D) are
    sqrt(D) for the matching frame and -sqrt(D) / (D - 1) for the others. The pooled vector is
    proportional to w = a - 1/D (a = attention on the frame dims, 0 elsewhere), already centred,
    and the output LayerNorms only rescale it: out = w / std(w), score = (a_0 - 1/D) / |w|.
    """
    d, frames = 8, torch.eye(8)[:3]
    pool = CrossAttentionPooling(d, dropout=0.0).eval()
    same, other = math.sqrt(d), -math.sqrt(d) / (d - 1)
    a0 = math.exp(same) / (math.exp(same) + 2 * math.exp(other))
    a = torch.tensor([a0, (1 - a0) / 2, (1 - a0) / 2] + [0.0] * (d - 3))
    w = a - 1 / d
    with torch.no_grad():
        out = pool(torch.eye(d)[:1], frames[None])[0]
    torch.testing.assert_close(out, w / w.std(unbiased=False), atol=2e-4, rtol=1e-4)
    assert F.cosine_similarity(out, torch.eye(d)[0], dim=0).item() == pytest.approx((a0 - 1 / d) / w.norm().item(),
                                                                                    abs=1e-5)
    assert a0 == pytest.approx(0.9269, abs=1e-4)  # at D = 8 the matching frame takes 93 % of the weight


def test_evaluation_ranks_equal_a_naive_double_loop(tower):
    tower.eval()
    module = RetrievalModule(tower, write_reports=False).eval()
    frames = torch.randn(5, 3, 3, 32, 32)
    ids, mask = captions(9)
    text_video = torch.tensor([0, 0, 1, 1, 2, 3, 3, 4, 4])  # several captions per video
    module._eval_start()
    with torch.no_grad():
        for videos in ([0, 1, 2], [3, 4]):
            texts = torch.cat([(text_video == v).nonzero().flatten() for v in videos])
            module._eval_step({"frames": frames[videos], "video_index": torch.tensor(videos),
                               "input_ids": ids[texts], "attention_mask": mask[texts], "text_index": texts,
                               "text_video": text_video[texts] - videos[0]})
        metrics, per_query = module._evaluate()
        t = tower.encode_texts(ids, mask)
        v = tower.encode_videos(frames)
        sim = torch.tensor([[pair_score(tower, t[m], v[n]).item() for n in range(5)] for m in range(9)])
    t2v = [1 + sum(sim[m, n] >= sim[m, text_video[m]] for n in range(5) if n != text_video[m]) for m in range(9)]
    group = torch.stack([sim[text_video == u].max(0).values for u in range(5)])  # [caption group, video]
    v2t = [1 + sum(group[u, n] >= group[n, n] for u in range(5) if u != n) for n in range(5)]
    assert per_query["t2v_rank"] == [int(r) for r in t2v]
    assert per_query["v2t_rank"] == [int(r) for r in v2t]
    assert metrics["t2v/R@1"] == pytest.approx(100 * sum(r == 1 for r in t2v) / 9)
