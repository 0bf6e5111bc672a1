"""Models: CLIP backbones, the PIG parts and the towers built on them."""

from pig_lightning.models.backbone import CLIPBackbone, FrameCLIPBackbone
from pig_lightning.models.fusion import CrossAttentionPooling
from pig_lightning.models.generator import PseudoQueryGenerator
from pig_lightning.models.proxy_backbone import VideoProxyBackbone
from pig_lightning.models.towers import (
    DotProductTower,
    MeanPoolingTower,
    PIGTower,
    SeqTransformerTower,
    Tower,
    TrainingOutputs,
    VideoCLSTower,
    XPoolTower,
)

__all__ = [
    "CLIPBackbone",
    "CrossAttentionPooling",
    "DotProductTower",
    "FrameCLIPBackbone",
    "MeanPoolingTower",
    "PIGTower",
    "PseudoQueryGenerator",
    "SeqTransformerTower",
    "Tower",
    "TrainingOutputs",
    "VideoCLSTower",
    "VideoProxyBackbone",
    "XPoolTower",
]
