"""Offline index -> online search, on the synthetic set with a checkpoint trained here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pig_lightning.commands.train import run_cli
from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.retrieval import Gallery, Retriever, build_index

from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root):
    """A checkpoint of a tiny model trained here until it tells the 24 training videos apart
    (400 steps: top-5 retrieval of the training captions 0.99, top-1 0.43, chance 0.21 / 0.04).
    One loader worker decodes while the main process trains (the same batches; ~15 % faster)."""
    tmp = tmp_path_factory.mktemp("trained")
    config = write_config(tmp, synthetic_root, max_steps=400, val_check_interval=None, limit_val_batches=0)
    run_cli(["fit", "--config", str(config), "--checkpoint.monitor", "null", "--model.lr", "1.5e-3",
             "--model.weight_decay", "0.0", "--model.warmup_ratio", "0.0", "--data.num_workers", "1"])
    ckpt = next((tmp / "runs").rglob("last.ckpt"))
    return ckpt, tmp


def test_round_trip_ranks_exactly_as_score(trained, synthetic_root, tmp_path):
    ckpt, _ = trained
    gallery_path = build_index(ckpt, Path(synthetic_root) / "train.jsonl", tmp_path / "g.safetensors",
                               shard_size=10, num_workers=0, dtype="float32", progress=False)
    gallery = Gallery.load(gallery_path)
    records = read_jsonl(Path(synthetic_root) / "train.jsonl")
    assert gallery.video_ids == [r.video_id for r in records] and gallery.embeddings.shape == (24, 32)
    assert not (tmp_path / "g.safetensors.shards").exists()
    retriever = Retriever(gallery_path, ckpt)
    captions = [r.captions[0] for r in records]
    results = retriever.search(captions, k=5)
    # the exact ranking of score() on the same embeddings (blocks of 7 videos: merged top-k)
    retriever.block_size = 7
    blocked = retriever.search(captions, k=5)
    assert [[v for v, _ in r] for r in blocked] == [[v for v, _ in r] for r in results]
    torch.testing.assert_close(torch.tensor([[s for _, s in r] for r in blocked]),
                               torch.tensor([[s for _, s in r] for r in results]))
    full = retriever.scores(retriever.encode(captions))
    for row, res in zip(full, results):
        top = row.topk(5).indices.tolist()
        assert [gallery.video_ids[i] for i in top] == [v for v, _ in res]
        torch.testing.assert_close(torch.tensor([s for _, s in res]), row[top])


def test_search_finds_each_video_with_its_own_captions_near_the_top(trained, synthetic_root, tmp_path):
    """The product works: index the collection once, then every caption finds its video."""
    ckpt, _ = trained
    gallery = build_index(ckpt, Path(synthetic_root) / "train.jsonl", tmp_path / "t.safetensors", num_workers=0,
                          progress=False)  # fp16, as users store it
    records = read_jsonl(Path(synthetic_root) / "train.jsonl")
    queries = [(caption, r.video_id) for r in records for caption in r.captions]
    results = Retriever(gallery, ckpt).search([q for q, _ in queries], k=5)
    top1 = sum(res[0][0] == vid for res, (_, vid) in zip(results, queries)) / len(queries)
    top5 = sum(vid in [v for v, _ in res] for res, (_, vid) in zip(results, queries)) / len(queries)
    chance1, chance5 = 1 / len(records), 5 / len(records)
    assert top5 >= 0.8, f"top-5 {top5:.2f} (chance {chance5:.2f})"
    assert top1 >= 6 * chance1, f"top-1 {top1:.2f} (chance {chance1:.2f})"


def test_gallery_embeddings_equal_encode_videos(trained, synthetic_root, tmp_path):
    ckpt, _ = trained
    path = build_index(ckpt, Path(synthetic_root) / "val.jsonl", tmp_path / "v.safetensors", num_workers=0,
                       dtype="float32", progress=False)
    from pig_lightning.data import AnnotationFiles, VideoTextDataModule

    retriever = Retriever(path, ckpt)
    dm = VideoTextDataModule(AnnotationFiles(synthetic_root, val_annotations=f"{synthetic_root}/val.jsonl"),
                             tokenizer=f"{synthetic_root}/tokenizer", num_frames=4, image_size=32,
                             max_text_length=20, eval_batch_size=10, num_workers=0)
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        want = retriever.module.encode_videos(batch["frames"])
    torch.testing.assert_close(Gallery.load(path).embeddings, want)


def test_resume_skips_finished_shards(trained, synthetic_root, tmp_path, monkeypatch):
    ckpt, _ = trained
    out = tmp_path / "r.safetensors"
    from pig_lightning.retrieval import indexer

    calls = []
    real = indexer._Clips.__getitem__

    def counting(self, i):
        calls.append(self.items[i].video_id)
        if len(calls) == 15:  # die in the middle of the second shard
            raise KeyboardInterrupt
        return real(self, i)

    monkeypatch.setattr(indexer._Clips, "__getitem__", counting)
    with pytest.raises(KeyboardInterrupt):
        build_index(ckpt, Path(synthetic_root) / "train.jsonl", out, shard_size=10, num_workers=0,
                    batch_size=5, progress=False)
    assert not out.exists()  # nothing that looks complete
    shards = sorted(p.name for p in (tmp_path / "r.safetensors.shards").iterdir())
    assert shards == ["shard_000000.safetensors", "shard_000000.skipped.json"]  # a finished shard and its list
    calls.clear()
    build_index(ckpt, Path(synthetic_root) / "train.jsonl", out, shard_size=10, num_workers=0, batch_size=5,
                progress=False)
    assert len(calls) == 14  # shards 2 and 3 only
    assert len(Gallery.load(out).video_ids) == 24


def test_bad_inputs_are_named(trained, synthetic_root, tmp_path, tiny_clip_config):
    ckpt, tmp = trained
    path = build_index(ckpt, Path(synthetic_root) / "test.jsonl", tmp_path / "t.safetensors", num_workers=0,
                       progress=False)
    retriever = Retriever(path, ckpt)
    with pytest.raises(ValueError, match="empty query"):
        retriever.search(["a red circle", "  "])
    assert len(retriever.search(["a red circle moves left"], k=50)[0]) == 10  # clamped to the gallery
    with pytest.raises(FileNotFoundError, match="gallery file not found"):
        Retriever(tmp_path / "missing.safetensors", ckpt)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty gallery"):
        build_index(ckpt, tmp_path / "empty", tmp_path / "e.safetensors", num_workers=0, progress=False)
    # a gallery made by another checkpoint is refused, naming both
    other = tmp_path / "other.ckpt"
    state = torch.load(ckpt, weights_only=False)
    state["state_dict"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save(state, other)
    with pytest.raises(ValueError, match=r"checkpoint_sha256: gallery '[0-9a-f]+' vs checkpoint '[0-9a-f]+'"):
        Retriever(path, other)


def test_search_command_prints_ranked_ids(trained, synthetic_root, tmp_path, capsys):
    ckpt, _ = trained
    path = build_index(ckpt, Path(synthetic_root) / "test.jsonl", tmp_path / "c.safetensors", num_workers=0,
                       progress=False)
    queries = tmp_path / "q.txt"
    queries.write_text("a red circle moves left, then a blue square moves up\nfirst a green triangle goes down\n")
    result = subprocess.run([sys.executable, "-m", "pig_lightning", "search", "--index", str(path), "--ckpt_path",
                             str(ckpt), "--queries_file", str(queries), "--top-k", "3", "--json"],
                            capture_output=True, text=True, timeout=120, env={"HF_HUB_OFFLINE": "1",
                                                                             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [len(x["results"]) for x in lines] == [3, 3]
    scores = [r["score"] for r in lines[0]["results"]]
    assert scores == sorted(scores, reverse=True)
    from pig_lightning.cli import main  # the same entry point in this process (no second interpreter start)

    with pytest.raises(SystemExit) as bad:
        main(["search", "--index", str(tmp_path / "nope"), "--ckpt_path", str(ckpt), "--query", "x"])
    assert bad.value.code == 2 and "gallery file not found" in capsys.readouterr().err


def test_two_ranks_share_the_shards_and_the_last_one_merges(trained, synthetic_root, tmp_path):
    ckpt, _ = trained
    out = tmp_path / "ranks.safetensors"
    args = dict(shard_size=10, num_workers=0, dtype="float32", progress=False)
    assert build_index(ckpt, Path(synthetic_root) / "train.jsonl", out, rank=0, world_size=2, **args) is None
    done = sorted(p.name for p in (tmp_path / "ranks.safetensors.shards").iterdir() if p.suffix == ".safetensors")
    assert done == ["shard_000000.safetensors", "shard_000002.safetensors"] and not out.exists()
    assert build_index(ckpt, Path(synthetic_root) / "train.jsonl", out, rank=1, world_size=2, **args) == out
    single = build_index(ckpt, Path(synthetic_root) / "train.jsonl", tmp_path / "one.safetensors", **args)
    a, b = Gallery.load(out), Gallery.load(single)
    assert a.video_ids == b.video_ids
    torch.testing.assert_close(a.embeddings, b.embeddings)


def test_faiss_flat_backend_matches_the_exact_search(trained, synthetic_root, tmp_path):
    pytest.importorskip("faiss", reason="the dev install includes faiss-cpu; the extra is optional for users")
    ckpt, _ = trained
    path = build_index(ckpt, Path(synthetic_root) / "train.jsonl", tmp_path / "f.safetensors", num_workers=0,
                       dtype="float32", progress=False)
    captions = [r.captions[1] for r in read_jsonl(Path(synthetic_root) / "train.jsonl")]
    exact = Retriever(path, ckpt).search(captions, k=5)
    approx = Retriever(path, ckpt, backend="faiss", faiss_factory="Flat").search(captions, k=5)
    assert [[v for v, _ in r] for r in approx] == [[v for v, _ in r] for r in exact]
    torch.testing.assert_close(torch.tensor([[s for _, s in r] for r in approx]),
                               torch.tensor([[s for _, s in r] for r in exact]), atol=1e-5, rtol=1e-5)


def test_collection_listing_keeps_clips_and_reads_benchmark_formats(synthetic_root, tmp_path):
    from pig_lightning.data.sources.annotations import VideoRecord, write_jsonl
    from pig_lightning.retrieval.indexer import list_videos

    first = read_jsonl(Path(synthetic_root) / "test.jsonl")[0]
    clips = write_jsonl([VideoRecord("a#0", first.video, ("x",), start=0.0, end=0.4),
                         VideoRecord("a#1", first.video, ("y",), start=0.4)], tmp_path / "clips.jsonl")
    items = list_videos(clips, synthetic_root)
    assert [(i.video_id, i.path, i.start, i.end) for i in items] == [
        ("a#0", Path(synthetic_root) / first.video, 0.0, 0.4), ("a#1", Path(synthetic_root) / first.video, 0.4, None)]
    lines = tmp_path / "test1ka.jsonl"
    lines.write_text(json.dumps({"clip_id": "synth00000", "text": "a caption"}) + "\n")
    items = list_videos(lines, Path(synthetic_root) / "videos", format="msrvtt_jsonl")
    assert items[0].path == Path(synthetic_root) / "videos" / "synth00000.mp4" and items[0].path.is_file()


def test_the_readmes_python_example_runs_as_written(trained, synthetic_root, tmp_path, monkeypatch, capsys):
    """The six lines near the top of the README, on a checkpoint and a folder of videos named as there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- python-example:begin")[1].split("<!-- python-example:end -->")[0]
    code = block.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) <= 8
    ckpt, _ = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best.ckpt").symlink_to(ckpt)
    (tmp_path / "my_videos").symlink_to(Path(synthetic_root) / "videos")
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("two-tower {'num_frames': 4, 'image_size': 32, 'max_text_length': 20")
    assert len(lines) == 6 and all(line.split()[1].startswith("synth") for line in lines[1:])
    assert len(Gallery.load(tmp_path / "gallery.safetensors").video_ids) == 44  # every video of the folder


def test_the_package_exports_its_api_without_importing_the_heavy_stack():
    import pig_lightning

    for name in pig_lightning.__all__:
        assert getattr(pig_lightning, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pig_lightning.nothing  # noqa: B018
    code = ("import sys, pig_lightning; heavy = {'torch', 'lightning', 'transformers', 'av'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
