"""The decode-once streaming dataset: `pig-lightning optimize`, its readers, its bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("litdata", reason="the optimized dataset needs the `stream` extra (litdata)")

from pig_lightning.cli import main as cli_main  # noqa: E402
from pig_lightning.commands.train import run_cli  # noqa: E402
from pig_lightning.data.sources.annotations import read_jsonl  # noqa: E402
from pig_lightning.data.datasets import EvalVideoTextDataset  # noqa: E402
from pig_lightning.data.video.decoding import VideoDecodeError  # noqa: E402
from pig_lightning.data.optimized.optimize import PART_DONE, optimize_dataset  # noqa: E402
from pig_lightning.data.optimized.optimized_format import MANIFEST, OptimizedDatasetError  # noqa: E402
from pig_lightning.data.video.readers import ClipReader  # noqa: E402
from pig_lightning.data.video.sampling import jittered_indices  # noqa: E402
from pig_lightning.data.datamodule import VideoTextDataModule  # noqa: E402
from pig_lightning.data.optimized.streaming import OptimizedDatasets, OptimizedSplit  # noqa: E402

from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes

SETTINGS = {"image_size": 32, "resize": "squash", "interpolation": "BICUBIC", "frame_positions": "truncate"}


def optimize(synthetic_root: str, split: str, output: Path, **kwargs) -> dict:
    options = {"frames_per_video": 8, "image_size": 32, "part_size": 10, "num_workers": 2, "quality": 95, **kwargs}
    return optimize_dataset(f"{synthetic_root}/{split}.jsonl", synthetic_root, str(output), **options)


@pytest.fixture(scope="module")
def optimized(synthetic_root, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("optimized")
    return {split: (optimize(synthetic_root, split, root / split), root / split)[1] for split in ("train", "val")}


def test_the_dataset_is_complete_and_lists_every_video_in_annotation_order(optimized, synthetic_root):
    manifest = json.loads((optimized["train"] / MANIFEST).read_text())
    records = read_jsonl(f"{synthetic_root}/train.jsonl")
    assert manifest["complete"] and manifest["num_videos"] == len(records) == 24
    assert manifest["parts"] == 3 and all((optimized["train"] / f"part-0000{p}" / PART_DONE).exists() for p in range(3))
    assert manifest["bytes_per_video"] > 0
    split = OptimizedSplit(str(optimized["train"]), "data.source.train_dir")
    assert [r.video_id for r in split.records] == [r.video_id for r in records]
    stream = split.stream()
    assert len(stream) == 24
    assert [int(stream[i]["record_index"]) for i in range(24)] == list(range(24))
    assert [stream[i]["video_id"] for i in range(24)] == [r.video_id for r in records]


def test_evaluation_frames_equal_the_mp4_path_up_to_jpeg(optimized, synthetic_root):
    """frames_per_video == num_frames: evaluation reads exactly the frames the mp4 path reads."""
    records = read_jsonl(f"{synthetic_root}/val.jsonl")
    mp4 = EvalVideoTextDataset(records, synthetic_root, ClipReader(32), num_frames=8)
    dm = VideoTextDataModule(OptimizedDatasets(val_dir=str(optimized["val"])), tokenizer=f"{synthetic_root}/tokenizer",
                             num_frames=8, image_size=32)
    dm.setup("validate")
    streamed = dm._datasets["val"]
    assert len(streamed) == len(mp4) == 10 and streamed.num_texts == mp4.num_texts
    for i in range(len(mp4)):
        a, b = mp4[i], streamed[i]
        assert b["frames"].dtype == torch.uint8 and b["frames"].shape == a["frames"].shape == (8, 32, 32, 3)
        assert b["captions"] == a["captions"] and b["text_offset"] == a["text_offset"]
        same = (a["frames"].float() - b["frames"].float()).abs().mean()
        neighbour = (a["frames"][1:].float() - b["frames"][:-1].float()).abs().mean()
        assert same < 3.0 and same < neighbour / 3  # JPEG (quality 95, 4:4:4) of the same frames


def test_training_items_sample_from_seed_epoch_and_video(optimized):
    split = OptimizedSplit(str(optimized["train"]), "data.source.train_dir")
    from pig_lightning.data.optimized.streaming import train_stream

    stream = train_stream(split, num_frames=4, seed=3, sampling="jittered", frame_positions="truncate")
    raw = split.stream()
    item = stream[5]
    rng = np.random.default_rng([3, int(stream.current_epoch), 5])
    captions = split.records[5].captions
    assert item["captions"] == [captions[int(rng.integers(len(captions)))]]
    stored = raw[5]
    from pig_lightning.data.optimized.optimized_format import decode_frames

    expected = decode_frames(stored["frames"], np.asarray(stored["frame_bytes"]), jittered_indices(8, 4, rng))
    assert torch.equal(item["frames"], torch.from_numpy(expected))
    assert item["video_index"] == 5


def test_the_training_stream_leaves_the_global_rng_to_the_training_step(optimized, synthetic_root):
    """litdata's loader drew its workers' seed from the global RNG at every epoch, which moved the
    dropout draws of training with the number of workers (see tests/training/test_loader_rng.py)."""
    dm = VideoTextDataModule(OptimizedDatasets(train_dir=str(optimized["train"])), tokenizer=f"{synthetic_root}/tokenizer",
                             num_frames=4, image_size=32, batch_size=4, num_workers=0, seed=5)
    dm.setup("fit")
    loader = dm.train_dataloader()
    state = torch.get_rng_state()
    batches = [sum(1 for _ in loader) for _ in range(2)]
    assert batches == [6, 6] and loader.generator.initial_seed() == 5
    assert torch.equal(torch.get_rng_state(), state)


def test_a_run_with_other_frame_settings_is_refused_naming_both(optimized):
    def setup(**settings):
        VideoTextDataModule(OptimizedDatasets(train_dir=str(optimized["train"])), tokenizer="unused",
                            **settings).setup("fit")

    with pytest.raises(OptimizedDatasetError, match=r"data.source.train_dir.*image_size=32.*data.image_size=64"):
        setup(num_frames=4, image_size=64)
    with pytest.raises(OptimizedDatasetError, match=r"stores 8 frames per video.*data.num_frames=12"):
        setup(num_frames=12, image_size=32)
    with pytest.raises(OptimizedDatasetError, match=r"resize='squash'.*data.resize='crop'"):
        setup(num_frames=4, image_size=32, resize="crop")


def test_an_interrupted_optimize_is_refused_then_resumed_without_redoing_finished_parts(synthetic_root, tmp_path,
                                                                                        monkeypatch):
    import pig_lightning.data.optimized.optimize as module

    real_write_part, calls = module._write_part, []

    def interrupted_in_part_two(litdata, encoder, part_dir, indices, *args):
        calls.append(part_dir.name)
        if part_dir.name == "part-00001":
            (part_dir / "chunk-0-0.bin").parent.mkdir(parents=True, exist_ok=True)
            (part_dir / "chunk-0-0.bin").write_bytes(b"half a chunk")
            raise KeyboardInterrupt
        real_write_part(litdata, encoder, part_dir, indices, *args)

    monkeypatch.setattr(module, "_write_part", interrupted_in_part_two)
    out = tmp_path / "train"
    with pytest.raises(KeyboardInterrupt):
        optimize(synthetic_root, "train", out)
    with pytest.raises(OptimizedDatasetError, match="partly written.*1 of 3 parts.*same command again"):
        OptimizedSplit(str(out), "data.source.train_dir")
    # other settings cannot finish it
    with pytest.raises(OptimizedDatasetError, match="started with frames_per_video=8.*frames_per_video=6"):
        optimize(synthetic_root, "train", out, frames_per_video=6)
    monkeypatch.setattr(module, "_write_part", lambda *a: (calls.append(a[2].name), real_write_part(*a)))
    summary = optimize(synthetic_root, "train", out)
    assert calls == ["part-00000", "part-00001", "part-00001", "part-00002"]  # part 0 not written again
    assert summary["complete"] and summary["written_now"] == 14
    split = OptimizedSplit(str(out), "data.source.train_dir")
    assert [int(split.stream()[i]["record_index"]) for i in range(24)] == list(range(24))
    assert optimize(synthetic_root, "train", out)["written_now"] == 0  # complete: nothing to do


def test_other_annotations_cannot_continue_a_dataset(synthetic_root, tmp_path, optimized):
    out = tmp_path / "train"
    shutil.copytree(optimized["train"], out)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(OptimizedDatasetError, match="other annotations"):
        optimize(synthetic_root, "val", out)


def test_an_undecodable_video_stops_with_its_name_and_keeps_finished_parts(synthetic_root, tmp_path):
    root = tmp_path / "set"
    shutil.copytree(synthetic_root, root)
    records = read_jsonl(root / "train.jsonl")
    broken = root / records[13].video
    broken.write_bytes(b"not a video")
    with pytest.raises(VideoDecodeError, match=f"1 videos could not be decoded: {records[13].video_id}"):
        optimize(str(root), "train", tmp_path / "out")
    assert (tmp_path / "out" / "part-00000" / PART_DONE).exists()
    assert not (tmp_path / "out" / "part-00001" / PART_DONE).exists()


def test_optimize_command_errors_are_one_line(tmp_path, synthetic_root, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something.txt").write_text("x")
    with pytest.raises(SystemExit) as exit:
        cli_main(["optimize", "--annotations", f"{synthetic_root}/val.jsonl", "--video_root", synthetic_root,
                  "--output", str(tmp_path / "out")])
    assert exit.value.code == 2
    assert "exists and is not an optimized dataset" in capsys.readouterr().err


def _shares(rank: int, world: int, location: str, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        dm = VideoTextDataModule(OptimizedDatasets(train_dir=location), tokenizer=os.environ["PIG_TEST_TOKENIZER"],
                                 num_frames=4, image_size=32, batch_size=4, num_workers=0)
        dm.setup("fit")
        seen = [int(i) for batch in dm.train_dataloader() for i in batch["video_index"]]
        queue.put((rank, seen))
    finally:
        torch.distributed.destroy_process_group()


def test_two_ranks_read_disjoint_shares_streamed_through_a_cache(optimized, tmp_path, tokenizer_dir, monkeypatch):
    """The dataset as a 'remote' (litdata's local: scheme: read through a cache folder)."""
    import socket

    import torch.multiprocessing as mp

    monkeypatch.setenv("PIG_TEST_TOKENIZER", tokenizer_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_shares, args=(r, 2, f"local:{optimized['train']}", port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    shares = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(shares[0]) == len(shares[1]) == 12  # 24 videos, 2 ranks, batches of 4
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(24))


def test_fit_and_test_from_optimized_datasets(tmp_path, synthetic_root, optimized, tokenizer_dir):
    test_dir = optimized["val"]  # the tiny set's val split stands in for test
    config = write_config(tmp_path, synthetic_root)
    cli = run_cli(["fit", "--config", str(config), "--data.source", "pig_lightning.data.OptimizedDatasets",
                   "--data.source.train_dir", str(optimized["train"]), "--data.source.val_dir", str(optimized["val"]),
                   "--data.source.test_dir", str(test_dir), "--data.tokenizer", f"{synthetic_root}/tokenizer",
                   "--data.num_frames", "4", "--data.image_size", "32", "--data.max_text_length", "20",
                   "--data.batch_size", "8", "--data.eval_batch_size", "5", "--data.num_workers", "1",
                   "--trainer.max_steps", "4"])
    assert cli.trainer.global_step == 4
    metrics = cli.trainer.callback_metrics
    assert metrics["val/num_videos"] == 10 and metrics["val/num_texts"] == 30
    assert torch.isfinite(metrics["val/t2v/R@1"])
    # the TensorBoard strips come from the stored frames (there are no video files to decode)
    from pig_lightning.training.qualitative import QualitativeImages

    images = next(c for c in cli.trainer.callbacks if isinstance(c, QualitativeImages))
    strips = images.strips._frames
    size = images.strips.size  # the strips' frame_size (64), not the stored 32 px
    assert strips and all(f is not None and f.dtype == np.uint8 and f.shape[1:] == (size, size, 3)
                          for f in strips.values())


def _stream_fit(tmp_path, synthetic_root, optimized, *args):
    tmp_path.mkdir(exist_ok=True)
    config = write_config(tmp_path, synthetic_root)
    return run_cli(["fit", "--config", str(config), "--data.source", "pig_lightning.data.OptimizedDatasets",
                    "--data.source.train_dir", str(optimized["train"]), "--data.source.val_dir", str(optimized["val"]),
                    "--data.tokenizer", f"{synthetic_root}/tokenizer", "--data.num_frames", "4",
                    "--data.image_size", "32", "--data.max_text_length", "20", "--data.batch_size", "8",
                    "--data.eval_batch_size", "5", "--data.num_workers", "0",
                    "--trainer.callbacks+=tests.training.callbacks.RecordRun",
                    f"--trainer.callbacks.path={tmp_path / 'batches'}", *args])


def test_a_run_resumed_mid_epoch_continues_the_stream_where_it_stopped(tmp_path, synthetic_root, optimized):
    """litdata's loader state travels in last.ckpt: the resumed epoch trains the remaining videos."""
    from tests.training.callbacks import read_records

    _stream_fit(tmp_path / "whole", synthetic_root, optimized, "--trainer.max_steps", "3")
    whole = [r["videos"] for r in read_records(tmp_path / "whole" / "batches") if "videos" in r]
    _stream_fit(tmp_path / "cut", synthetic_root, optimized, "--trainer.max_steps", "1",
                "--resume_checkpoint.every_n_train_steps", "1")
    last = next((tmp_path / "cut").rglob("last.ckpt"))
    _stream_fit(tmp_path / "cut", synthetic_root, optimized, "--trainer.max_steps", "3", "--ckpt_path", str(last))
    cut = [r["videos"] for r in read_records(tmp_path / "cut" / "batches") if "videos" in r]
    assert len(whole) == 3 and sorted(sum(whole, [])) == list(range(24))
    assert cut == whole  # step 1, then steps 2 and 3 after the resume: the same batches in the same order


@pytest.mark.cluster
def test_two_torchrun_nodes_train_from_an_optimized_dataset(tmp_path, synthetic_root, optimized):
    """Lightning DDP (two torchrun "nodes", gloo) over litdata's stream: disjoint shares, one model."""
    from tests.training.callbacks import read_records
    from tests.training.launch import torchrun_nodes
    from tests.training.launch import wait

    config = write_config(tmp_path, synthetic_root, max_steps=4, val_check_interval=3)
    procs = torchrun_nodes(config, "--data.source=pig_lightning.data.OptimizedDatasets",
                           f"--data.source.train_dir={optimized['train']}", f"--data.source.val_dir={optimized['val']}",
                           f"--data.tokenizer={synthetic_root}/tokenizer", "--data.num_frames=4",
                           "--data.image_size=32", "--data.max_text_length=20", "--data.batch_size=4",
                           "--data.eval_batch_size=5", "--data.num_workers=0",
                           callbacks=(f"RecordRun:path={tmp_path}/record",))
    for code, out, _ in wait(procs, timeout=240):
        assert code == 0, out[-3000:]
    nodes = [read_records(tmp_path / "record", rank) for rank in (0, 1)]
    assert nodes[0][-1]["final_step"] == nodes[1][-1]["final_step"] == 4
    assert nodes[0][-1]["world_size"] == 2 and nodes[0][-1]["weights"] == nodes[1][-1]["weights"]
    epoch = [r0["videos"] + r1["videos"] for r0, r1 in zip(nodes[0][:3], nodes[1][:3])]  # 24 videos = 3 steps of 2x4
    assert sorted(sum(epoch, [])) == list(range(24))
    report = json.loads((tmp_path / "runs" / "t" / "version_0" / "val_report.json").read_text())
    assert report["metrics"]["num_videos"] == 10  # every validation video once across the two nodes


def test_a_remote_dataset_is_read_fresh_and_an_unfinished_one_is_refused_by_name(synthetic_root, tmp_path, optimized):
    """litdata's 'local:' scheme stands in for object storage; the small files are never cached between opens."""
    out = tmp_path / "remote"
    shutil.copytree(optimized["val"], out)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "complete": False, "parts_done": 0}))
    (out / "records.jsonl").unlink()  # as while optimize is still writing
    with pytest.raises(OptimizedDatasetError, match=r"data.source.val_dir: .*partly written.*0 of 1 parts"):
        OptimizedSplit(f"local:{out}", "data.source.val_dir", cache_dir=str(tmp_path / "cache"))
    shutil.rmtree(out)
    shutil.copytree(optimized["val"], out)  # finished since
    split = OptimizedSplit(f"local:{out}", "data.source.val_dir", cache_dir=str(tmp_path / "cache"))
    assert [r.video_id for r in split.records] == [r.video_id for r in read_jsonl(f"{synthetic_root}/val.jsonl")]
    records = (out / "records.jsonl").read_text().replace('"captions": ["', '"captions": ["edited ', 1)
    (out / "records.jsonl").write_text(records)  # records that are not the ones the manifest describes
    with pytest.raises(OptimizedDatasetError, match="records.jsonl does not match its manifest"):
        OptimizedSplit(f"local:{out}", "data.source.val_dir", cache_dir=str(tmp_path / "cache"))
    assert not any((tmp_path / "cache").glob("pig_optimized_meta_*"))  # the private copies are removed
