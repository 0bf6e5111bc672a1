"""Data: annotations, frame sampling, PyAV decoding, frame folders, transforms, datasets, data modules, synthetic set."""

from pig_lightning.data.sources.annotations import AnnotationError, VideoRecord, read_jsonl
from pig_lightning.data.datamodule import SyntheticVideoTextDataModule, VideoTextDataModule
from pig_lightning.data.video.decoding import PyAVVideoReader, VideoDecodeError
from pig_lightning.data.video.frame_folders import FrameFolderReader
from pig_lightning.data.video.readers import ClipReader, load_frames
from pig_lightning.data.worlds.scene_datamodules import SceneImagesDataModule, SceneVideosDataModule
from pig_lightning.data.video.sampling import jittered_indices, segment_indices, uniform_indices
from pig_lightning.data.worlds.synthetic import SyntheticConfig, make_synthetic

__all__ = [
    "AnnotationError",
    "ClipReader",
    "FrameFolderReader",
    "PyAVVideoReader",
    "SceneImagesDataModule",
    "SceneVideosDataModule",
    "SyntheticConfig",
    "SyntheticVideoTextDataModule",
    "VideoDecodeError",
    "VideoRecord",
    "VideoTextDataModule",
    "jittered_indices",
    "load_frames",
    "make_synthetic",
    "read_jsonl",
    "segment_indices",
    "uniform_indices",
]
