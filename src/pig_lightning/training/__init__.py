"""Running training on real infrastructure: checkpoints to resume from, resuming, counting skipped videos; what
TensorBoard shows beside the curves (qualitative images)."""

from pig_lightning.training.checkpointing import BestCheckpoint, LatestCheckpoint, is_complete_checkpoint
from pig_lightning.training.qualitative import QualitativeImages

__all__ = ["BestCheckpoint", "LatestCheckpoint", "QualitativeImages", "is_complete_checkpoint"]
