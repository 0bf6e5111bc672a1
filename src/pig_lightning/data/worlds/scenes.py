"""The quality benchmark's synthetic world: an image-caption corpus and a multi-event video set.

Both are drawn from one small world of coloured shapes on noisy backgrounds and share one
tokenizer, so a CLIP pretrained on the images (stage 1) can be fine-tuned on the videos
(stage 2), as real CLIP models are pretrained on image-text pairs and fine-tuned on video.

* **Images** (what CLIP is pretrained on): one or two still objects, each with a colour, a
  shape, a size and a position; the captions say what is visible ("a big red circle on the
  left and a small blue cross at the top"). No motion: motion is what video fine-tuning learns.
* **Videos** (where fine-grained interaction can matter): ``events_per_video`` events in
  sequence, each a coloured shape moving in one direction, plus a small static *distractor*
  object that no caption mentions. What the captions say is the *setting*
  (:mod:`pig_lightning.data.worlds.scene_plans`): in ``parts`` each caption names a different part of
  the video; in ``salient`` every caption names the video's big (salient) events and small minor
  events are other videos' salient ones. In both, every query has exactly one right video.

Layout of a generated folder: ``images/*.jpg`` or ``videos/*.mp4``, ``{split}.jsonl`` in the
generic annotation format (with the scene description under ``meta``), ``tokenizer/`` and
``manifest.json`` (written last; see :func:`~pig_lightning.data.worlds.synthetic.build_dataset_folder`).
The design and why it is so are in ``docs/quality.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import av
import numpy as np

from pig_lightning.data.worlds.encoding import write_mp4
from pig_lightning.data.worlds.scene_plans import Event, SceneVideosConfig, plan_videos
from pig_lightning.data.worlds.scene_world import (
    COLOURS,
    EVENT_JOINERS,
    EVENT_TEMPLATES,
    IMAGE_JOINERS,
    OBJECT_TEMPLATES,
    POSITIONS,
    SHAPES,
    SIZES,
    MOTIONS,
    ImageObject,
    vocabulary,
)

__all__ = [  # the world's words are re-exported: callers find the whole synthetic world here
    "COLOURS", "EVENT_JOINERS", "EVENT_TEMPLATES", "IMAGE_JOINERS", "MOTIONS", "OBJECT_TEMPLATES", "POSITIONS",
    "SHAPES", "SIZES", "SceneImagesConfig", "SceneVideosConfig", "make_scene_images", "make_scene_videos",
    "render_image", "render_planned", "render_scene_video", "vocabulary", "write_jpeg",
]
from pig_lightning.data.worlds.synthetic import (
    _shape_mask,
    build_dataset_folder,
    check_set_sizes,
    run_jobs,
    write_splits,
    write_tokenizer_folder,
)

IMAGES_FORMAT_VERSION = 1
VIDEOS_FORMAT_VERSION = 2  # 2: videos encoded losslessly (data/worlds/encoding.py)

def _draw(img: np.ndarray, shape: str, side: float, cx: float, cy: float, rgb: np.ndarray) -> None:
    size = img.shape[0]
    if shape == "cross":
        arm = side / 2
        bar = side / 6
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        mask = ((np.abs(xx - cx) <= arm) & (np.abs(yy - cy) <= bar)) | (
            (np.abs(yy - cy) <= arm) & (np.abs(xx - cx) <= bar))
    else:
        mask = _shape_mask(shape, side, cx, cy, size)
    img[mask] = rgb


def _background(fs: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(0, 90, size=3).astype(np.float32)
    return base + rng.normal(0, 10, size=(fs, fs, 3)).astype(np.float32)


def _noisy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, 6, size=img.shape).astype(np.float32), 0, 255).astype(np.uint8)


def _colour(name: str, rng: np.random.Generator) -> np.ndarray:
    return np.array(COLOURS[name], dtype=np.float32) + rng.uniform(-15, 15, size=3)


# ----- images ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SceneImagesConfig:
    """Parameters of the image-caption corpus (stage-1 pretraining)."""

    num_train: int = 20_000
    num_val: int = 500
    captions_per_image: int = 3
    frame_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_set_sizes(self, ("num_train", "num_val"))
        if self.num_train < 1 or self.captions_per_image < 1:
            raise ValueError(f"num_train and captions_per_image must be >= 1, got {self.num_train}, "
                             f"{self.captions_per_image}")


def render_image(objects: list[ImageObject], frame_size: int, rng: np.random.Generator) -> np.ndarray:
    """``uint8 [H, W, 3]`` with the objects drawn at their positions (jittered a little)."""
    img = _background(frame_size, rng)
    for colour, shape, size, position in objects:
        fx, fy = POSITIONS[position]
        cx = (fx + rng.uniform(-0.05, 0.05)) * frame_size
        cy = (fy + rng.uniform(-0.05, 0.05)) * frame_size
        side = SIZES[size] * rng.uniform(0.9, 1.1) * frame_size
        _draw(img, shape, side, cx, cy, _colour(colour, rng))
    return _noisy(img, rng)


def image_caption(objects: list[ImageObject], rng: np.random.Generator) -> str:
    phrases = []
    for colour, shape, size, position in objects:
        template = OBJECT_TEMPLATES[rng.integers(len(OBJECT_TEMPLATES))]
        phrases.append(template.format(colour=colour, shape=shape, size=size, position=position))
    if len(phrases) == 1:
        return phrases[0]
    order = rng.permutation(len(phrases))
    return IMAGE_JOINERS[rng.integers(len(IMAGE_JOINERS))].format(a=phrases[order[0]], b=phrases[order[1]])


def _plan_images(cfg: SceneImagesConfig) -> list[dict]:
    rng = np.random.default_rng([cfg.seed, 0])
    objects = list(itertools.product(COLOURS, SHAPES, SIZES, POSITIONS))
    records = []
    splits = ["train"] * cfg.num_train + ["val"] * cfg.num_val
    for index, split in enumerate(splits):
        count = 1 if rng.random() < 0.4 else 2
        chosen: list[ImageObject] = []
        while len(chosen) < count:  # two objects never share a position
            candidate = objects[rng.integers(len(objects))]
            if all(candidate[3] != other[3] for other in chosen):
                chosen.append(candidate)
        captions = list(dict.fromkeys(image_caption(chosen, rng) for _ in range(cfg.captions_per_image)))
        records.append({"split": split, "video_id": f"img{index:06d}", "video": f"images/img{index:06d}.jpg",
                        "captions": captions, "objects": [list(o) for o in chosen]})
    return records


def write_jpeg(path: Path, image: np.ndarray) -> None:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "yuvj444p"
        stream.codec_context.options = {"q:v": "2", "threads": "1"}
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _make_image(job: tuple[int, list, str, SceneImagesConfig]) -> None:
    index, objects, path, cfg = job
    rng = np.random.default_rng([cfg.seed, index, 1])
    write_jpeg(Path(path), render_image([tuple(o) for o in objects], cfg.frame_size, rng))


def make_scene_images(root: str | Path, cfg: SceneImagesConfig | None = None,
                      num_workers: int | None = None) -> Path:
    """Write (or reuse) the image-caption corpus in ``root``: ``images/``, ``train.jsonl``,
    ``val.jsonl``, ``tokenizer/``, ``manifest.json``."""
    cfg = cfg or SceneImagesConfig()

    def write(tmp: Path) -> None:
        records = _plan_images(cfg)
        (tmp / "images").mkdir()
        jobs = [(i, r["objects"], str(tmp / r["video"]), cfg) for i, r in enumerate(records)]
        run_jobs(_make_image, jobs, num_workers, f"writing {len(jobs)} synthetic images to {root}")
        write_splits(tmp, records, ("train", "val"))
        write_tokenizer_folder(tmp / "tokenizer", vocabulary())

    manifest = {"kind": "scene-images", "format_version": IMAGES_FORMAT_VERSION, "config": dataclasses.asdict(cfg)}
    return build_dataset_folder(root, manifest, write)


# ----- videos ----------------------------------------------------------------------------------
def render_scene_video(events: list[Event], distractor: ImageObject | None, cfg: SceneVideosConfig,
                       rng: np.random.Generator, sizes: list[str] | None = None) -> np.ndarray:
    """``uint8 [events x frames_per_event, H, W, 3]``: the events one after the other, the
    distractor (if any) still in its corner the whole time. ``sizes`` (``"big"`` / ``"small"`` per
    event, the ``salient`` setting) draws each object at ``cfg.salient_size`` / ``cfg.minor_size``
    (+-10 %); without it, sides are drawn from 0.22-0.3 of the frame (``parts``)."""
    fs, n = cfg.frame_size, cfg.frames_per_event
    background = _background(fs, rng)
    if distractor is not None:
        corner = [(0.12, 0.12), (0.88, 0.12), (0.12, 0.88), (0.88, 0.88)][rng.integers(4)]
        _draw(background, distractor[1], 0.16 * fs, corner[0] * fs, corner[1] * fs, _colour(distractor[0], rng))
    frames = []
    for k_event, (colour, shape, motion) in enumerate(events):
        if sizes is None:
            side = rng.uniform(0.22, 0.3) * fs
        else:
            side = (cfg.salient_size if sizes[k_event] == "big" else cfg.minor_size) * rng.uniform(0.9, 1.1) * fs
        travel = rng.uniform(0.25, 0.32) * fs
        cx0 = fs / 2 + rng.uniform(-0.05, 0.05) * fs
        cy0 = fs / 2 + rng.uniform(-0.05, 0.05) * fs
        dx, dy = MOTIONS[motion]
        rgb = _colour(colour, rng)
        for k in range(n):
            t = k / (n - 1)
            img = background.copy()
            _draw(img, shape, side, cx0 + dx * travel * t, cy0 + dy * travel * t, rgb)
            frames.append(_noisy(img, rng))
    return np.stack(frames)


def render_planned(record: dict, index: int, cfg: SceneVideosConfig) -> np.ndarray:
    """The frames of the ``index``-th record of :func:`~pig_lightning.data.worlds.scene_plans.plan_videos`
    (also what its written file decodes to, up to the 4:2:0 conversion)."""
    rng = np.random.default_rng([cfg.seed, index, 1])
    distractor = record.get("distractor")
    return render_scene_video([tuple(e) for e in record["events"]], tuple(distractor) if distractor else None, cfg,
                              rng, record.get("sizes"))


def _make_video(job: tuple[int, dict, str, SceneVideosConfig]) -> None:
    index, record, path, cfg = job
    write_mp4(Path(path), render_planned(record, index, cfg), cfg.fps)


def make_scene_videos(root: str | Path, cfg: SceneVideosConfig | None = None,
                      num_workers: int | None = None) -> Path:
    """Write (or reuse) the multi-event video set in ``root``: ``videos/``,
    ``{train,val,test}.jsonl``, ``tokenizer/``, ``manifest.json``."""
    cfg = cfg or SceneVideosConfig()

    def write(tmp: Path) -> None:
        records = plan_videos(cfg)
        (tmp / "videos").mkdir()
        jobs = [(i, r, str(tmp / r["video"]), cfg) for i, r in enumerate(records)]
        run_jobs(_make_video, jobs, num_workers, f"writing {len(jobs)} synthetic scene videos to {root}")
        write_splits(tmp, records)
        write_tokenizer_folder(tmp / "tokenizer", vocabulary())

    manifest = {"kind": "scene-videos", "format_version": VIDEOS_FORMAT_VERSION, "config": dataclasses.asdict(cfg)}
    return build_dataset_folder(root, manifest, write)
