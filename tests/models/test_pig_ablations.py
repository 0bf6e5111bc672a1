"""PIG ablation options (METHOD.md §3-5); the defaults are the reference."""

import pytest
import torch
import torch.nn.functional as F

from pig_lightning.models import PIGTower, VideoProxyBackbone
from pig_lightning.models.token_selection import select_informative_tokens, select_random_tokens
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP
from tests.helpers import fake_output


@pytest.fixture()
def backbone(tokenizer_dir):
    torch.manual_seed(0)
    return VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)


def texts(n=3):
    ids = torch.randint(2, 200, (n, 16))
    ids[:, -1] = 1
    return ids, torch.ones_like(ids)


def test_defaults_are_the_reference(backbone):
    tower = PIGTower(backbone, num_frames=2)
    assert (tower.query, tower.token_selection, tower.generator_options["init"]) == ("generator", "informative", "text")


def test_video_cls_query_has_no_generator_and_queries_the_fusion_with_the_video_cls(backbone):
    tower = PIGTower(backbone, num_frames=2, query="video_cls").eval()
    assert tower.generator is None
    assert not any(name.startswith("generator.") for name, _ in tower.named_parameters())
    assert sum(p.numel() for p in tower.parameters()) == sum(
        p.numel() for p in [*backbone.parameters(), *tower.fusion.parameters()])
    frames = torch.randn(3, 2, 3, 32, 32)
    with torch.no_grad():
        summary = backbone.forward_video(frames).global_and_frame_cls()
        want = F.normalize(tower.fusion(summary[:, 0], summary), dim=-1)
        torch.testing.assert_close(tower.encode_videos(frames), want)
    out = tower.training_outputs(frames, *texts())
    assert out.losses == {} and out.video_emb.shape == (3, 32)


def test_video_cls_query_trains_and_starts_from_a_clipvip_checkpoint(backbone, tmp_path, tokenizer_dir):
    module = RetrievalModule(PIGTower(backbone, num_frames=2, query="video_cls"))
    module.log = lambda *a, **k: None  # outside a Trainer
    ids, mask = texts(4)
    loss = module.training_step({"frames": torch.randn(4, 2, 3, 32, 32), "input_ids": ids, "attention_mask": mask}, 0)
    loss.backward()
    assert module.tower.fusion.q_proj.weight.grad is not None
    torch.save({"state_dict": {k: v for k, v in module.state_dict().items() if ".fusion." not in k}},
               tmp_path / "no_fusion.ckpt")
    again = RetrievalModule(PIGTower(VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32,
                                                        max_text_length=16), num_frames=2, query="video_cls"),
                            init_checkpoint=str(tmp_path / "no_fusion.ckpt"))
    assert torch.equal(again.tower.fusion.q_proj.weight, torch.eye(32))


def test_random_selection_draws_patch_positions_only_without_replacement():
    out = fake_output(b=64, t=4, p=5, dim=6)
    excluded = set(range(4)) | set(out.frame_cls_positions().tolist())
    patches = sorted(set(range(4 + 4 * 5)) - excluded)
    tokens, positions = select_random_tokens(out, k=6)
    counts = torch.zeros(24)
    for b in range(64):
        chosen = positions[b].tolist()
        assert len(set(chosen)) == 6 and not excluded & set(chosen) and chosen == sorted(chosen)
        torch.testing.assert_close(tokens[b], out.tokens[b, chosen])
        counts[chosen] += 1
    # uniform over the 16 patch positions: every one drawn, none far from 64 * 6 / 16 = 24 times
    assert counts[patches].min() > 5 and counts[list(excluded)].sum() == 0
    its = select_informative_tokens(out, k=6)[1]
    assert any(set(positions[b].tolist()) != set(its[b].tolist()) for b in range(64))
    assert len({tuple(p.tolist()) for p in positions}) > 32  # per sample, not one draw for all
    shared = select_random_tokens(out, k=6, shared=True)[1]
    assert (shared == shared[:1]).all()
    with pytest.raises(ValueError, match="cannot select"):
        select_random_tokens(out, k=17)


def test_random_tokens_vary_in_training_and_are_fixed_and_batch_independent_in_evaluation(backbone):
    tower = PIGTower(backbone, num_frames=2, token_selection="random", fusion_dropout=0.0)
    frames = torch.randn(3, 2, 3, 32, 32)
    with torch.no_grad():
        out = backbone.forward_video(frames)
        tower.train()
        assert not torch.equal(tower.select_tokens(out), tower.select_tokens(out))
        tower.eval()
        a = tower.encode_videos(frames)
        torch.testing.assert_close(tower.encode_videos(frames), a, rtol=0, atol=0)
        torch.testing.assert_close(tower.encode_videos(frames[1:2]), a[1:2])  # not tied to the batch
        informative = PIGTower(backbone, num_frames=2, fusion_dropout=0.0).eval()
        informative.load_state_dict(tower.state_dict())
        assert not torch.allclose(informative.encode_videos(frames), a)


def test_random_generator_init_differs_from_the_text_copy_but_keeps_bos_eos(backbone):
    torch.manual_seed(5)
    tower = PIGTower(backbone, num_frames=2, generator_init="random")
    text = backbone.clip.text_model
    width, layers = 32, 2
    in_std = width**-0.5 * (2 * layers) ** -0.5
    for ours, theirs in zip(tower.generator.layers, text.encoder.layers):
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            mine, copy = getattr(ours.self_attn, name), getattr(theirs.self_attn, name)
            assert not torch.allclose(mine.weight, copy.weight) and torch.all(mine.bias == 0)
        assert ours.self_attn.q_proj.weight.std().item() == pytest.approx(in_std, rel=0.3)
        assert ours.mlp.fc1.weight.std().item() == pytest.approx((2 * width) ** -0.5, rel=0.3)
        assert torch.all(ours.layer_norm1.weight == 1) and torch.all(ours.layer_norm2.bias == 0)
    assert not torch.allclose(tower.generator.position_embedding.weight, text.embeddings.position_embedding.weight)
    token_embedding = text.embeddings.token_embedding.weight
    assert torch.equal(tower.generator.special_tokens[0], token_embedding[backbone.bos_token_id])
    assert torch.equal(tower.generator.special_tokens[1], token_embedding[backbone.eos_token_id])
    out = tower.eval().training_outputs(torch.randn(2, 2, 3, 32, 32), *texts(2))
    assert out.video_emb.shape == (2, 32) and set(out.losses) == {"recon"}


def test_zero_reconstruction_weight_computes_and_logs_no_reconstruction_term(backbone):
    module = RetrievalModule(PIGTower(backbone, num_frames=2, recon_weight=0.0))
    frames, (ids, mask) = torch.randn(2, 2, 3, 32, 32), texts(2)
    assert module.tower.training_outputs(frames, ids, mask).losses == {}
    logged = {}
    module.log = lambda name, value, **k: logged.__setitem__(name, value)  # outside a Trainer
    loss = module.training_step({"frames": frames, "input_ids": ids, "attention_mask": mask}, 0)
    module.on_before_optimizer_step(None)  # the step's losses are logged once they are known finite
    assert set(logged) == {"train/loss", "train/logit_scale"} and torch.isfinite(loss)


@pytest.mark.parametrize("options", [{"query": "pseudo"}, {"token_selection": "best"}, {"generator_init": "zeros"}])
def test_unknown_option_values_are_named(backbone, options):
    with pytest.raises(ValueError, match=next(iter(options.values()))):
        PIGTower(backbone, num_frames=2, **options)
