"""on_decode_error: raise | skip, with every kind of broken file; skips counted and logged."""

import logging
from pathlib import Path

import pytest
import torch

from pig_lightning.commands.train import run_cli
from pig_lightning.data import ClipReader, VideoDecodeError, read_jsonl
from pig_lightning.data.sources.annotations import VideoRecord, write_jsonl
from pig_lightning.data.datasets import TrainVideoTextDataset
from tests.helpers import TINY_CLIP, make_dm, run_config
from tests.data.video_factory import write_bad_videos

BAD_KINDS = ("missing", "zero", "garbage", "truncated", "audio-only")


@pytest.fixture()
def mixed_records(synthetic_root, tmp_path) -> list[VideoRecord]:
    """The synthetic training videos with one broken file of every kind in between."""
    good = read_jsonl(Path(synthetic_root) / "train.jsonl")
    bad = write_bad_videos(tmp_path / "bad", Path(synthetic_root) / good[0].video)
    records = list(good)
    for k, kind in enumerate(BAD_KINDS):
        records.insert(3 * k + 1, VideoRecord(f"bad-{kind}", str(bad[kind]), (f"caption of the {kind} video",)))
    return records


def dataset(records, root, policy, **kw) -> TrainVideoTextDataset:
    return TrainVideoTextDataset(records, root, ClipReader(32), num_frames=4, seed=5, on_decode_error=policy, **kw)


def test_raise_stops_at_the_first_bad_video_naming_it(mixed_records, synthetic_root):
    ds = dataset(mixed_records, synthetic_root, "raise")
    for i, record in enumerate(mixed_records):
        if record.video_id.startswith("bad-"):
            with pytest.raises(VideoDecodeError, match=Path(record.video).name):
                ds[(i, 0)]


def test_skip_replaces_a_bad_video_by_a_real_one_and_records_why(mixed_records, synthetic_root, caplog):
    ds = dataset(mixed_records, synthetic_root, "skip")
    seen_kinds = set()
    with caplog.at_level(logging.WARNING, logger="pig_lightning.data.datasets"):
        for i, record in enumerate(mixed_records):
            item = ds[(i, 2)]
            if not record.video_id.startswith("bad-"):
                assert item["decode_skips"] == [] and item["video_index"] == i
                continue
            assert item["decode_skips"][0][0] == record.video  # the file that failed comes first
            seen_kinds.add(record.video_id)
            replacement = mixed_records[item["video_index"]]
            assert not replacement.video_id.startswith("bad-")
            assert item["captions"][0] in replacement.captions  # the caption matches the video used
            # never a black clip: the frames are the replacement video's own
            assert item["frames"].float().std() > 0.1 * 255 * 0.27  # uint8 (0.1 in normalised units)
            again = ds[(i, 2)]
            assert torch.equal(again["frames"], item["frames"]) and again["video_index"] == item["video_index"]
    assert seen_kinds == {f"bad-{k}" for k in BAD_KINDS}
    for kind in BAD_KINDS:
        assert any(f"bad-{kind}" in r.getMessage() for r in caplog.records)


def test_skip_gives_up_on_a_data_set_that_is_all_broken(tmp_path, synthetic_root):
    records = [VideoRecord(f"v{i}", f"missing{i}.mp4", ("a caption",)) for i in range(5)]
    with pytest.raises(VideoDecodeError, match="videos in a row could not be decoded.*data-check"):
        dataset(records, tmp_path, "skip", max_replacements=3)[(0, 0)]


def test_evaluation_never_skips(mixed_records, synthetic_root, tmp_path):
    from pig_lightning.data.datasets import EvalVideoTextDataset

    ds = EvalVideoTextDataset(mixed_records, synthetic_root, ClipReader(32), num_frames=4)
    with pytest.raises(VideoDecodeError):
        ds[1]


def _fit_config(tmp_path: Path, synthetic_root: str, train: Path, policy: str) -> Path:
    """Two epochs of mean pooling over ``train`` with the decode-error ``policy``."""
    return run_config(tmp_path, synthetic_root, f"{synthetic_root}/tokenizer", TINY_CLIP,
                      trainer={"max_steps": -1, "max_epochs": 2}, train_annotations=str(train), on_decode_error=policy)


def test_fit_with_skip_counts_every_skipped_video_in_tensorboard(mixed_records, synthetic_root, tmp_path, caplog):
    train = write_jsonl(mixed_records, tmp_path / "train.jsonl")
    with caplog.at_level(logging.WARNING):
        cli = run_cli(["fit", "--config", str(_fit_config(tmp_path, synthetic_root, train, "skip"))])
    # The same skips, replayed from the same (seed, epoch, index) draws:
    dm = cli.datamodule
    expected = []
    for epoch in range(2):
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        expected.append(sum(len(b["decode_skips"]) for b in loader))
    assert sum(expected) > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "b" / "version_0"), size_guidance={"tensors": 0})
    events.Reload()
    logged = [e.value for e in events.Scalars("data/skipped_videos")]
    assert logged == [float(n) for n in expected]
    text = " ".join(t.tensor_proto.string_val[0].decode() for t in events.Tensors("data/skipped_videos/text_summary"))
    assert "truncated.mp4" in text or "garbage.mp4" in text or "nope.mp4" in text
    assert any("could not be decoded and were replaced" in r.getMessage() for r in caplog.records)


def test_fit_with_raise_stops_and_names_the_file(mixed_records, synthetic_root, tmp_path):
    train = write_jsonl(mixed_records, tmp_path / "train.jsonl")
    with pytest.raises(VideoDecodeError, match="cannot decode video .*bad/"):
        run_cli(["fit", "--config", str(_fit_config(tmp_path, synthetic_root, train, "raise"))])


def test_bad_settings_are_refused_with_the_key(synthetic_root):
    with pytest.raises(ValueError, match="data.source.on_decode_error"):
        make_dm(synthetic_root, on_decode_error="ignore")
    with pytest.raises(ValueError, match="data.train_sampling"):
        make_dm(synthetic_root, train_sampling="random")
    with pytest.raises(ValueError, match="resize must be one of"):
        make_dm(synthetic_root, resize="stretch")


def test_a_bad_video_in_a_worker_process_reaches_the_user_with_its_name(mixed_records, synthetic_root):
    from torch.utils.data import DataLoader

    ds = dataset(mixed_records, synthetic_root, "raise")
    loader = DataLoader(ds, batch_size=None, sampler=[(1, 0)], num_workers=1)
    with pytest.raises(VideoDecodeError, match="nope.mp4"):
        next(iter(loader))


@pytest.mark.slow  # processes
def test_skips_are_summed_over_ddp_processes(mixed_records, synthetic_root, tmp_path):
    """Two gloo processes: the logged count is both processes' skips (and nothing hangs)."""
    from torch.utils.data import DataLoader

    from pig_lightning.data.datasets import EpochAwareSampler, VideoTextCollator
    from pig_lightning.weights.hf_folder import load_tokenizer

    train = write_jsonl(mixed_records, tmp_path / "train.jsonl")
    config = _fit_config(tmp_path, synthetic_root, train, "skip")
    run_cli(["fit", "--config", str(config), "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn",
             "--trainer.max_epochs", "1"])
    ds = dataset(mixed_records, synthetic_root, "skip")
    ds.seed = 42  # the data module's default seed
    collate = VideoTextCollator(load_tokenizer(f"{synthetic_root}/tokenizer"), 20)
    expected = 0
    for rank in range(2):
        sampler = EpochAwareSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=42)
        sampler.set_epoch(0)
        loader = DataLoader(ds, batch_size=8, sampler=sampler, drop_last=True, collate_fn=collate)
        expected += sum(len(b["decode_skips"]) for b in loader)
    assert expected > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "b" / "version_0"))
    events.Reload()
    assert [e.value for e in events.Scalars("data/skipped_videos")] == [float(expected)]


def test_skips_are_counted_on_the_host_during_the_epoch():
    """Nothing is logged per step (a logged number is a new device tensor, a copy per step on a GPU);
    the epoch's sum is logged once at its end (checked in TensorBoard by the fits above)."""
    from pig_lightning.training.skips import DecodeSkipMonitor

    class Module:  # what the callback may touch during an epoch: nothing but ``log``
        def log(self, *args, **kwargs):
            raise AssertionError(f"logged during the epoch: {args}")

    monitor = DecodeSkipMonitor()
    for skips in ([], [("a.mp4", "truncated")], [("b.mp4", "empty"), ("c.mp4", "missing")]):
        monitor.on_train_batch_start(None, Module(), {"decode_skips": skips}, 0)
    assert monitor.epoch_skips == [("a.mp4", "truncated"), ("b.mp4", "empty"), ("c.mp4", "missing")]
