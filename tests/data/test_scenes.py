"""The quality benchmark's synthetic world: image corpus and multi-event videos."""

import json
from pathlib import Path

import numpy as np
import pytest

from pig_lightning.data import SceneImages, SceneVideos, VideoTextDataModule
from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.data.worlds.encoding import decode_yuv420p, rgb_to_yuv420p
from pig_lightning.data.video.readers import load_frames
from pig_lightning.data.worlds.scenes import (
    COLOURS,
    EVENT_TEMPLATES,
    SHAPES,
    SceneImagesConfig,
    SceneVideosConfig,
    make_scene_images,
    make_scene_videos,
    render_scene_video,
)
from pig_lightning.weights.hf_folder import load_tokenizer

IMAGES = SceneImagesConfig(num_train=40, num_val=8, captions_per_image=3, seed=3)
VIDEOS = SceneVideosConfig(num_train=12, num_val=6, num_test=10, frames_per_event=4, frame_size=32, seed=3)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    return make_scene_images(tmp_path_factory.mktemp("scenes") / "images", IMAGES, num_workers=1)


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    return make_scene_videos(tmp_path_factory.mktemp("scenes") / "videos", VIDEOS, num_workers=1)


def _names(caption: str) -> set[str]:
    words = set(caption.replace(",", " ").split())
    return {w for w in words if w in COLOURS or w in SHAPES}


def test_image_captions_say_what_is_visible(image_root):
    records = read_jsonl(image_root / "train.jsonl") + read_jsonl(image_root / "val.jsonl")
    assert len(records) == 48
    for record in records:
        objects = record.meta["objects"]
        assert 1 <= len(objects) <= 2 and len({o[3] for o in objects}) == len(objects)  # distinct positions
        visible = {o[0] for o in objects} | {o[1] for o in objects}
        for caption in record.captions:
            assert _names(caption) == visible, (caption, objects)
            for colour, shape, size, position in objects:
                assert position in caption
            for motion_word in ("moves", "goes", "slides"):
                assert motion_word not in caption.split()  # no motion in the image corpus


def test_image_pixels_show_the_objects(image_root):
    record = read_jsonl(image_root / "train.jsonl")[0]
    image = load_frames(image_root / record.video, 1, size=64)[0].numpy().astype(float)
    for colour, *_ in record.meta["objects"]:
        distance = np.linalg.norm(image - np.array(COLOURS[colour]), axis=-1)
        assert (distance < 60).sum() > 20, colour  # enough pixels of the object's colour


def _phrase_position(caption: str, event) -> int:
    colour, shape, motion = event
    phrases = [t.format(colour=colour, shape=shape, motion=motion) for t in EVENT_TEMPLATES]
    found = [caption.index(p) for p in phrases if p in caption]
    assert found, (caption, event)
    return found[0]


def test_video_captions_name_a_subset_of_the_events_in_order(video_root):
    for split in ("train", "val", "test"):
        for record in read_jsonl(video_root / f"{split}.jsonl"):
            events = [tuple(e) for e in record.meta["events"]]
            assert len(events) == VIDEOS.events_per_video
            subsets = [tuple(s) for s in record.meta["captioned"]]
            assert len(set(subsets)) == len(subsets) == VIDEOS.captions_per_video  # different parts per caption
            for caption, subset in zip(record.captions, subsets):
                assert len(subset) == VIDEOS.events_per_caption and list(subset) == sorted(subset)
                named = [events[i] for i in subset]
                positions = [_phrase_position(caption, e) for e in named]
                if named[0] == named[1]:
                    continue
                if " after " in caption:  # "{second} after {first}"
                    assert positions[1] < positions[0]
                else:
                    assert positions[0] < positions[1], caption
                assert _names(caption) == {e[0] for e in named} | {e[1] for e in named}


def test_evaluation_splits_have_one_right_video_per_query(video_root):
    for split in ("val", "test"):
        seen = {}
        for record in read_jsonl(video_root / f"{split}.jsonl"):
            events = [tuple(e) for e in record.meta["events"]]
            for subset in record.meta["captioned"]:
                key = tuple(events[i] for i in subset)
                assert key not in seen, (split, key, seen.get(key), record.video_id)
                seen[key] = record.video_id


def test_video_frames_show_each_event_in_its_segment():
    cfg = SceneVideosConfig(frames_per_event=3, frame_size=32)
    events = [("red", "circle", "left"), ("blue", "square", "up"), ("yellow", "cross", "down"), ("white", "triangle", "right")]
    frames = render_scene_video(events, ("green", "square", "small", "corner"), cfg, np.random.default_rng(0))
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8
    for k, (colour, _, _) in enumerate(events):
        segment = frames[3 * k : 3 * k + 3].astype(float)
        others = np.delete(frames, range(3 * k, 3 * k + 3), axis=0).astype(float)
        near = lambda x: (np.linalg.norm(x - np.array(COLOURS[colour]), axis=-1) < 50).sum()  # noqa: E731
        assert near(segment) / 3 > 2 * near(others) / 9 + 5, colour
    # the object moves: its centre of mass shifts the way the event says (left: x decreases)
    red = np.linalg.norm(frames[:3].astype(float) - np.array(COLOURS["red"]), axis=-1) < 50
    xs = [np.nonzero(mask)[1].mean() for mask in red]
    assert xs[0] > xs[-1]


def test_sets_are_deterministic_and_share_one_tokenizer(tmp_path, video_root, image_root):
    again = make_scene_videos(tmp_path / "again", VIDEOS, num_workers=2)
    for name in ("train.jsonl", "test.jsonl", "manifest.json"):
        assert (again / name).read_text() == (video_root / name).read_text()
    for index, record in enumerate(read_jsonl(video_root / "train.jsonl")[:3]):  # decoded, not bytes
        decoded = decode_yuv420p(video_root / record.video)
        assert np.array_equal(decoded, decode_yuv420p(again / record.video))
        rng = np.random.default_rng([VIDEOS.seed, index, 1])  # lossless: exactly the rendered frames
        distractor = record.meta["distractor"]
        rendered = render_scene_video([tuple(e) for e in record.meta["events"]],
                                      tuple(distractor) if distractor else None, VIDEOS, rng)
        assert np.array_equal(decoded, rgb_to_yuv420p(rendered))
    assert (video_root / "tokenizer" / "vocab.json").read_text() == (image_root / "tokenizer" / "vocab.json").read_text()
    tokenizer = load_tokenizer(str(video_root / "tokenizer"))
    for root, split in ((video_root, "train"), (image_root, "train")):
        for record in read_jsonl(root / f"{split}.jsonl"):
            for caption in record.captions:
                words = caption.replace(",", " ,").split()
                assert len(tokenizer(caption)["input_ids"]) == len(words) + 2  # every word is one token


def test_other_parameters_are_refused_naming_the_key(video_root):
    other = SceneVideosConfig(**{**json.loads((video_root / "manifest.json").read_text())["config"], "num_test": 9})
    with pytest.raises(FileExistsError, match="num_test"):
        make_scene_videos(video_root, other)
    with pytest.raises(ValueError, match="captions_per_video"):
        SceneVideosConfig(events_per_video=3, events_per_caption=2, captions_per_video=4)


def test_data_modules_give_batches_of_the_right_shape(tmp_path, image_root, video_root):
    videos = VideoTextDataModule(SceneVideos(root=str(video_root), num_train=12, num_val=6, num_test=10,
                                             frames_per_event=4, frame_size=32, synthetic_seed=3),
                                 num_frames=8, image_size=32, max_text_length=24, batch_size=4, num_workers=0)
    videos.setup("fit")
    batch = next(iter(videos.train_dataloader()))
    assert batch["frames"].shape == (4, 8, 32, 32, 3)
    images = VideoTextDataModule(SceneImages(root=str(image_root), num_train=40, num_val=8, synthetic_seed=3),
                                 num_frames=1, image_size=32, max_text_length=24, batch_size=8, num_workers=0,
                                 train_sampling="uniform")
    images.setup("fit")
    batch = next(iter(images.train_dataloader()))
    assert images.num_frames == 1 and batch["frames"].shape == (8, 1, 32, 32, 3)


def test_data_module_settings_a_source_cannot_serve_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="data.num_frames must be 1 for SceneImages"):
        VideoTextDataModule(SceneImages(root=str(tmp_path / "images")), num_frames=8, image_size=32)
    with pytest.raises(TypeError, match="data.source must be a VideoSource"):
        VideoTextDataModule({"video_root": str(tmp_path)}, num_frames=8)
    assert list(tmp_path.iterdir()) == []
