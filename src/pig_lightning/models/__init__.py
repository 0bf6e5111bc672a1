"""Models: CLIP backbones and the towers built on them."""

from pig_lightning.models.backbone import FrameCLIPBackbone
from pig_lightning.models.towers import DotProductTower, MeanPoolingTower, Tower

__all__ = ["DotProductTower", "FrameCLIPBackbone", "MeanPoolingTower", "Tower"]
