"""Running training on real infrastructure: checkpoints to resume from, resuming, counting skipped videos; what
TensorBoard shows beside the curves (qualitative images); the DDP strategy's multi-node options."""

from pig_lightning.training.checkpointing import BestCheckpoint, LatestCheckpoint, is_complete_checkpoint
from pig_lightning.training.qualitative import QualitativeImages
from pig_lightning.training.strategy import DDP

__all__ = ["DDP", "BestCheckpoint", "LatestCheckpoint", "QualitativeImages", "is_complete_checkpoint"]
