"""``index`` over a collection with broken videos: the gallery of the good ones, the broken ones listed
with their reasons (issue #22), the same per shard and across processes; ``--strict`` stops at one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pig_lightning.data.sources.annotations import read_jsonl
from pig_lightning.retrieval import Gallery, build_index
from pig_lightning.retrieval.indexer import skipped_path
from tests.data.video_factory import write_bad_videos
from tests.helpers import write_jsonl


def broken_files(folder: Path, good: Path) -> dict[str, Path]:
    """Every kind of file users meet that is not a decodable video."""
    files = write_bad_videos(folder, good)  # missing, zero-byte, garbage, truncated, audio-only
    (folder / "notes.mp4").write_text("this is a text file named .mp4\n")
    (folder / "empty_frames").mkdir()
    return {**files, "text": folder / "notes.mp4", "frame folder without frames": folder / "empty_frames"}


@pytest.fixture(scope="module")
def collection(tmp_path_factory, synthetic_root) -> tuple[Path, list[dict], dict[str, Path]]:
    """Every synthetic video, then one record per kind of broken file."""
    folder = tmp_path_factory.mktemp("collection")
    rows = [json.loads(line) for split in ("train", "val", "test")
            for line in (Path(synthetic_root) / f"{split}.jsonl").read_text().splitlines()]
    for row in rows:
        row["video"] = str(Path(synthetic_root) / row["video"])
    broken = broken_files(folder / "broken", Path(rows[0]["video"]))
    rows += [{"video_id": f"broken_{kind.replace(' ', '_')}", "video": str(path), "captions": ["x"]}
             for kind, path in broken.items()]
    return write_jsonl(folder / "all.jsonl", rows), rows, broken


def test_every_kind_of_broken_video_is_skipped_and_listed_per_shard_and_across_processes(
        collection, tiny_checkpoint, tmp_path):
    listing, rows, broken = collection
    ckpt = tiny_checkpoint("meanp")
    output = tmp_path / "g.safetensors"
    # shards of 7: the broken files fill the last shard entirely; two processes share the shards
    assert build_index(ckpt, listing, output, shard_size=7, num_workers=2, progress=False, rank=1, world_size=2,
                       outside_root="allow") is None
    assert build_index(ckpt, listing, output, shard_size=7, num_workers=2, progress=False, rank=0, world_size=2,
                       outside_root="allow") == output
    good = [r["video_id"] for r in rows if not r["video_id"].startswith("broken_")]
    assert Gallery.load(output).video_ids == good
    skipped = json.loads(skipped_path(output).read_text())
    assert [s["video_id"] for s in skipped] == [f"broken_{k.replace(' ', '_')}" for k in broken]
    assert all(s["reason"] and Path(s["path"]).name == broken[k].name for s, k in zip(skipped, broken))
    assert not output.with_name(output.name + ".shards").exists()


def test_a_folder_with_five_percent_broken_videos_gives_the_gallery_of_the_rest(synthetic_root, tiny_checkpoint,
                                                                                tmp_path, capsys):
    from pig_lightning.cli import main

    folder = tmp_path / "videos"
    folder.mkdir()
    for path in sorted((Path(synthetic_root) / "videos").glob("*.mp4"))[:38]:
        shutil.copy(path, folder / path.name)
    (folder / "zz_empty.mp4").write_bytes(b"")
    (folder / "zz_text.mp4").write_text("not a video\n")
    main(["index", "--ckpt_path", str(tiny_checkpoint("meanp")), "--videos", str(folder), "--output",
          str(tmp_path / "g.safetensors"), "--num_workers", "1", "--shard_size", "16"])
    out = capsys.readouterr().out
    assert "38 videos" in out and "2 videos could not be decoded and were skipped" in out
    assert len(Gallery.load(tmp_path / "g.safetensors").video_ids) == 38
    assert {s["video_id"] for s in json.loads(skipped_path(tmp_path / "g.safetensors").read_text())} == \
        {"zz_empty", "zz_text"}


def test_strict_stops_at_the_first_broken_video_with_one_line(collection, tiny_checkpoint, tmp_path, capsys):
    from pig_lightning.cli import main

    listing, rows, _ = collection
    with pytest.raises(SystemExit) as done:
        main(["index", "--ckpt_path", str(tiny_checkpoint("meanp")), "--videos", str(listing), "--output",
              str(tmp_path / "g.safetensors"), "--num_workers", "2", "--strict", "--outside_root", "allow"])
    err = capsys.readouterr().err
    errors = [line for line in err.replace("\r", "\n").splitlines() if "error:" in line]
    assert done.value.code == 2 and len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("pig-lightning index: error: cannot decode video")
    assert "broken_missing" in errors[0] and "nope.mp4" in errors[0]
    assert not (tmp_path / "g.safetensors").exists()


def test_nothing_decodable_is_an_error_that_says_so(collection, tiny_checkpoint, tmp_path):
    _, rows, _ = collection
    only_broken = write_jsonl(tmp_path / "broken.jsonl", [r for r in rows if r["video_id"].startswith("broken_")])
    with pytest.raises(ValueError, match="none of the 7 videos .* could be decoded"):
        build_index(tiny_checkpoint("meanp"), only_broken, tmp_path / "g.safetensors", num_workers=0,
                    progress=False, outside_root="allow")
    assert not (tmp_path / "g.safetensors").exists()
    assert read_jsonl(only_broken)  # the listing itself is fine
