"""The two settings of the quality benchmark, checked on the plans the shipped configs write."""

from pathlib import Path

import numpy as np
import pytest

from pig_lightning.data import SceneVideos, VideoTextDataModule
from pig_lightning.data.worlds.scene_plans import SceneVideosConfig, caption_agreement, plan_videos
from pig_lightning.data.worlds.scenes import COLOURS, render_planned

PLANS = {setting: plan_videos(SceneVideosConfig(setting=setting)) for setting in ("parts", "salient")}


def _labelled(record: dict) -> list[tuple]:
    sizes = record.get("sizes") or [None] * len(record["events"])
    return [(*event, size) for event, size in zip(record["events"], sizes)]


def _contains_in_order(events: list[tuple], named: list[tuple]) -> bool:
    position = 0
    for event in events:
        if position < len(named) and event == named[position]:
            position += 1
    return position == len(named)


@pytest.mark.parametrize("setting", ["parts", "salient"])
def test_every_evaluation_query_has_exactly_one_video_that_contains_its_events_in_order(setting):
    records = PLANS[setting]
    for split in ("val", "test"):
        videos = [r for r in records if r["split"] == split]
        assert len(videos) == {"val": 100, "test": 200}[split]
        for record in videos:
            events = _labelled(record)
            for caption, subset in zip(record["captions"], record["captioned"]):
                named = [events[i] for i in subset]
                matches = [v["video_id"] for v in videos if _contains_in_order(_labelled(v), named)]
                assert matches == [record["video_id"]], (split, caption, matches)


def test_parts_captions_name_different_parts_and_salient_captions_agree():
    parts, salient = caption_agreement(PLANS["parts"]), caption_agreement(PLANS["salient"])
    assert 0.2 < parts < 0.35 and salient > 0.8, (parts, salient)
    for record in PLANS["salient"]:
        big = [i for i, size in enumerate(record["sizes"]) if size == "big"]
        assert len(big) == 2 and len(record["captions"]) == 4 == len(set(record["captions"]))
        for caption, subset in zip(record["captions"], record["captioned"]):
            assert set(big) <= set(subset) and len(subset) <= 3, caption  # the salient events, at most one detail
            assert caption.count("big") == 2 and caption.count("small") == len(subset) - 2, caption


def test_salient_minor_events_are_other_videos_salient_events_in_evaluation():
    for split in ("val", "test"):
        videos = [r for r in PLANS["salient"] if r["split"] == split]
        owners: dict[tuple, set[str]] = {}
        for v in videos:
            for event, size in zip(v["events"], v["sizes"]):
                if size == "big":
                    owners.setdefault(tuple(event), set()).add(v["video_id"])
        for v in videos:
            for event, size in zip(v["events"], v["sizes"]):
                if size == "small":
                    assert owners.get(tuple(event), set()) - {v["video_id"]}, (v["video_id"], event)


def test_salient_events_are_big_in_the_pixels():
    cfg = SceneVideosConfig(setting="salient", frame_size=64, frames_per_event=4, distractor=False)
    record = next(r for r in PLANS["salient"] if r["split"] == "test")
    index = PLANS["salient"].index(record)
    all_small = {**record, "sizes": ["small"] * len(record["sizes"])}  # the same draws, every object small

    def areas(rec: dict) -> list[float]:
        frames = render_planned(rec, index, cfg).astype(float)
        return [(np.linalg.norm(frames[4 * k: 4 * k + 4] - np.array(COLOURS[colour]), axis=-1) < 40).sum() / 4
                for k, (colour, _, _) in enumerate(rec["events"])]

    for size, shown, small in zip(record["sizes"], areas(record), areas(all_small)):
        if size == "big":  # side 0.32 vs 0.2 of the frame: about 2.6x the area
            assert shown > 1.8 * small, (record["events"], shown, small)
        else:
            assert shown == small


@pytest.mark.parametrize("changes, message", [
    ({"setting": "mixed"}, r"setting must be one of \('parts', 'salient'\), got 'mixed'"),
    ({"setting": "salient", "detail_probability": 1.5}, r"setting 'salient': detail_probability must be in \[0, 1\]"),
    ({"setting": "salient", "detail_probability": -0.1}, r"detail_probability must be in \[0, 1\]"),
    ({"setting": "salient", "salient_events": 5}, r"setting 'salient': salient_events must be in \[1, events_per_video=4\]"),
    ({"setting": "salient", "salient_size": 0.6}, r"salient_size must be in \(0, 0.4\] of the frame"),
    ({"setting": "salient", "minor_size": 0.35}, r"minor_size must be below salient_size"),
    ({"setting": "parts", "num_test": 900}, r"setting 'parts': num_test=900 is too many for unique event pairs: at most 768"),
    ({"setting": "salient", "num_val": 4000}, r"setting 'salient': num_val=4000 is too many .* at most 3072"),
])
def test_out_of_range_settings_are_refused_before_any_video_is_written(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        SceneVideosConfig(**changes)
    root = tmp_path / "videos"
    with pytest.raises(ValueError, match=message):
        VideoTextDataModule(SceneVideos(root=str(root), **changes), num_frames=8, image_size=32)
    assert not root.exists() and list(tmp_path.iterdir()) == []


def test_a_salient_set_is_written_and_read(tmp_path):
    source = SceneVideos(root=str(tmp_path / "salient"), setting="salient", num_train=8, num_val=4, num_test=4,
                         frames_per_event=3, frame_size=32)
    module = VideoTextDataModule(source, num_frames=8, image_size=32, max_text_length=24, batch_size=4,
                                 num_workers=0)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["frames"].shape == (4, 8, 32, 32, 3)
    manifest = (Path(tmp_path / "salient") / "manifest.json").read_text()
    assert '"setting": "salient"' in manifest


def test_every_caption_fits_the_quality_recipes_text_length():
    import yaml

    from pig_lightning.weights.hf_folder import load_tokenizer

    root = Path(__file__).resolve().parents[2]
    limit = yaml.safe_load((root / "conf/quality/pig.yaml").read_text())["data"]["max_text_length"]
    tokenizer = load_tokenizer(str(root / "assets/clip-tiny-scenes"))
    longest = max(len(tokenizer(c)["input_ids"]) for plan in PLANS.values() for r in plan for c in r["captions"])
    assert longest <= limit, (longest, limit)
