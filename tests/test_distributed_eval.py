"""Evaluation gives the same numbers on 1 and 2 processes (gloo), with uneven sizes and several captions.

The two-tower case gathers embeddings; the single-tower case keeps the video token sets on
their process and shards the scoring (RetrievalModule._evaluate_sharded).
"""

from pathlib import Path

import lightning as L
import pytest
import torch

from pig_lightning.data import AnnotationFiles, VideoTextDataModule
from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower, PIGTower, VideoProxyBackbone, XPoolTower
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP

pytestmark = pytest.mark.slow  # trains or launches processes


def subset(synthetic_root: str, tmp_path: Path, count: int) -> str:
    lines = Path(synthetic_root, "val.jsonl").read_text().splitlines()[:count]
    path = tmp_path / f"val{count}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def validate(module, dm, devices: int) -> dict[str, float]:
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    return trainer.validate(module, datamodule=dm, verbose=False)[0]


@pytest.mark.parametrize("tower_cls", [MeanPoolingTower, XPoolTower, PIGTower], ids=["two-tower", "single-tower", "hybrid"])
def test_one_and_two_processes_agree(synthetic_root, tmp_path, tower_cls):
    torch.manual_seed(0)
    backbone_cls = VideoProxyBackbone if tower_cls is PIGTower else FrameCLIPBackbone
    backbone = backbone_cls(config=TINY_CLIP, tokenizer=f"{synthetic_root}/tokenizer", image_size=32,
                            max_text_length=20)
    extra = {"num_selected": 4} if tower_cls is PIGTower else {}
    module = RetrievalModule(tower_cls(backbone, num_frames=3, **extra), dsl=True, write_reports=False)
    dm = VideoTextDataModule(AnnotationFiles(synthetic_root, val_annotations=subset(synthetic_root, tmp_path, 9)),
                             tokenizer=f"{synthetic_root}/tokenizer", num_frames=3, image_size=32,
                             max_text_length=20, eval_batch_size=2, num_workers=0)
    one = validate(module, dm, 1)
    two = validate(module, dm, 2)  # 9 videos over 2 ranks: the sampler pads one duplicate
    assert one["val/num_videos"] == two["val/num_videos"] == 9
    assert one["val/num_texts"] == two["val/num_texts"] == 27
    assert "val/dsl/t2v/R@1" in two  # DSL too: for the single tower it is computed on the shards
    if tower_cls is PIGTower:  # the pseudo-query diagnostics are gathered and deduplicated like the videos
        assert {"val/diag/text2pseudo_query/R@1", "val/diag/pseudo_query/cos_gap"} <= set(two)
    for key in one:
        assert two[key] == pytest.approx(one[key], abs=1e-6), key


class RecordingModule(RetrievalModule):
    """Writes the video indices of every training batch it sees to a file per process."""

    def __init__(self, *args, record_dir: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.record_dir = record_dir

    def on_train_batch_start(self, batch, batch_idx):
        path = Path(self.record_dir) / f"rank{self.global_rank}.txt"
        with open(path, "a") as f:
            f.write(" ".join(map(str, batch["video_index"].tolist())) + "\n")


def test_training_processes_see_disjoint_videos(synthetic_root, tmp_path):
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=f"{synthetic_root}/tokenizer", image_size=32,
                                 max_text_length=20)
    module = RecordingModule(MeanPoolingTower(backbone, num_frames=2), write_reports=False, record_dir=str(tmp_path))
    dm = VideoTextDataModule(AnnotationFiles(synthetic_root, train_annotations=f"{synthetic_root}/train.jsonl"),
                             tokenizer=f"{synthetic_root}/tokenizer", num_frames=2, image_size=32,
                             max_text_length=20, batch_size=4, num_workers=0)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    seen = [[int(v) for v in (tmp_path / f"rank{r}.txt").read_text().split()] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 12  # 24 videos split over 2 processes, 3 batches of 4 each
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(24))
