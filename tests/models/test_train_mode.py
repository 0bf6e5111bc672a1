"""Every module trains in train mode, also when CLIP comes from a ``save_pretrained`` folder
(``from_pretrained`` returns eval mode and Lightning keeps the submodules' modes)."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer
from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower, PIGTower, VideoProxyBackbone, XPoolTower
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP

pytestmark = pytest.mark.slow  # trains or launches processes


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory, tokenizer_dir) -> str:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip") / "tiny"
    load_clip_model(config=TINY_CLIP, tokenizer=load_tokenizer(tokenizer_dir)).save_pretrained(folder)
    return str(folder)


class AssertTrainMode(L.Callback):
    def __init__(self):
        self.checked = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        in_eval = [name or "<module>" for name, m in pl_module.named_modules() if not m.training]
        assert not in_eval, f"modules in eval mode during fit: {in_eval[:5]} ({len(in_eval)} in all)"
        self.checked += 1


def batches(n: int = 4, frames: int = 2):
    ids = torch.randint(2, 200, (n, 16))
    ids[:, -1] = 1  # end-of-text
    return [{"frames": torch.randn(n, frames, 3, 32, 32), "input_ids": ids,
             "attention_mask": torch.ones_like(ids)}]


@pytest.mark.parametrize("tower_class, backbone_class", [(MeanPoolingTower, FrameCLIPBackbone),
                                                         (XPoolTower, FrameCLIPBackbone),
                                                         (PIGTower, VideoProxyBackbone)])
def test_fit_from_a_pretrained_folder_trains_every_module(pretrained_folder, tokenizer_dir, tmp_path,
                                                          tower_class, backbone_class):
    backbone = backbone_class(pretrained=pretrained_folder, tokenizer=tokenizer_dir, image_size=32,
                              max_text_length=16)
    module = RetrievalModule(tower_class(backbone, num_frames=2), lr=1e-4)
    check = AssertTrainMode()
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[check],
                        default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=DataLoader(batches(), batch_size=None))
    assert check.checked == 1
    # a checkpoint written by the Trainer starts the next stage (weights-only loading)
    trainer.save_checkpoint(tmp_path / "stage1.ckpt")
    again = RetrievalModule(tower_class(backbone_class(pretrained=pretrained_folder, tokenizer=tokenizer_dir,
                                                       image_size=32, max_text_length=16), num_frames=2),
                            init_checkpoint=str(tmp_path / "stage1.ckpt"))
    for (name, a), b in zip(again.state_dict().items(), module.state_dict().values()):
        assert torch.equal(a, b), name
