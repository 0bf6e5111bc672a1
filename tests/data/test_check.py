"""pig-lightning data-check: every kind of problem found, counted, reported; exit codes."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from pig_lightning.data.sources.annotations import VideoRecord, read_jsonl, write_jsonl
from pig_lightning.cli import main as cli_main
from pig_lightning.data.check import check_dataset
from tests.data.video_factory import indexed_frames, write_bad_videos, write_frame_folder, write_video


def main(argv: list[str]) -> None:
    """``pig-lightning data-check ARGV`` as the entry point runs it (one error policy, exit codes)."""
    cli_main(["data-check", *argv])


@pytest.fixture()
def dirty_set(synthetic_root, tmp_path) -> tuple[Path, Path]:
    """Good synthetic videos plus one of every problem data-check reports."""
    root = tmp_path / "videos"
    good = read_jsonl(Path(synthetic_root) / "test.jsonl")[:4]
    for r in good:
        (root / r.video).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(synthetic_root) / r.video, root / r.video)
    bad = write_bad_videos(root / "bad", root / good[0].video)
    write_video(root / "short.mp4", indexed_frames(5), fps=10)
    write_frame_folder(root / "frames" / "f0", indexed_frames(12))
    records = list(good) + [
        VideoRecord(f"bad-{kind}", str(path.relative_to(root)), (f"a {kind} video",)) for kind, path in bad.items()
    ] + [
        VideoRecord("short", "short.mp4", ("a short video",)),
        VideoRecord("late-clip", good[1].video, ("a clip after the end",), start=500.0, end=510.0),
        VideoRecord("folder", "frames/f0", ("a frame folder",)),
        VideoRecord("wordy", good[2].video, (" ".join(["red"] * 40),)),
    ]
    ann = write_jsonl(records, tmp_path / "dirty.jsonl")
    # one empty caption, which the strict reader refuses: data-check reports it instead
    lines = ann.read_text().splitlines()
    row = json.loads(lines[1])
    row["captions"].append("   ")
    lines[1] = json.dumps(row)
    ann.write_text("\n".join(lines) + "\n")
    return ann, root


def test_every_problem_is_found_and_classified(dirty_set, synthetic_root):
    ann, root = dirty_set
    report = check_dataset(ann, root, num_frames=8, tokenizer=f"{synthetic_root}/tokenizer", max_text_length=20,
                           progress=False)
    kinds = {(p["kind"], p["video_id"]) for p in report["problems"]}
    assert kinds == {
        ("missing", "bad-missing"), ("zero-length", "bad-zero"), ("unreadable", "bad-garbage"),
        ("unreadable", "bad-truncated"), ("audio-only", "bad-audio-only"), ("too-short", "short"),
        ("clip-out-of-range", "late-clip"), ("empty-caption", json.loads(ann.read_text().splitlines()[1])["video_id"]),
        ("caption-too-long", "wordy"),
    }
    assert report["counts"] == {"missing": 1, "zero-length": 1, "audio-only": 1, "unreadable": 2,
                                "clip-out-of-range": 1, "too-short": 1, "outside-root": 0, "empty-caption": 1,
                                "caption-too-long": 1, "duplicate-id": 0}
    assert report["num_videos"] == 13 and report["num_problems"] == 9
    by_id = {p["video_id"]: p for p in report["problems"]}
    assert by_id["short"]["detail"] == "5 frames, fewer than 8"
    assert by_id["bad-missing"]["path"].endswith("bad/nope.mp4")


def test_workers_give_the_same_report(dirty_set):
    ann, root = dirty_set
    one = check_dataset(ann, root, num_frames=8, workers=0, progress=False)
    two = check_dataset(ann, root, num_frames=8, workers=2, progress=False)
    assert one == two


def test_command_writes_the_report_and_exits_non_zero(dirty_set, tmp_path, capsys):
    ann, root = dirty_set
    out = tmp_path / "report.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["--annotations", str(ann), "--video_root", str(root), "--num_frames", "8", "--workers", "0",
              "--output", str(out)])
    assert exit_info.value.code == 1
    printed = capsys.readouterr().out
    assert "checked 13 videos" in printed and "1 missing" in printed and "2 unreadable" in printed
    assert json.loads(out.read_text())["counts"]["audio-only"] == 1


def test_a_clean_set_passes(synthetic_root, capsys):
    main(["--annotations", f"{synthetic_root}/val.jsonl", "--video_root", synthetic_root, "--num_frames", "4",
          "--workers", "0"])
    assert "no problems found" in capsys.readouterr().out


def test_an_unreadable_annotation_file_exits_2(tmp_path, synthetic_root, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video_id": "a", "video": "a.mp4"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["--annotations", str(bad), "--video_root", synthetic_root])
    assert exit_info.value.code == 2
    assert "bad.jsonl:1: missing key 'captions'" in capsys.readouterr().err


def test_datamodule_warns_when_train_and_test_were_preprocessed_differently(synthetic_root, tmp_path, caplog):
    from pig_lightning.data import AnnotationFiles, VideoTextDataModule
    from pig_lightning.data.video.preprocess import PreprocessSettings, preprocess_folder

    records = read_jsonl(Path(synthetic_root) / "train.jsonl")[:4]
    for split, fps in (("train", 3), ("test", 5)):
        src = tmp_path / f"src_{split}"
        src.mkdir()
        for r in records:
            shutil.copy(Path(synthetic_root) / r.video, src / Path(r.video).name)
        preprocess_folder(src, tmp_path / "root" / split, PreprocessSettings(fps=fps, short_side=32), workers=0)
        write_jsonl([VideoRecord(r.video_id, f"{split}/{Path(r.video).name}", r.captions) for r in records],
                    tmp_path / f"{split}.jsonl")

    def setup(test_file):
        files = AnnotationFiles(video_root=str(tmp_path / "root"), train_annotations=str(tmp_path / "train.jsonl"),
                                test_annotations=str(test_file))
        dm = VideoTextDataModule(files, tokenizer=f"{synthetic_root}/tokenizer", num_frames=2, image_size=32,
                                 batch_size=2, num_workers=0)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pig_lightning.data"):
            dm.setup(None)
        return [r.getMessage() for r in caplog.records if "preprocessed differently" in r.getMessage()]

    warnings = setup(tmp_path / "test.jsonl")
    assert len(warnings) == 1 and "(fps)" in warnings[0] and "fps=3.0" in warnings[0] and "fps=5.0" in warnings[0]
    write_jsonl([VideoRecord(r.video_id, f"train/{Path(r.video).name}", r.captions) for r in records],
                tmp_path / "same.jsonl")
    assert setup(tmp_path / "same.jsonl") == []
