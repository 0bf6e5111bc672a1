"""Data modules of the quality benchmark's synthetic world (:mod:`pig_lightning.data.worlds.scenes`).

Like :class:`~pig_lightning.data.datamodule.SyntheticVideoTextDataModule`, each generates its
set on first use (reused afterwards) at construction time, because the model needs the set's
tokenizer. ``tokenizer`` may point elsewhere, e.g. at the folder a stage-1 model was exported
to (``pig-lightning export``): it holds the same vocabulary.
"""

from __future__ import annotations

from typing import Literal

from pig_lightning.data.datamodule import VideoTextDataModule
from pig_lightning.data.worlds.scene_plans import SceneVideosConfig
from pig_lightning.data.worlds.scenes import SceneImagesConfig, make_scene_images, make_scene_videos


class SceneImagesDataModule(VideoTextDataModule):
    """The image-caption corpus for CLIP pretraining (stage 1): every image is a 1-frame video.

    Args:
        root: folder of the corpus (written on first use).
        num_train, num_val, captions_per_image, frame_size, synthetic_seed: the corpus
            (:class:`~pig_lightning.data.worlds.scenes.SceneImagesConfig`).
        tokenizer: default ``<root>/tokenizer``.
        Other arguments: as :class:`~pig_lightning.data.datamodule.VideoTextDataModule`.
    """

    def __init__(
        self,
        root: str = "data/scene_images",
        num_train: int = 20_000,
        num_val: int = 500,
        captions_per_image: int = 3,
        frame_size: int = 64,
        synthetic_seed: int = 0,
        tokenizer: str | None = None,
        image_size: int = 32,
        max_text_length: int = 24,
        batch_size: int = 128,
        eval_batch_size: int = 250,
        num_workers: int = 1,
        seed: int = 42,
    ):
        cfg = SceneImagesConfig(num_train=num_train, num_val=num_val, captions_per_image=captions_per_image,
                                frame_size=frame_size, seed=synthetic_seed)
        root_path = make_scene_images(root, cfg)
        super().__init__(
            video_root=str(root_path),
            train_annotations=str(root_path / "train.jsonl"),
            val_annotations=str(root_path / "val.jsonl") if num_val else None,
            tokenizer=tokenizer or str(root_path / "tokenizer"),
            num_frames=1,
            image_size=image_size,
            max_text_length=max_text_length,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            train_sampling="uniform",
        )


class SceneVideosDataModule(VideoTextDataModule):
    """The multi-event video set (stage 2: fine-tuning and evaluation of every tower).

    Args:
        root: folder of the set (written on first use).
        setting: what the captions say: ``"parts"`` (each names a different part of the video) or
            ``"salient"`` (all name the video's salient events); see
            :mod:`~pig_lightning.data.worlds.scene_plans`. Give each setting its own ``root``.
        num_train, num_val, num_test, events_per_video, events_per_caption, captions_per_video,
            distractor, frame_size, frames_per_event, synthetic_seed, salient_events,
            detail_probability, salient_size, minor_size, hard_negatives: the set
            (:class:`~pig_lightning.data.worlds.scene_plans.SceneVideosConfig`).
        tokenizer: default ``<root>/tokenizer``; the stage-1 export folder holds the same one.
        Other arguments: as :class:`~pig_lightning.data.datamodule.VideoTextDataModule`.
    """

    def __init__(
        self,
        root: str = "data/scene_videos",
        num_train: int = 1200,
        num_val: int = 100,
        num_test: int = 200,
        events_per_video: int = 4,
        events_per_caption: int = 2,
        captions_per_video: int = 4,
        distractor: bool = True,
        frame_size: int = 64,
        frames_per_event: int = 10,
        synthetic_seed: int = 0,
        setting: Literal["parts", "salient"] = "parts",
        salient_events: int = 2,
        detail_probability: float = 0.2,
        salient_size: float = 0.32,
        minor_size: float = 0.2,
        hard_negatives: bool = True,
        tokenizer: str | None = None,
        num_frames: int = 8,
        image_size: int = 32,
        max_text_length: int = 24,
        batch_size: int = 32,
        eval_batch_size: int = 50,
        num_workers: int = 1,
        seed: int = 42,
        train_sampling: str = "jittered",
    ):
        cfg = SceneVideosConfig(
            num_train=num_train, num_val=num_val, num_test=num_test, events_per_video=events_per_video,
            events_per_caption=events_per_caption, captions_per_video=captions_per_video, distractor=distractor,
            frame_size=frame_size, frames_per_event=frames_per_event, seed=synthetic_seed, setting=setting,
            salient_events=salient_events, detail_probability=detail_probability, salient_size=salient_size,
            minor_size=minor_size, hard_negatives=hard_negatives,
        )
        root_path = make_scene_videos(root, cfg)
        super().__init__(
            video_root=str(root_path),
            train_annotations=str(root_path / "train.jsonl") if num_train else None,
            val_annotations=str(root_path / "val.jsonl") if num_val else None,
            test_annotations=str(root_path / "test.jsonl") if num_test else None,
            tokenizer=tokenizer or str(root_path / "tokenizer"),
            num_frames=num_frames,
            image_size=image_size,
            max_text_length=max_text_length,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            train_sampling=train_sampling,
        )
