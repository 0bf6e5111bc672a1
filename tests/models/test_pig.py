import pytest
import torch
import torch.nn.functional as F

from pig_lightning.models import CrossAttentionPooling, PIGTower, VideoCLSTower, VideoProxyBackbone
from pig_lightning.models.proxy_backbone import ProxyOutput
from pig_lightning.models.token_selection import select_informative_tokens

from tests.helpers import TINY_CLIP
from tests.helpers import fake_output


@pytest.fixture()
def backbone(tokenizer_dir):
    torch.manual_seed(0)
    return VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)


@pytest.fixture()
def pig(backbone):
    return PIGTower(backbone, num_frames=4).eval()


@pytest.mark.parametrize("reduction", ["max", "mean"])
def test_token_selection_matches_brute_force_and_skips_global_and_frame_cls(reduction):
    out = fake_output()
    # make the excluded positions the most attended: they must still never be chosen
    out.global_attention[:, :, 0, :4] = 10.0
    out.global_attention[:, :, 0, out.frame_cls_positions()] = 9.0
    tokens, positions = select_informative_tokens(out, k=6, head_reduction=reduction)
    excluded = set(range(4)) | set(out.frame_cls_positions().tolist())
    for b in range(3):
        row = out.global_attention[b, :, 0]
        score = row.max(0).values if reduction == "max" else row.mean(0)
        candidates = sorted((i for i in range(score.numel()) if i not in excluded), key=lambda i: -score[i].item())
        assert positions[b].tolist() == candidates[:6]
        torch.testing.assert_close(tokens[b], out.tokens[b, candidates[:6]])
        assert not excluded & set(positions[b].tolist())


def test_token_selection_rejects_impossible_k():
    with pytest.raises(ValueError, match="cannot select"):
        select_informative_tokens(fake_output(t=2, p=3), k=10)


def test_generator_is_causal(pig):
    tokens = torch.randn(2, 10, 32)
    changed = tokens.clone()
    changed[:, 6] += torch.randn(32)  # sequence position 7 (after BOS)
    with torch.no_grad():
        a = pig.generator.hidden_states(tokens)
        b = pig.generator.hidden_states(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=0)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_generator_is_a_separate_copy_of_the_text_tower(pig):
    text_layers = pig.backbone.clip.text_model.encoder.layers
    for ours, theirs in zip(pig.generator.layers, text_layers):
        for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert torch.equal(p, q) and p.data_ptr() != q.data_ptr(), name
    token_embedding = pig.backbone.clip.text_model.embeddings.token_embedding.weight
    torch.testing.assert_close(pig.generator.special_tokens[0], token_embedding[pig.backbone.bos_token_id])
    torch.testing.assert_close(pig.generator.special_tokens[1], token_embedding[pig.backbone.eos_token_id])
    assert "special_tokens" not in dict(pig.generator.named_parameters())  # fixed, as in the release


def test_fusion_starts_as_identity_and_follows_the_formula():
    torch.manual_seed(0)
    fusion = CrossAttentionPooling(8, dropout=0.0)
    for layer in (fusion.q_proj, fusion.k_proj, fusion.v_proj, fusion.out_proj, fusion.linear):
        assert torch.equal(layer.weight, torch.eye(8)) and torch.all(layer.bias == 0)
    q, tokens = torch.randn(3, 8), torch.randn(3, 5, 8)
    ln = lambda x: F.layer_norm(x, (8,))  # noqa: E731  (fresh LayerNorms are identity-affine)
    qn, vn = ln(q), ln(tokens)
    a = ((vn @ qn[:, :, None]).squeeze(-1) / 8**0.5).softmax(-1)
    o = ln((a[..., None] * vn).sum(1))
    torch.testing.assert_close(fusion(q, tokens), ln(o + o))
    # pairs broadcast: [M, 1, D] queries against [1, N, n, D] tokens
    assert fusion(q[:, None], tokens[None]).shape == (3, 3, 8)


def test_pig_video_embedding_does_not_depend_on_the_texts(pig, tokenizer_dir):
    torch.manual_seed(1)
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        alone = pig.encode_videos(frames)
        outs = [pig.training_outputs(frames, torch.randint(2, 200, (2, 16)), torch.ones(2, 16, dtype=torch.long))
                for _ in range(2)]
    torch.testing.assert_close(outs[0].video_emb, alone)
    torch.testing.assert_close(outs[1].video_emb, alone)
    assert not torch.allclose(outs[0].text_emb, outs[1].text_emb)
    assert alone.shape == (2, 32) and pig.kind == "hybrid"
    torch.testing.assert_close(alone.norm(dim=-1), torch.ones(2))
    assert pig.score(outs[0].text_emb, alone).shape == (2, 2)


def test_pig_training_outputs_carry_the_reconstruction_loss(pig):
    pig.train()
    out = pig.training_outputs(torch.randn(2, 4, 3, 32, 32), torch.randint(2, 200, (2, 16)),
                               torch.ones(2, 16, dtype=torch.long))
    assert set(out.losses) == {"recon"} and 0 <= out.losses["recon"].item() <= 4
    (out.losses["recon"] + out.video_emb.sum()).backward()
    assert pig.generator.video_mapper.weight.grad is not None
    assert pig.backbone.proxy_tokens.grad is not None


def test_clipvip_tower_uses_the_video_cls(backbone):
    tower = VideoCLSTower(backbone, num_frames=4).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        want = F.normalize(backbone.forward_video(frames).tokens[:, 0], dim=-1)
        torch.testing.assert_close(tower.encode_videos(frames), want)


def test_generator_input_must_fit_the_text_positions(backbone):
    with pytest.raises(ValueError, match="text positions"):
        PIGTower(backbone, num_frames=20, num_selected=16)


def test_xpool_scores_every_pair_with_the_text_as_query_and_chunks(tokenizer_dir):
    from pig_lightning.models import FrameCLIPBackbone, XPoolTower

    torch.manual_seed(0)
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    tower = XPoolTower(backbone, num_frames=3, pair_budget=4).eval()  # forces chunks of texts
    videos = tower.encode_videos(torch.randn(5, 3, 3, 32, 32))
    assert videos.shape == (5, 3, 32) and tower.kind == "single-tower"  # frame embeddings are stored
    texts = F.normalize(torch.randn(3, 32), dim=-1)
    with torch.no_grad():
        sim = tower.score(texts, videos)
        want = torch.stack([
            torch.stack([F.cosine_similarity(texts[m], tower.pool(texts[m][None], videos[n][None])[0], dim=0)
                         for n in range(5)]) for m in range(3)
        ])
    torch.testing.assert_close(sim, want)
    with pytest.raises(ValueError, match="frame embeddings"):
        tower.score(texts, videos[:, 0])


def test_seq_transformer_uses_frame_order(tokenizer_dir):
    from pig_lightning.models import FrameCLIPBackbone, SeqTransformerTower

    torch.manual_seed(0)
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    tower = SeqTransformerTower(backbone, num_frames=4, num_layers=2).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        v, v_rev = tower.encode_videos(frames), tower.encode_videos(frames.flip(1))
    assert v.shape == (2, 32)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(v, v_rev, atol=1e-4)  # unlike mean pooling, order matters


def test_recon_detach_text_stops_only_the_reconstruction_gradient(backbone):
    frames = torch.randn(2, 4, 3, 32, 32)
    ids, mask = torch.randint(2, 200, (2, 16)), torch.ones(2, 16, dtype=torch.long)
    grads = {}
    for detach in (False, True):
        tower = PIGTower(backbone, num_frames=4, recon_detach_text=detach).eval()
        tower.zero_grad()
        tower.training_outputs(frames, ids, mask).losses["recon"].backward()
        grads[detach] = backbone.clip.text_projection.weight.grad
        assert tower.generator.video_mapper.weight.grad is not None  # the generator still learns
    assert grads[False] is not None and grads[False].abs().sum() > 0
    assert grads[True] is None or grads[True].abs().sum() == 0
