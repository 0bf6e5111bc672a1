import pytest
import torch
import torch.nn.functional as F

from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer
from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower


@pytest.fixture()
def saved_clip(tmp_path, tiny_clip_config, tokenizer_dir):
    torch.manual_seed(0)
    model = load_clip_model(config=tiny_clip_config, tokenizer=load_tokenizer(tokenizer_dir))
    model.save_pretrained(tmp_path / "clip")
    return model.eval(), str(tmp_path / "clip")


def test_one_frame_video_embedding_equals_clip_image_features(saved_clip, tokenizer_dir):
    reference, folder = saved_clip
    tower = MeanPoolingTower(FrameCLIPBackbone(pretrained=folder, tokenizer=tokenizer_dir, image_size=32,
                                               max_text_length=16, logit_scale_init=None), num_frames=1).eval()
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ours = tower.encode_videos(pixels[:, None])
        want = F.normalize(reference.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    torch.testing.assert_close(ours, want)


def test_text_embedding_equals_clip_text_features_at_the_eot_token(saved_clip, tokenizer_dir):
    reference, folder = saved_clip
    tok = load_tokenizer(tokenizer_dir)
    tower = MeanPoolingTower(FrameCLIPBackbone(pretrained=folder, tokenizer=tokenizer_dir, image_size=32,
                                               max_text_length=16), num_frames=2).eval()
    enc = tok(["a red circle moves left", "a blue square"], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        ours = tower.encode_texts(enc["input_ids"], enc["attention_mask"])
        want = F.normalize(reference.get_text_features(**enc).pooler_output, dim=-1)
        # and the EOT position really is the pooled one (not position 0)
        hidden = reference.text_model(**enc).last_hidden_state
        eot = (enc["input_ids"] == tok.eos_token_id).int().argmax(dim=1)
        manual = F.normalize(reference.text_projection(hidden[torch.arange(2), eot]), dim=-1)
    torch.testing.assert_close(ours, want)
    torch.testing.assert_close(ours, manual)


def test_mean_pooling_shapes_norms_and_frame_order_invariance(tiny_clip_config, tokenizer_dir):
    tower = MeanPoolingTower(FrameCLIPBackbone(config=tiny_clip_config, tokenizer=tokenizer_dir, image_size=32,
                                               max_text_length=16), num_frames=4).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        v = tower.encode_videos(frames)
        v_rev = tower.encode_videos(frames.flip(1))
    assert v.shape == (2, 32)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(v, v_rev)  # mean pooling ignores order: that is its known weakness
    assert tower.score(v, v).shape == (2, 2)


def test_logit_scale_is_reinitialised(tiny_clip_config, tokenizer_dir):
    b = FrameCLIPBackbone(config=tiny_clip_config, tokenizer=tokenizer_dir, image_size=32, max_text_length=16,
                          logit_scale_init=4.6)
    assert b.logit_scale.item() == pytest.approx(4.6)


def test_shared_values_disagreeing_with_the_checkpoint_are_refused(tiny_clip_config, tokenizer_dir):
    with pytest.raises(ValueError, match=r"image_size \(224\).*\(32\)"):
        FrameCLIPBackbone(config=tiny_clip_config, tokenizer=tokenizer_dir, image_size=224, max_text_length=16)
    with pytest.raises(ValueError, match=r"max_text_length \(77\).*32 positions"):
        FrameCLIPBackbone(config=tiny_clip_config, tokenizer=tokenizer_dir, image_size=32, max_text_length=77)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_ready_made_text_mask_gives_exactly_what_transformers_own_mask_gives(tokenizer_dir, dtype):
    """encode_text hands the text encoder a ready 4-D mask (made on the device; transformers would
    read on the host whether the batch has padding): the pooled output is bit-identical, with and
    without padding in the batch."""
    from pig_lightning.models.backbone import causal_padding_mask
    from tests.helpers import TINY_CLIP

    torch.manual_seed(0)
    clip = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=12).clip.to(dtype)
    tokenizer = load_tokenizer(tokenizer_dir)
    for texts, padding in ((["a red circle moves left then a blue cross", "a cat", "red"], "max_length"),
                           (["a cat sits", "a dog runs"], "longest")):
        t = tokenizer(texts, padding=padding, max_length=12, truncation=True, return_tensors="pt")
        with torch.no_grad():
            theirs = clip.text_model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output
            ours = clip.text_model(input_ids=t["input_ids"],
                                   attention_mask=causal_padding_mask(t["attention_mask"])).pooler_output
        assert torch.equal(ours, theirs)
