"""Running training on real infrastructure: checkpoints to resume from, resuming, faults."""

from pig_lightning.training.checkpointing import BestCheckpoint, LatestCheckpoint, is_complete_checkpoint

__all__ = ["BestCheckpoint", "LatestCheckpoint", "is_complete_checkpoint"]
