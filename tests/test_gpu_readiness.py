"""GPU readiness checked on CPU: no hard-coded device (torch.compile: training/test_compile_coverage.py; bf16: test_cli.py)."""

import re
from pathlib import Path

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
