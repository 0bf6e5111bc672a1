"""Data: annotations, frame sampling, PyAV decoding, frame folders, transforms, datasets, the data module and its sources, synthetic sets.

Names are imported on first use (:mod:`pig_lightning.lazy`)."""

from pig_lightning.lazy import lazy_exports

_EXPORTS = {
    "AnnotationError": "pig_lightning.data.sources.annotations",
    "VideoRecord": "pig_lightning.data.sources.annotations",
    "read_jsonl": "pig_lightning.data.sources.annotations",
    "VideoTextDataModule": "pig_lightning.data.datamodule",
    "AnnotationFiles": "pig_lightning.data.source",
    "VideoSource": "pig_lightning.data.source",
    "OptimizedDatasets": "pig_lightning.data.optimized.streaming",
    "PyAVVideoReader": "pig_lightning.data.video.decoding",
    "VideoDecodeError": "pig_lightning.data.video.decoding",
    "FrameFolderReader": "pig_lightning.data.video.frame_folders",
    "ClipReader": "pig_lightning.data.video.readers",
    "load_frames": "pig_lightning.data.video.readers",
    "SceneImages": "pig_lightning.data.worlds.sources",
    "SceneVideos": "pig_lightning.data.worlds.sources",
    "SyntheticVideos": "pig_lightning.data.worlds.sources",
    "jittered_indices": "pig_lightning.data.video.sampling",
    "segment_indices": "pig_lightning.data.video.sampling",
    "uniform_indices": "pig_lightning.data.video.sampling",
    "SyntheticConfig": "pig_lightning.data.worlds.synthetic",
    "make_synthetic": "pig_lightning.data.worlds.synthetic",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
