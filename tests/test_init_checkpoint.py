"""model.init_checkpoint: PIG started from a CLIP-ViP checkpoint, weights-only loading."""

import os

import pytest
import torch

from pig_lightning.models import CrossAttentionPooling, PIGTower, VideoCLSTower, VideoProxyBackbone
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP


def proxy_backbone(tokenizer_dir: str) -> VideoProxyBackbone:
    return VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)


@pytest.fixture()
def clipvip_checkpoint(tmp_path, tokenizer_dir):
    """A CLIP-ViP module whose text tower was changed after construction (as fine-tuning would)."""
    torch.manual_seed(0)
    clipvip = RetrievalModule(VideoCLSTower(proxy_backbone(tokenizer_dir), num_frames=2))
    with torch.no_grad():
        for p in clipvip.tower.backbone.clip.text_model.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "clipvip.ckpt"
    torch.save({"state_dict": clipvip.state_dict(), "epoch": 3}, path)
    return clipvip, str(path)


def test_pig_from_a_clipvip_checkpoint_copies_its_generator_from_the_loaded_text_tower(clipvip_checkpoint,
                                                                                        tokenizer_dir):
    clipvip, path = clipvip_checkpoint
    torch.manual_seed(1)
    fresh = PIGTower(proxy_backbone(tokenizer_dir), num_frames=2)
    torch.manual_seed(1)
    pig = RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2), init_checkpoint=path).tower

    loaded_text = clipvip.tower.backbone.clip.text_model
    for (name, ours), theirs, initial in zip(pig.generator.layers.named_parameters(),
                                             loaded_text.encoder.layers.parameters(),
                                             fresh.generator.layers.parameters()):
        assert torch.equal(ours, theirs), name
        assert not torch.equal(ours, initial), name  # not the random text tower it was built with
    assert torch.equal(pig.generator.final_layer_norm.weight, loaded_text.final_layer_norm.weight)
    assert torch.equal(pig.generator.position_embedding.weight, loaded_text.embeddings.position_embedding.weight)
    token_embedding = loaded_text.embeddings.token_embedding.weight
    assert torch.equal(pig.generator.special_tokens[0], token_embedding[pig.backbone.bos_token_id])
    assert torch.equal(pig.generator.special_tokens[1], token_embedding[pig.backbone.eos_token_id])
    # the backbone is the checkpoint's, the fusion a fresh identity
    for (name, a), b in zip(pig.backbone.state_dict().items(), clipvip.tower.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    for (name, a), b in zip(pig.fusion.state_dict().items(), CrossAttentionPooling(32).state_dict().values()):
        assert torch.equal(a, b), name
    # still a copy, not the text tower itself
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(pig.generator.parameters(), loaded_text.parameters()))


def test_generator_and_fusion_in_the_checkpoint_are_used(tmp_path, tokenizer_dir):
    torch.manual_seed(0)
    trained = RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2))
    with torch.no_grad():
        for p in [*trained.tower.generator.parameters(), *trained.tower.fusion.parameters()]:
            p.add_(torch.randn_like(p))
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "pig.ckpt")
    again = RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2),
                            init_checkpoint=str(tmp_path / "pig.ckpt"))
    for (name, a), b in zip(again.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_partly_missing_part_or_foreign_keys_are_errors_naming_the_file_and_keys(tmp_path, tokenizer_dir):
    pig = RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2))
    state = pig.state_dict()
    del state["tower.generator.video_mapper.weight"]  # the rest of the generator is there
    torch.save({"state_dict": state}, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match=r"partial\.ckpt.*missing \['tower\.generator\.video_mapper\.weight'\]"):
        RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2),
                        init_checkpoint=str(tmp_path / "partial.ckpt"))
    state = pig.state_dict()
    del state["tower.backbone.proxy_tokens"]
    state["tower.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match=r"foreign\.ckpt.*tower\.backbone\.proxy_tokens.*tower\.extra\.weight"):
        RetrievalModule(PIGTower(proxy_backbone(tokenizer_dir), num_frames=2),
                        init_checkpoint=str(tmp_path / "foreign.ckpt"))
    # the reverse direction: a PIG checkpoint has parts a CLIP-ViP tower does not know
    torch.save({"state_dict": pig.state_dict()}, tmp_path / "pig.ckpt")
    with pytest.raises(ValueError, match=r"unexpected \['tower\.generator\."):
        RetrievalModule(VideoCLSTower(proxy_backbone(tokenizer_dir), num_frames=2),
                        init_checkpoint=str(tmp_path / "pig.ckpt"))


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)  # what unpickling would run


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, tokenizer_dir):
    marker = tmp_path / "payload_ran"
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(str(marker))}, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match=r"model\.init_checkpoint .*evil\.ckpt: refused"):
        RetrievalModule(VideoCLSTower(proxy_backbone(tokenizer_dir), num_frames=2),
                        init_checkpoint=str(tmp_path / "evil.ckpt"))
    assert not marker.exists()
