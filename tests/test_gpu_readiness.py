"""GPU readiness checked on CPU: no hard-coded device, an optional torch.compile (bf16: test_cli.py)."""

import re
from pathlib import Path

import lightning as L
import pytest
import torch

from pig_lightning.models import (
    FrameCLIPBackbone,
    MeanPoolingTower,
    PIGTower,
    SeqTransformerTower,
    VideoCLSTower,
    VideoProxyBackbone,
    XPoolTower,
)
from pig_lightning.models.compiled import COMPILED_METHODS
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP

SRC = Path(__file__).resolve().parents[1] / "src" / "pig_lightning"
# a device written into the code; `"cuda" if torch.cuda.is_available() else "cpu"` (a CLI default) is fine
HARD_CODED = re.compile(r"""\.cuda\(|device\s*=\s*["']cuda|torch\.device\(\s*["']cuda|\.to\(\s*["']cuda""")


def test_the_package_hard_codes_no_device():
    found = [f"{path.relative_to(SRC)}:{n}: {line.strip()}" for path in sorted(SRC.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if HARD_CODED.search(line)]
    assert not found, found


@pytest.mark.parametrize("tower_cls, backbone_cls", [(PIGTower, VideoProxyBackbone), (VideoCLSTower, VideoProxyBackbone),
                                                      (MeanPoolingTower, FrameCLIPBackbone),
                                                      (SeqTransformerTower, FrameCLIPBackbone),
                                                      (XPoolTower, FrameCLIPBackbone)])
def test_every_tower_encodes_and_scores_videos_on_the_meta_device(tower_cls, backbone_cls, tokenizer_dir):
    """Built on ``meta`` and run outside that context: a tensor made without ``device=`` in a
    forward (CPU by default) would meet meta tensors and fail."""
    with torch.device("meta"):
        tower = tower_cls(backbone_cls(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=16),
                          num_frames=4)
    videos = tower.encode_videos(torch.empty(2, 4, 3, 32, 32, device="meta"))
    assert videos.device.type == "meta"
    assert tower.score(torch.empty(3, tower.backbone.embed_dim, device="meta"), videos).shape == (3, 2)


@pytest.mark.slow  # processes
def test_compile_option_trains_a_step_with_unchanged_weight_names(synthetic_root):
    from pig_lightning.data import AnnotationFiles, VideoTextDataModule

    def module(compile):
        torch.manual_seed(0)
        backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=f"{synthetic_root}/tokenizer", image_size=32,
                                     max_text_length=20)
        # aot_eager: dynamo capture and AOT autograd, as with the default inductor backend, without its
        # C++ code generation (minutes on 2 cores; the inductor path is run by benchmarks/gpu_check.sh)
        return RetrievalModule(MeanPoolingTower(backbone, num_frames=4), lr=1e-3, write_reports=False,
                               compile=compile, compile_options={"backend": "aot_eager"})

    dm = VideoTextDataModule(AnnotationFiles(synthetic_root, train_annotations=f"{synthetic_root}/train.jsonl"),
                             tokenizer=f"{synthetic_root}/tokenizer", num_frames=4, image_size=32,
                             max_text_length=20, batch_size=8, num_workers=0)
    losses = {}
    for compile in (False, True):
        model = module(compile)
        names = list(model.state_dict())
        trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(model, datamodule=dm)
        compiled = [n for n in COMPILED_METHODS if n in vars(model.tower.backbone)]
        assert compiled == (["encode_frames", "encode_text"] if compile else [])
        assert list(model.state_dict()) == names  # checkpoints do not change
        losses[compile] = trainer.callback_metrics["train/loss"]
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-5)
