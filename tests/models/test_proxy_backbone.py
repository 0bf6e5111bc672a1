import pytest
import torch

from pig_lightning.models.layers import full_layer
from pig_lightning.models.proxy_backbone import NUM_GLOBAL, VideoProxyBackbone, block_attention_layer, block_mask

from tests.helpers import TINY_CLIP


@pytest.fixture()
def backbone(tokenizer_dir):
    torch.manual_seed(0)
    b = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16,
                           temporal_frames=4).eval()
    with torch.no_grad():  # non-zero temporal embeddings so the tests see them
        b.temporal_embedding.normal_(0, 0.1)
    return b


def dense_reference(backbone, frames):
    """The same model as full attention under the explicit block mask, with dense probabilities."""
    vision = backbone.clip.vision_model
    x = vision.pre_layrnorm(backbone.embed(frames))
    t = frames.shape[1]
    p = (x.shape[1] - NUM_GLOBAL) // t
    mask = block_mask(t, p)
    for layer in vision.encoder.layers:
        x = full_layer(layer, x, mask)
    return backbone.clip.visual_projection(vision.post_layernorm(x))


def test_token_layout_and_output_shapes(backbone):
    out = backbone.forward_video(torch.randn(2, 4, 3, 32, 32))
    assert out.tokens_per_frame == 1 + 16
    assert out.tokens.shape == (2, 4 + 4 * 17, 32)
    assert out.global_attention.shape == (2, 4, 4, 4 + 4 * 17)
    torch.testing.assert_close(out.global_attention.sum(-1), torch.ones(2, 4, 4))
    assert out.frame_cls_positions().tolist() == [4, 21, 38, 55]
    assert out.global_and_frame_cls().shape == (2, 8, 32)


def test_factorised_attention_equals_masked_full_attention(backbone):
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        fast = backbone.forward_video(frames).tokens
        dense = dense_reference(backbone, frames)
    torch.testing.assert_close(fast, dense, atol=1e-5, rtol=1e-4)


def test_factorised_attention_has_the_gradients_of_masked_full_attention(backbone):
    """Training goes through the fused frame-row kernel's backward: the parameter gradients
    equal those of full attention under the block mask (batch 2, so batch and time are merged)."""
    video = torch.randn(2, 4, 3, 32, 32)
    weights = torch.randn(2, 4 + 4 * 17, 32)
    grads = []
    for forward in (lambda: backbone.forward_video(video).tokens, lambda: dense_reference(backbone, video)):
        backbone.zero_grad()
        (forward() * weights).sum().backward()
        grads.append({n: p.grad.clone() for n, p in backbone.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "temporal_embedding" in grads[0]
    for name in grads[0]:
        scale = grads[1][name].abs().max().item()  # float32 sums of large gradients: relative to the largest
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6 * scale + 1e-6, rtol=1e-4, msg=name)


def test_a_frame_cannot_see_another_frame_before_the_global_tokens_mix(backbone):
    frames = torch.randn(1, 4, 3, 32, 32)
    other = frames.clone()
    other[:, 2] = torch.randn(3, 32, 32)  # change frame 2 only
    vision = backbone.clip.vision_model
    layer = vision.encoder.layers[0]
    with torch.no_grad():
        a, _ = block_attention_layer(layer, vision.pre_layrnorm(backbone.embed(frames)), 4, 17)
        b, _ = block_attention_layer(layer, vision.pre_layrnorm(backbone.embed(other)), 4, 17)
    frame_slice = lambda t: slice(NUM_GLOBAL + t * 17, NUM_GLOBAL + (t + 1) * 17)  # noqa: E731
    for t in (0, 1, 3):
        torch.testing.assert_close(a[:, frame_slice(t)], b[:, frame_slice(t)], rtol=0, atol=0)
    assert not torch.allclose(a[:, frame_slice(2)], b[:, frame_slice(2)])
    assert not torch.allclose(a[:, :NUM_GLOBAL], b[:, :NUM_GLOBAL])  # the global tokens see everything


def test_initialisation_follows_the_method(backbone, tokenizer_dir):
    fresh = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    torch.testing.assert_close(fresh.frame_cls, fresh.clip.vision_model.embeddings.class_embedding)
    assert fresh.temporal_embedding.shape == (12, 32) and torch.all(fresh.temporal_embedding == 0)
    assert fresh.proxy_tokens.shape == (3, 32)


def interpolate_by_hand(table: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Linear interpolation along the table's rows, written out position by position."""
    n = table.shape[0]
    rows = []
    for i in range(size):
        if align_corners:
            x = i * (n - 1) / (size - 1) if size > 1 else 0.0
        else:
            x = max((i + 0.5) * n / size - 0.5, 0.0)
        lo = min(int(x), n - 1)
        hi = min(lo + 1, n - 1)
        w = x - lo
        rows.append((1 - w) * table[lo] + w * table[hi])
    return torch.stack(rows)


def test_temporal_embedding_interpolates_like_the_release(tokenizer_dir):
    """12 learned entries read at 32 frames (DiDeMo / ActivityNet) and at 1 frame (generator
    pre-training on images): the release's F.interpolate(mode="linear"), align_corners=False."""
    b = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    with torch.no_grad():
        b.temporal_embedding.copy_(torch.arange(12.0)[:, None] * 10 + torch.randn(12, 32) * 0.01)
    table = b.temporal_embedding.detach()
    assert torch.equal(b.temporal(12), b.temporal_embedding)
    thirty_two = b.temporal(32).detach()
    torch.testing.assert_close(thirty_two, interpolate_by_hand(table, 32, align_corners=False))
    # frame 0 reads position 0.5 * 12 / 32 - 0.5 < 0 -> entry 0; frame 5 reads 5.5 * 0.375 - 0.5 = 1.5625
    torch.testing.assert_close(thirty_two[0], table[0])
    torch.testing.assert_close(thirty_two[5], 0.4375 * table[1] + 0.5625 * table[2])
    torch.testing.assert_close(thirty_two[-1], table[-1])
    # one frame reads position 0.5 * 12 - 0.5 = 5.5: halfway between entries 5 and 6 (not entry 0)
    torch.testing.assert_close(b.temporal(1)[0].detach(), (table[5] + table[6]) / 2)


def test_temporal_align_corners_is_the_option(backbone, tokenizer_dir):
    b = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16,
                           temporal_frames=4, temporal_align_corners=True)
    with torch.no_grad():
        b.temporal_embedding.copy_(backbone.temporal_embedding)
    table = b.temporal_embedding.detach()
    seven = b.temporal(7).detach()
    torch.testing.assert_close(seven, interpolate_by_hand(table, 7, align_corners=True))
    # output i sits at table position i * 3 / 6: 1 -> halfway between entries 0 and 1, 2 -> entry 1
    torch.testing.assert_close(seven[1], (table[0] + table[1]) / 2)
    torch.testing.assert_close(seven[2], table[1])
    assert not torch.allclose(seven, backbone.temporal(7).detach())
    out = b.forward_video(torch.randn(1, 7, 3, 32, 32))
    assert out.tokens.shape == (1, 4 + 7 * 17, 32)


@pytest.mark.parametrize("patch_size, frames", [(8, 1), (4, 3)])  # B/32-like and B/16-like grids, any T
def test_other_patch_grids_and_frame_counts(tokenizer_dir, patch_size, frames):
    import copy

    cfg = copy.deepcopy(TINY_CLIP)
    cfg["vision_config"]["patch_size"] = patch_size
    backbone = VideoProxyBackbone(config=cfg, tokenizer=tokenizer_dir, image_size=32, max_text_length=16).eval()
    video = torch.randn(1, frames, 3, 32, 32)
    per_frame = 1 + (32 // patch_size) ** 2
    with torch.no_grad():
        out = backbone.forward_video(video)
        dense = dense_reference(backbone, video)
    assert out.tokens.shape == (1, 4 + frames * per_frame, 32)
    torch.testing.assert_close(out.tokens, dense, atol=1e-5, rtol=1e-4)
