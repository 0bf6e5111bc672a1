import math

import lightning as L
import pytest
import torch

from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower
from pig_lightning.module import RetrievalModule, _unique_first

from tests.helpers import TINY_CLIP


@pytest.fixture()
def module(tokenizer_dir):
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    return RetrievalModule(MeanPoolingTower(backbone, num_frames=2), lr=1e-3, weight_decay=0.2, warmup_ratio=0.1)


def test_weight_decay_groups(module):
    trainer = L.Trainer(max_steps=100, accelerator="cpu", logger=False, enable_checkpointing=False)
    module.trainer = trainer
    config = module.configure_optimizers()
    groups = {g["name"]: g for g in config["optimizer"].param_groups}
    assert set(groups) == {"decay_x1", "no_decay_x1"}
    decay, no_decay = groups["decay_x1"], groups["no_decay_x1"]
    names = {id(p): n for n, p in module.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith("bias") or n.endswith("logit_scale") for n in no_decay_names)
    assert "tower.backbone.clip.logit_scale" in no_decay_names
    assert "tower.backbone.clip.visual_projection.weight" in decay_names
    assert len(decay_names) + len(no_decay_names) == len(names)
    # linear warm-up over 10 % of the steps, then cosine to zero
    scheduler = config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(100):
        lrs.append(scheduler.get_last_lr()[0])
        config["optimizer"].step()
        scheduler.step()
    assert lrs[0] == 0 and lrs[10] == pytest.approx(1e-3) and lrs[55] == pytest.approx(0.5e-3, rel=0.05)
    assert lrs[-1] < 1e-5


def test_learning_rate_multipliers_by_longest_prefix(tokenizer_dir):
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    module = RetrievalModule(MeanPoolingTower(backbone, num_frames=2), lr=1e-3,
                             lr_multipliers={"tower.backbone.clip": 0.1, "tower.backbone.clip.text_model": 2.0})
    groups = {g["name"]: g for g in module.parameter_groups()}
    assert set(groups) == {"decay_x0.1", "no_decay_x0.1", "decay_x2", "no_decay_x2"}
    assert groups["decay_x2"]["lr"] == pytest.approx(2e-3) and groups["decay_x0.1"]["lr"] == pytest.approx(1e-4)
    assert all(n.startswith("tower.backbone.clip.text_model.") for n in groups["decay_x2"]["names"])
    assert "tower.backbone.clip.vision_model.embeddings.patch_embedding.weight" in groups["decay_x0.1"]["names"]
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len(list(module.parameters()))
    bad = RetrievalModule(MeanPoolingTower(backbone, num_frames=2), lr_multipliers={"tower.generator": 10})
    with pytest.raises(ValueError, match="tower.generator"):
        bad.parameter_groups()


def test_logit_scale_is_clamped_after_each_step(module):
    with torch.no_grad():
        module.tower.logit_scale.fill_(9.0)
    module.on_train_batch_end(None, None, 0)
    assert module.tower.logit_scale.item() == pytest.approx(math.log(200.0))


def test_unique_first_drops_padding_duplicates_and_sorts():
    index = torch.tensor([4, 1, 3, 0, 2, 4, 1])  # sampler padding repeats 4 and 1
    values, first = _unique_first(index)
    assert values.tolist() == [0, 1, 2, 3, 4] and first.tolist() == [3, 1, 4, 2, 0]


def test_evaluation_is_independent_of_batch_order_and_padding(module):
    torch.manual_seed(0)
    frames = torch.randn(5, 2, 3, 32, 32)
    ids = torch.randint(2, 200, (7, 16))
    ids[:, -1] = 1  # end-of-text
    mask = torch.ones_like(ids)
    text_video = torch.tensor([0, 0, 1, 2, 3, 4, 4])
    module.eval()

    def run(order):
        module._eval_start()
        for vids in order:
            vids = torch.tensor(vids)
            texts = torch.cat([(text_video == v).nonzero().flatten() for v in vids])
            local = torch.searchsorted(vids.sort().values, text_video[texts])
            perm = vids.argsort()
            batch = {"frames": frames[vids[perm]], "video_index": vids[perm], "input_ids": ids[texts],
                     "attention_mask": mask[texts], "text_index": texts, "text_video": local}
            with torch.no_grad():
                module._eval_step(batch)
        return module.compute_eval_metrics()

    in_order = run([[0, 1], [2, 3], [4]])
    shuffled_padded = run([[3, 4], [0, 2], [1, 3]])  # 3 appears twice, like sampler padding
    assert in_order == shuffled_padded
    assert in_order["num_videos"] == 5 and in_order["num_texts"] == 7


def test_frozen_prefixes_and_generator_pretraining_losses(tokenizer_dir):
    from pig_lightning.models import PIGTower, VideoProxyBackbone

    backbone = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    module = RetrievalModule(PIGTower(backbone, num_frames=1), contrastive_weight=0.0, frozen=["tower.backbone"])
    assert not any(p.requires_grad for p in module.tower.backbone.parameters())
    assert all(p.requires_grad for p in module.tower.generator.parameters())
    batch = {"frames": torch.randn(4, 1, 3, 32, 32), "input_ids": torch.randint(2, 200, (4, 16)),
             "attention_mask": torch.ones(4, 16, dtype=torch.long)}
    batch["input_ids"][:, -1] = 1
    module.log = lambda *a, **k: None  # outside a Trainer
    loss = module.training_step(batch, 0)
    out = module.tower.training_outputs(batch["frames"], batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(loss, out.losses["recon"])  # contrastive weight 0: reconstruction only
    with pytest.raises(ValueError, match="tower.nothing"):
        RetrievalModule(PIGTower(backbone, num_frames=1), frozen=["tower.nothing"])


def test_init_checkpoint_loads_weights_and_names_mismatches(tmp_path, module, tokenizer_dir):
    torch.save({"state_dict": module.state_dict()}, tmp_path / "stage1.ckpt")
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16)
    again = RetrievalModule(MeanPoolingTower(backbone, num_frames=2), init_checkpoint=str(tmp_path / "stage1.ckpt"))
    for (name, a), (_, b) in zip(module.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    torch.save({"state_dict": {"tower.other.weight": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="does not fit"):
        RetrievalModule(MeanPoolingTower(backbone, num_frames=2), init_checkpoint=str(tmp_path / "bad.ckpt"))
    with pytest.raises(FileNotFoundError, match="absent.ckpt"):
        RetrievalModule(MeanPoolingTower(backbone, num_frames=2), init_checkpoint=str(tmp_path / "absent.ckpt"))


def test_adamw_is_fused_only_when_every_trainable_parameter_is_on_a_gpu():
    from pig_lightning.module import fused_adamw

    class OnCuda(torch.nn.Parameter):  # what fused_adamw reads of a parameter on a GPU
        is_cuda = True

    cpu = [torch.nn.Parameter(torch.zeros(2))]
    frozen_cpu = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    assert fused_adamw(cpu) is None  # CPU runs keep torch's default (foreach) and their numbers
    assert fused_adamw([OnCuda(torch.zeros(2)), frozen_cpu]) is True
    assert fused_adamw([OnCuda(torch.zeros(2))] + cpu) is None
