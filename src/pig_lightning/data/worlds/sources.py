"""The generated sets as data sources: annotation files they write themselves.

Each is an :class:`~pig_lightning.data.source.AnnotationFiles` over its own folder. The set is
written by :meth:`prepare` (Lightning's ``prepare_data``; reused when the folder already holds it,
refused when it holds another), not when the source is built. The model needs the set's
tokenizer to be built, so asking for :attr:`tokenizer` prepares the set too; a ``tokenizer``
given to the data module (e.g. the folder a stage-1 model was exported to, which holds the same
vocabulary) is used as it is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from pig_lightning.data.source import AnnotationFiles
from pig_lightning.data.worlds.scene_plans import SceneVideosConfig
from pig_lightning.data.worlds.scenes import SceneImagesConfig, make_scene_images, make_scene_videos
from pig_lightning.data.worlds.synthetic import SyntheticConfig, make_synthetic


class GeneratedSet(AnnotationFiles):
    """A set written into ``root`` by ``make(root, config)``: ``{train,val,test}.jsonl``, the
    videos and a ``tokenizer/`` folder (the splits with no videos have no file)."""

    TRAIN_KEY = "data.source.num_train > 0"

    def __init__(self, root: str, config, make, splits: dict[str, int], on_decode_error: str = "raise",
                 cache_frames_mib: float = 0):
        folder = Path(root)
        files = {f"{split}_annotations": str(folder / f"{split}.jsonl") if count else None
                 for split, count in splits.items()}
        super().__init__(video_root=str(folder), on_decode_error=on_decode_error, cache_frames_mib=cache_frames_mib,
                         **files)
        self.config = config
        self._make = make
        self._prepared = False

    def prepare(self) -> None:
        if not self._prepared:
            self._make(self.video_root, self.config)
            self._prepared = True

    @property
    def tokenizer(self) -> str:
        self.prepare()
        return str(Path(self.video_root) / "tokenizer")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.video_root!r}, {dataclasses.asdict(self.config)})"


class SyntheticVideos(GeneratedSet):
    """The embedded synthetic set (:mod:`pig_lightning.data.worlds.synthetic`): each video shows
    two events (a coloured shape moving), each caption names them in order.

    Args:
        root: folder of the set (written on first use).
        num_train, num_val, num_test, captions_per_video, frame_size, frames_per_event,
            synthetic_seed: the set (:class:`~pig_lightning.data.worlds.synthetic.SyntheticConfig`).
        on_decode_error, cache_frames_mib: as :class:`~pig_lightning.data.source.AnnotationFiles`.
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        num_train: int = 480,
        num_val: int = 80,
        num_test: int = 80,
        captions_per_video: int = 4,
        frame_size: int = 64,
        frames_per_event: int = 12,
        synthetic_seed: int = 0,
        on_decode_error: str = "raise",
        cache_frames_mib: float = 0,
    ):
        config = SyntheticConfig(num_train=num_train, num_val=num_val, num_test=num_test,
                                 captions_per_video=captions_per_video, frame_size=frame_size,
                                 frames_per_event=frames_per_event, seed=synthetic_seed)
        super().__init__(root, config, make_synthetic, {"train": num_train, "val": num_val, "test": num_test},
                         on_decode_error=on_decode_error, cache_frames_mib=cache_frames_mib)


class SceneImages(GeneratedSet):
    """The image-caption corpus for CLIP pretraining (stage 1 of the quality benchmark): every
    image is a 1-frame video, so the data module reads it with ``num_frames: 1`` (checked).

    Args:
        root: folder of the corpus (written on first use).
        num_train, num_val, captions_per_image, frame_size, synthetic_seed: the corpus
            (:class:`~pig_lightning.data.worlds.scenes.SceneImagesConfig`).
    """

    def __init__(
        self,
        root: str = "data/scene_images",
        num_train: int = 20_000,
        num_val: int = 500,
        captions_per_image: int = 3,
        frame_size: int = 64,
        synthetic_seed: int = 0,
    ):
        config = SceneImagesConfig(num_train=num_train, num_val=num_val, captions_per_image=captions_per_image,
                                   frame_size=frame_size, seed=synthetic_seed)
        super().__init__(root, config, make_scene_images, {"train": num_train, "val": num_val, "test": 0})

    def check(self, data) -> None:
        super().check(data)
        if data.num_frames != 1:
            raise ValueError(f"data.num_frames must be 1 for SceneImages (every image is a 1-frame video), "
                             f"got {data.num_frames}")


class SceneVideos(GeneratedSet):
    """The multi-event video set (stage 2 of the quality benchmark: fine-tuning and evaluation of
    every tower).

    Args:
        root: folder of the set (written on first use). Give each setting its own ``root``.
        setting: what the captions say: ``"parts"`` (each names a different part of the video) or
            ``"salient"`` (all name the video's salient events); see
            :mod:`~pig_lightning.data.worlds.scene_plans`.
        num_train, num_val, num_test, events_per_video, events_per_caption, captions_per_video,
            distractor, frame_size, frames_per_event, synthetic_seed, salient_events,
            detail_probability, salient_size, minor_size, hard_negatives: the set
            (:class:`~pig_lightning.data.worlds.scene_plans.SceneVideosConfig`).
    """

    def __init__(
        self,
        root: str = "data/scene_videos",
        setting: Literal["parts", "salient"] = "parts",
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
        salient_events: int = 2,
        detail_probability: float = 0.2,
        salient_size: float = 0.32,
        minor_size: float = 0.2,
        hard_negatives: bool = True,
        cache_frames_mib: float = 0,
    ):
        config = SceneVideosConfig(
            num_train=num_train, num_val=num_val, num_test=num_test, events_per_video=events_per_video,
            events_per_caption=events_per_caption, captions_per_video=captions_per_video, distractor=distractor,
            frame_size=frame_size, frames_per_event=frames_per_event, seed=synthetic_seed, setting=setting,
            salient_events=salient_events, detail_probability=detail_probability, salient_size=salient_size,
            minor_size=minor_size, hard_negatives=hard_negatives,
        )
        super().__init__(root, config, make_scene_videos, {"train": num_train, "val": num_val, "test": num_test},
                         cache_frames_mib=cache_frames_mib)
