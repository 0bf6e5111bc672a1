import pytest
import torch

from pig_lightning.models.layers import full_layer
from pig_lightning.models.proxy_backbone import NUM_GLOBAL, VideoProxyBackbone, block_attention_layer, block_mask

from ..conftest import TINY_CLIP


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


def test_temporal_embedding_interpolates_for_other_frame_counts(backbone):
    table = backbone.temporal_embedding
    assert torch.equal(backbone.temporal(4), table)
    seven = backbone.temporal(7)
    assert seven.shape == (7, 32)
    torch.testing.assert_close(seven[0], table[0])
    torch.testing.assert_close(seven[-1], table[-1])
    # output i sits at table position i * 3 / 6: 1 -> halfway between entries 0 and 1, 2 -> entry 1
    torch.testing.assert_close(seven[1], (table[0] + table[1]) / 2)
    torch.testing.assert_close(seven[2], table[1])
    out = backbone.forward_video(torch.randn(1, 7, 3, 32, 32))
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
