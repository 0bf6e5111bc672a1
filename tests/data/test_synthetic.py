import json
from pathlib import Path

import numpy as np
import pytest

from pig_lightning.commands import make_synthetic as make_synthetic_command
from pig_lightning.data.worlds import synthetic
from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.data.video.decoding import PyAVVideoReader
from pig_lightning.data.worlds.encoding import decode_yuv420p, rgb_to_yuv420p
from pig_lightning.data.video.sampling import uniform_indices
from pig_lightning.data.worlds.synthetic import SyntheticConfig, make_synthetic
from pig_lightning.weights.hf_folder import load_tokenizer

from tests.helpers import SMALL_SYNTHETIC


def test_generation_is_deterministic_in_what_is_decoded(tmp_path, synthetic_root):
    again = make_synthetic(tmp_path / "again", SMALL_SYNTHETIC, num_workers=2)
    first = Path(synthetic_root)
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "manifest.json"):
        assert (first / name).read_text() == (again / name).read_text(), name
    videos = sorted(p.name for p in (first / "videos").iterdir())
    assert videos == sorted(p.name for p in (again / "videos").iterdir())
    records = [r for s in ("train", "val", "test") for r in read_jsonl(first / f"{s}.jsonl")]
    for index, record in enumerate(records):  # decoded planes, not file bytes (see data/worlds/encoding.py)
        decoded = decode_yuv420p(first / record.video)
        assert np.array_equal(decoded, decode_yuv420p(again / record.video)), record.video
        if index < 3:  # exactly the frames rendered from the plan, as the encoding is lossless
            first_event, second_event = (tuple(e) for e in record.meta["events"].values())
            rng = np.random.default_rng([SMALL_SYNTHETIC.seed, index, 1])
            rendered = synthetic.render_video(first_event, second_event, SMALL_SYNTHETIC, rng)
            assert np.array_equal(decoded, rgb_to_yuv420p(rendered)), record.video


def test_every_video_decodes_to_its_frames(synthetic_root):
    reader = PyAVVideoReader(size=32)
    expected = 2 * SMALL_SYNTHETIC.frames_per_event
    for split in ("train", "val", "test"):
        for record in read_jsonl(Path(synthetic_root) / f"{split}.jsonl"):
            frames, idx = reader.read(Path(synthetic_root) / record.video, lambda n: uniform_indices(n, 4))
            assert frames.shape == (4, 32, 32, 3)
            assert idx[-1] == expected - 1  # the container reports the full clip


def test_splits_sizes_captions_and_no_caption_shared(synthetic_root):
    root = Path(synthetic_root)
    splits = {s: read_jsonl(root / f"{s}.jsonl") for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [24, 10, 10]
    captions = {s: {c for r in recs for c in r.captions} for s, recs in splits.items()}
    assert not captions["train"] & captions["val"]
    assert not captions["train"] & captions["test"]
    assert not captions["val"] & captions["test"]
    for records in splits.values():
        for r in records:
            assert len(r.captions) == 3 and len(set(r.captions)) == 3
            first, second = r.meta["events"]["first"], r.meta["events"]["second"]
            for c in r.captions:  # every paraphrase names both events
                assert all(w in c for w in first + second)


def test_tokenizer_covers_every_caption_word_with_one_token(synthetic_root):
    tok = load_tokenizer(str(Path(synthetic_root) / "tokenizer"))
    for word in synthetic.vocabulary():
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word


def test_existing_set_is_reused_and_a_different_one_refused(tmp_path):
    cfg = SyntheticConfig(num_train=2, num_val=1, num_test=1, captions_per_video=2, frame_size=32,
                          frames_per_event=2)
    root = make_synthetic(tmp_path / "s", cfg, num_workers=1)
    stamp = (root / "videos" / "synth00000.mp4").stat().st_mtime_ns
    make_synthetic(root, cfg, num_workers=1)
    assert (root / "videos" / "synth00000.mp4").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match=r"num_train.*\(2, 3\)"):
        make_synthetic(root, SyntheticConfig(**{**cfg.__dict__, "num_train": 3}), num_workers=1)


def test_folder_without_manifest_is_never_trusted(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train.jsonl").write_text("")
    with pytest.raises(FileExistsError, match="not a complete synthetic set"):
        make_synthetic(tmp_path / "half", SyntheticConfig(num_train=1, num_val=0, num_test=0))


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    def interrupted(folder, words=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_tokenizer_folder", interrupted)
    cfg = SyntheticConfig(num_train=2, num_val=1, num_test=1, frame_size=32, frames_per_event=2)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic(tmp_path / "s", cfg, num_workers=1)
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="captions_per_video"):
        SyntheticConfig(captions_per_video=0)
    with pytest.raises(ValueError, match="distinct videos"):
        SyntheticConfig(num_train=100_000)


def test_command_line(tmp_path, capsys):
    make_synthetic_command.main([str(tmp_path / "cli"), "--num_train", "2", "--num_val", "1", "--num_test", "1",
                    "--frame_size", "32", "--frames_per_event", "2", "--workers", "1"])
    assert "2 train / 1 val / 1 test" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["config"]["num_train"] == 2
