import numpy as np
import pytest
import torch

from pig_lightning.evaluation import retrieval_metrics, text_to_video_ranks, video_to_text_ranks


def naive_t2v_ranks(sim, text_video):
    ranks = []
    for i in range(len(sim)):
        pos = sim[i][text_video[i]]
        ranks.append(1 + sum(1 for j in range(len(sim[0])) if j != text_video[i] and sim[i][j] >= pos))
    return ranks


def naive_v2t_group_ranks(sim, text_video):
    num_texts, num_videos = len(sim), len(sim[0])
    ranks = []
    for v in range(num_videos):
        def group_score(u):
            return max(sim[c][v] for c in range(num_texts) if text_video[c] == u)
        pos = group_score(v)
        ranks.append(1 + sum(1 for u in range(num_videos) if u != v and group_score(u) >= pos))
    return ranks


def naive_v2t_caption_ranks(sim, text_video):
    num_texts, num_videos = len(sim), len(sim[0])
    ranks = []
    for v in range(num_videos):
        own = [c for c in range(num_texts) if text_video[c] == v]
        pos = max(sim[c][v] for c in own)
        ranks.append(1 + sum(1 for c in range(num_texts) if text_video[c] != v and sim[c][v] >= pos))
    return ranks


def naive_summary(ranks, prefix):
    r = np.asarray(ranks, dtype=float)
    out = {f"{prefix}/R@{k}": 100.0 * np.mean(r <= k) for k in (1, 5, 10)}
    out[f"{prefix}/MdR"] = float(np.median(r))
    out[f"{prefix}/MnR"] = float(np.mean(r))
    return out


def uneven_case(seed, num_videos=13, max_caps=4, levels=4):
    """Integer-valued similarities (many ties) and 1..max_caps captions per video, shuffled."""
    g = torch.Generator().manual_seed(seed)
    caps = torch.randint(1, max_caps + 1, (num_videos,), generator=g)
    text_video = torch.repeat_interleave(torch.arange(num_videos), caps)
    text_video = text_video[torch.randperm(len(text_video), generator=g)]
    sim = torch.randint(0, levels, (len(text_video), num_videos), generator=g).float()
    return sim, text_video


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("protocol", ["group", "caption"])
def test_metrics_match_naive_reference_with_ties_and_uneven_captions(seed, protocol):
    sim, text_video = uneven_case(seed)
    got = retrieval_metrics(sim, text_video, v2t_protocol=protocol)
    s, tv = sim.tolist(), text_video.tolist()
    v2t = naive_v2t_group_ranks(s, tv) if protocol == "group" else naive_v2t_caption_ranks(s, tv)
    want = {**naive_summary(naive_t2v_ranks(s, tv), "t2v"), **naive_summary(v2t, "v2t")}
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


def test_ranks_chunked_equal_unchunked():
    sim, text_video = uneven_case(11, num_videos=50)
    full = text_to_video_ranks(sim, text_video, chunk_size=10_000)
    chunked = text_to_video_ranks(sim, text_video, chunk_size=7)
    assert torch.equal(full, chunked)


def test_ties_count_against_the_positive():
    sim = torch.zeros(4, 4)
    m = retrieval_metrics(sim, torch.arange(4))
    assert m["t2v/R@1"] == 0.0 and m["t2v/MdR"] == 4.0 and m["v2t/MnR"] == 4.0


def test_perfect_and_known_ranks():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.4, 0.6], [0.0, 0.2, 0.3]])
    ranks = text_to_video_ranks(sim, torch.tensor([0, 1, 2]))
    assert ranks.tolist() == [1, 3, 1]
    m = retrieval_metrics(sim, torch.tensor([0, 1, 2]))
    assert m["t2v/R@1"] == pytest.approx(200 / 3)
    assert m["t2v/MdR"] == 1.0 and m["t2v/MnR"] == pytest.approx(5 / 3)


def test_median_of_even_count_averages_middle_ranks():
    # ranks 1 and 2 -> MdR 1.5 (numpy convention used by the field)
    sim = torch.tensor([[1.0, 0.0], [1.0, 0.5]])
    m = retrieval_metrics(sim, torch.tensor([0, 1]))
    assert m["t2v/MdR"] == 1.5


def test_group_and_caption_protocols_differ_as_documented():
    # Video 0's own caption scores 0.5; video 1 has two captions at 0.6 and 0.7 for video 0.
    sim = torch.tensor([[0.5, 0.0], [0.6, 0.9], [0.7, 0.8]])
    text_video = torch.tensor([0, 1, 1])
    assert video_to_text_ranks(sim, text_video, "group").tolist()[0] == 2  # one better group
    assert video_to_text_ranks(sim, text_video, "caption").tolist()[0] == 3  # two better captions


@pytest.mark.parametrize(
    "sim, text_video, match",
    [
        (torch.zeros(3), torch.zeros(3), "num_texts, num_videos"),
        (torch.zeros(3, 2), torch.zeros(2), "one entry per text"),
        (torch.zeros(2, 2), torch.tensor([0, 2]), "outside"),
        (torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]), torch.tensor([0, 1]), "NaN"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), "no caption"),
    ],
)
def test_bad_inputs_raise(sim, text_video, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(sim, text_video)


@pytest.mark.parametrize("protocol", ["group", "caption"])
@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_embedding_blocks_equal_the_full_matrix(protocol, chunk):
    from pig_lightning.evaluation import EmbeddingSimilarity

    g = torch.Generator().manual_seed(5)
    caps = torch.randint(1, 4, (17,), generator=g)
    text_video = torch.repeat_interleave(torch.arange(17), caps)[torch.randperm(int(caps.sum()), generator=g)]
    # coarse values so that ties occur between different blocks too
    texts = torch.randint(-2, 3, (len(text_video), 4), generator=g).float()
    videos = torch.randint(-2, 3, (17, 4), generator=g).float()
    full = retrieval_metrics(texts @ videos.t(), text_video, v2t_protocol=protocol)
    blocks = retrieval_metrics(EmbeddingSimilarity(texts, videos), text_video, v2t_protocol=protocol, chunk_size=chunk)
    assert blocks == full
    t2v = text_to_video_ranks(EmbeddingSimilarity(texts, videos), text_video, chunk_size=chunk)
    assert torch.equal(t2v, text_to_video_ranks(texts @ videos.t(), text_video))


@pytest.mark.parametrize("chunk", [2, 1000])
def test_dsl_blocks_equal_the_dense_definition(chunk):
    from pig_lightning.evaluation import DSLSimilarity, EmbeddingSimilarity, MatrixSimilarity

    g = torch.Generator().manual_seed(2)
    texts = torch.nn.functional.normalize(torch.randn(11, 8, generator=g), dim=-1)
    videos = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    text_video = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4])
    sim = texts @ videos.t()
    dense = sim * torch.softmax(100 * sim, dim=0)  # softmax over texts, per video
    dsl = DSLSimilarity(EmbeddingSimilarity(texts, videos), chunk_size=chunk)
    torch.testing.assert_close(dsl.rows(0, 11), dense)
    torch.testing.assert_close(dsl.cols(1, 4), dense[:, 1:4])
    assert retrieval_metrics(dsl, text_video, chunk_size=chunk) == retrieval_metrics(dense, text_video)
    assert retrieval_metrics(DSLSimilarity(MatrixSimilarity(sim)), text_video) == retrieval_metrics(dense, text_video)
