"""Data: annotations, frame sampling, PyAV decoding, transforms, datasets, data modules, synthetic set."""

from pig_lightning.data.annotations import AnnotationError, VideoRecord, read_jsonl
from pig_lightning.data.datamodule import SyntheticVideoTextDataModule, VideoTextDataModule
from pig_lightning.data.decoding import PyAVVideoReader, VideoDecodeError
from pig_lightning.data.sampling import jittered_indices, uniform_indices
from pig_lightning.data.synthetic import SyntheticConfig, make_synthetic

__all__ = [
    "AnnotationError",
    "PyAVVideoReader",
    "SyntheticConfig",
    "SyntheticVideoTextDataModule",
    "VideoDecodeError",
    "VideoRecord",
    "VideoTextDataModule",
    "jittered_indices",
    "make_synthetic",
    "read_jsonl",
    "uniform_indices",
]
