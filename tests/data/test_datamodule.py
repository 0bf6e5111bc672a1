import json
from pathlib import Path

import pytest
import torch

from pig_lightning.data import (
    AnnotationError,
    SyntheticVideos,
    VideoDecodeError,
    VideoTextDataModule,
    read_jsonl,
)
from pig_lightning.data.video.transforms import CLIP_MEAN, CLIP_STD, clip_normalise

from tests.helpers import SMALL_SYNTHETIC
from tests.helpers import make_dm

pytestmark = pytest.mark.slow  # trains or launches processes


def first_epoch_batches(dm, epoch=0):
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_train_batch_shapes_and_normalisation(synthetic_root):
    dm = make_dm(synthetic_root)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (8, 4, 32, 32, 3) and batch["frames"].dtype == torch.uint8  # see test_pixels.py
    assert batch["input_ids"].shape == (8, 20) and batch["attention_mask"].shape == (8, 20)
    assert torch.equal(batch["text_video"], torch.arange(8))
    lo = (0 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    hi = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    per_channel = clip_normalise(batch["frames"]).transpose(0, 2).reshape(3, -1)
    assert torch.all(per_channel.min(1).values >= lo - 1e-5) and torch.all(per_channel.max(1).values <= hi + 1e-5)
    assert len(dm.train_dataloader()) == 24 // 8  # one item per video, full batches


def test_caption_choice_depends_only_on_seed_epoch_and_index(synthetic_root):
    dm = make_dm(synthetic_root)
    dm.setup("fit")
    ds = dm._datasets["train"]
    assert ds[(5, 0)]["captions"] == ds[(5, 0)]["captions"]
    torch.testing.assert_close(ds[(5, 0)]["frames"], ds[(5, 0)]["frames"])
    per_epoch = {tuple(ds[(i, e)]["captions"][0] for i in range(24)) for e in range(4)}
    assert len(per_epoch) > 1  # a new random caption per video per epoch


def test_batches_identical_with_any_number_of_workers(synthetic_root):
    a = make_dm(synthetic_root, num_workers=0)
    b = make_dm(synthetic_root, num_workers=2)
    a.setup("fit")
    b.setup("fit")
    for ba, bb in zip(first_epoch_batches(a, 1), first_epoch_batches(b, 1)):
        assert torch.equal(ba["video_index"], bb["video_index"])
        assert torch.equal(ba["input_ids"], bb["input_ids"])
        torch.testing.assert_close(ba["frames"], bb["frames"])


def test_eval_batches_carry_every_caption_once(synthetic_root):
    dm = make_dm(synthetic_root)
    dm.setup("test")
    ds = dm._datasets["test"]
    seen_text, seen_video = [], []
    for batch in dm.test_dataloader():
        assert batch["frames"].shape[1:] == (4, 32, 32, 3)
        seen_video += batch["video_index"].tolist()
        seen_text += batch["text_index"].tolist()
        # each caption's video, in dataset numbering
        assert torch.equal(ds.text_video_index()[batch["text_index"]], batch["video_index"][batch["text_video"]])
    assert seen_video == list(range(10)) and seen_text == list(range(ds.num_texts)) and ds.num_texts == 30


def test_synthetic_data_module_generates_its_set(tmp_path):
    cfg = {k: getattr(SMALL_SYNTHETIC, k) for k in ("num_train", "num_val", "num_test", "captions_per_video",
                                                    "frame_size", "frames_per_event")}
    dm = VideoTextDataModule(SyntheticVideos(root=str(tmp_path / "syn"), synthetic_seed=SMALL_SYNTHETIC.seed, **cfg),
                             num_frames=4, image_size=32, batch_size=8)
    assert not (tmp_path / "syn").exists()  # written by prepare_data (or when the tokenizer is asked for)
    dm.prepare_data()
    assert (tmp_path / "syn" / "manifest.json").is_file()
    assert dm.tokenizer_source == str(tmp_path / "syn" / "tokenizer") and len(dm.tokenizer) > 100


def test_missing_annotation_file_and_video_folder_are_named(synthetic_root, tmp_path):
    dm = make_dm(synthetic_root, train_annotations=str(tmp_path / "nope.jsonl"))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        dm.setup("fit")
    dm = make_dm(synthetic_root, video_root=str(tmp_path / "novideos"))
    with pytest.raises(FileNotFoundError, match="novideos"):
        dm.setup("fit")


@pytest.mark.parametrize(
    "line, match",
    [
        ("{not json", "not valid JSON"),
        ('{"video_id": "a", "captions": ["x"]}', "missing key 'video'"),
        ('{"video_id": "a", "video": "a.mp4", "captions": []}', "non-empty list"),
        ('{"video_id": "a", "video": "a.mp4", "captions": ["  "]}', "empty caption"),
        ('{"video_id": "v0", "video": "a.mp4", "captions": ["x"]}', "already used on line 1"),
    ],
)
def test_bad_annotation_lines_name_file_and_line(tmp_path, line, match):
    path = tmp_path / "ann.jsonl"
    path.write_text(json.dumps({"video_id": "v0", "video": "v0.mp4", "captions": ["ok"]}) + "\n" + line + "\n")
    with pytest.raises(AnnotationError, match=match) as info:
        read_jsonl(path)
    assert f"{path}:2" in str(info.value)


def test_undecodable_video_in_a_batch_names_the_file(synthetic_root, tmp_path):
    ann = tmp_path / "train.jsonl"
    rows = [json.loads(x) for x in Path(synthetic_root, "train.jsonl").read_text().splitlines()][:8]
    rows[3]["video"] = "videos/does_not_exist.mp4"
    ann.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dm = make_dm(synthetic_root, train_annotations=str(ann))
    dm.setup("fit")
    with pytest.raises(VideoDecodeError, match="does_not_exist.mp4"):
        next(iter(dm.train_dataloader()))


def test_selecting_on_the_test_split_is_logged(synthetic_root, caplog):
    dm = make_dm(synthetic_root, val_annotations=f"{synthetic_root}/test.jsonl")
    assert dm.selects_on_test
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert "checkpoint selection uses the TEST split" in caplog.text
    assert not make_dm(synthetic_root).selects_on_test


def test_frame_positions_reach_every_split(synthetic_root):
    import numpy as np

    from pig_lightning.data.sources.paths import resolve_video_path
    with pytest.raises(ValueError, match="data.frame_positions must be one of"):
        make_dm(synthetic_root, frame_positions="floor")
    seen = []
    for positions, to_index in (("truncate", lambda p: p.astype(int)), ("round", lambda p: np.round(p).astype(int))):
        dm = make_dm(synthetic_root, frame_positions=positions)
        dm.setup("fit")
        dm.setup("test")
        assert dm._datasets["train"].frame_positions == positions
        test = dm._datasets["test"]
        path = resolve_video_path(test.video_root, test.records[0])
        expected, idx = test.reader.read(path, lambda n: to_index(np.linspace(0, n - 1, 4)))
        assert torch.equal(test[0]["frames"], torch.from_numpy(expected)), positions
        seen.append(idx.tolist())
    assert seen[0] != seen[1]  # this clip's length tells the two apart


def test_loader_workers_live_across_epochs_and_validations(synthetic_root):
    """Re-forking the workers at every validation (every 50 steps in the MSR-VTT recipe) costs
    seconds each time on a GPU machine; with no workers there is nothing to keep."""
    dm = make_dm(synthetic_root, num_workers=1)
    dm.setup("fit")
    dm.setup("test")
    assert dm.train_dataloader().persistent_workers and dm.val_dataloader().persistent_workers
    assert dm.test_dataloader().persistent_workers
    dm = make_dm(synthetic_root, num_workers=0)
    dm.setup("validate")
    assert not dm.val_dataloader().persistent_workers
