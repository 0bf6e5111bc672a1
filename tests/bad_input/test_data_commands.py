"""data-check, convert, preprocess, make-synthetic: exit codes 0 / 1 / 2 and messages that name the culprit."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.helpers import synthetic_rows, write_jsonl


def _check(run, annotations, root, *extra):
    return run("data-check", "--annotations", annotations, "--video_root", root, "--num_frames", "4",
               "--workers", "0", *extra)


def test_duplicate_ids_are_reported_as_convert_refuses_them(synthetic_root, tmp_path, run):
    rows = synthetic_rows(synthetic_root)[:3]
    rows[2]["video_id"] = rows[0]["video_id"]
    listing = write_jsonl(tmp_path / "dup.jsonl", rows)
    checked = _check(run, listing, synthetic_root, "--output", tmp_path / "report.json")
    assert checked.code == 1 and "1 duplicate-id" in checked.out
    assert f"video_id {rows[0]['video_id']!r} already used on line 1" in checked.out
    assert json.loads((tmp_path / "report.json").read_text())["counts"]["duplicate-id"] == 1
    converted = run("convert", "--format", "jsonl", "--input", listing, "--output", tmp_path / "c.jsonl")
    assert converted.code == 2 and "already used on line 1" in converted.err


def test_an_empty_caption_is_not_also_reported_as_too_long(synthetic_root, tokenizer_dir, tmp_path, run):
    rows = synthetic_rows(synthetic_root)[:1]
    rows[0]["captions"] = [""]
    listing = write_jsonl(tmp_path / "empty.jsonl", rows)
    result = _check(run, listing, synthetic_root, "--tokenizer", tokenizer_dir, "--max_text_length", "3")
    assert result.code == 1 and "1 empty-caption" in result.out and "caption-too-long" not in result.out


def test_paths_outside_the_root_warn_by_default_and_are_problems_when_refused(synthetic_root, tmp_path, run, caplog):
    rows = synthetic_rows(synthetic_root)[:2]
    shutil.copy(Path(synthetic_root) / rows[0]["video"], tmp_path / "elsewhere.mp4")
    rows[0]["video"] = str(tmp_path / "elsewhere.mp4")  # absolute, outside the root
    root = str(Path(synthetic_root) / "videos")
    rows[1]["video"] = Path(rows[1]["video"]).name
    listing = write_jsonl(tmp_path / "out.jsonl", rows)
    with caplog.at_level(logging.WARNING):
        warned = _check(run, listing, root)
    assert warned.code == 0 and "1 of 2 video paths lie outside the video root" in caplog.text
    refused = _check(run, listing, root, "--outside_root", "refuse")
    assert refused.code == 1 and "1 outside-root" in refused.out


@pytest.mark.parametrize("extra, expected", [
    (("--workers", "-1"), "--workers must be >= 0, got -1"),
    (("--num_frames", "0"), "--num_frames must be >= 1, got 0"),
    (("--max_text_length", "0"), "--max_text_length must be >= 1, got 0"),
    (("--outside_root", "maybe"), "invalid choice: 'maybe'"),
], ids=["workers", "frames", "text-length", "policy"])
def test_data_check_refuses_out_of_range_settings(synthetic_root, run, extra, expected):
    result = _check(run, f"{synthetic_root}/val.jsonl", synthetic_root, *extra)
    assert result.code == 2 and expected in result.err


@pytest.mark.parametrize("setup, expected", [
    (lambda t, r: (t / "absent.jsonl", r), "annotation file not found"),
    (lambda t, r: (f"{r}/val.jsonl", t / "nowhere"), "video folder not found"),
    (lambda t, r: (write_bad(t / "bad.jsonl", '{"video_id": "a", "video": "a.mp4", "captions": ["x"]}\n{oops\n'), r),
     "bad.jsonl:2: not valid JSON"),
    (lambda t, r: (write_bad(t / "bad.jsonl", '{"video_id": "a", "video": "a.mp4", "captions": [1]}\n'), r),
     "bad.jsonl:1: 'captions' must be a non-empty list of strings"),
    (lambda t, r: (write_bad(t / "bad.jsonl", '{"video_id": "a", "video": "a.mp4", "captions": ["x"], "start": -1}\n'),
                   r), "bad.jsonl:1: 'start' must be a non-negative number of seconds"),
    (lambda t, r: (write_bad(t / "bad.jsonl", "\n\n"), r), "no annotation records"),
], ids=["no-file", "no-root", "bad-json", "caption-type", "negative-start", "empty-file"])
def test_data_check_that_cannot_run_exits_2(synthetic_root, tmp_path, run, setup, expected):
    annotations, root = setup(tmp_path, synthetic_root)
    result = _check(run, annotations, root)
    assert result.code == 2 and expected in result.err and "Traceback" not in result.err


def write_bad(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_data_check_report_into_a_folder_is_refused_before_the_scan(synthetic_root, tmp_path, run):
    (tmp_path / "report").mkdir()
    result = _check(run, f"{synthetic_root}/val.jsonl", synthetic_root, "--output", tmp_path / "report")
    assert result.code == 2 and "is a folder" in result.err and "checked" not in result.out


def test_a_clean_set_exits_0(synthetic_root, run):
    assert _check(run, f"{synthetic_root}/val.jsonl", synthetic_root).code == 0


def test_convert_output_folder_and_unknown_format(synthetic_root, tmp_path, run):
    (tmp_path / "out").mkdir()
    into_folder = run("convert", "--format", "jsonl", "--input", f"{synthetic_root}/val.jsonl", "--output",
                      tmp_path / "out")
    assert into_folder.code == 2 and "--output" in into_folder.err and "is a folder" in into_folder.err
    unknown = run("convert", "--format", "youtube", "--input", f"{synthetic_root}/val.jsonl", "--output",
                  tmp_path / "o.jsonl")
    assert unknown.code == 2 and "invalid choice: 'youtube'" in unknown.err


# ----- preprocess --------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, expected", [
    (("--short_side", "33"), "short_side must be even (H.264 in yuv420p needs even sizes): 33 would be written as 34"),
    (("--workers", "-1"), "workers must be >= 0"),
    (("--crf", "99"), "crf must be in [0, 51], got 99"),
    (("--fps", "-3"), "fps must be a positive number"),
], ids=["odd-size", "workers", "crf", "fps"])
def test_preprocess_refuses_out_of_range_settings(synthetic_root, tmp_path, run, extra, expected):
    result = run("preprocess", f"{synthetic_root}/videos", tmp_path / "out", *extra)
    assert result.code == 2 and expected in result.err
    assert not (tmp_path / "out").exists()


def test_preprocess_into_a_file_or_from_nowhere(synthetic_root, tmp_path, run):
    (tmp_path / "file").write_text("x")
    into_file = run("preprocess", f"{synthetic_root}/videos", tmp_path / "file")
    assert into_file.code == 2 and "is a file" in into_file.err
    nowhere = run("preprocess", tmp_path / "nowhere", tmp_path / "out")
    assert nowhere.code == 2 and "nowhere does not exist" in nowhere.err


def test_make_synthetic_refuses_negative_workers(tmp_path, run):
    result = run("make-synthetic", tmp_path / "s", "--workers", "-1")
    assert result.code == 2 and "--workers must be >= 0, got -1" in result.err and not (tmp_path / "s").exists()


# ----- files that are not what they seem (issue #22 items 3 and 4) -------------------------------
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


def test_a_json_that_repeats_a_video_key_is_refused_naming_it(tmp_path, run):
    first = '{"v_QOlSCBRmfWY": {"duration": 82.7, "timestamps": [[0.8, 19.9]], "sentences": ["A woman stands."]},'
    again = ' "v_QOlSCBRmfWY": {"duration": 82.7, "timestamps": [[17.4, 60.8]], "sentences": ["She dances."]}}'
    (tmp_path / "val_1.json").write_text(first + again)
    result = run("convert", "--format", "activitynet", "--input", tmp_path / "val_1.json", "--output", tmp_path / "o.jsonl")
    assert result.code == 2 and "'v_QOlSCBRmfWY' appears twice" in result.err and "val_1.json" in result.err
    assert not (tmp_path / "o.jsonl").exists()
    (tmp_path / "l.jsonl").write_text('{"video_id": "a", "video": "a.mp4", "captions": ["x"], "video": "b.mp4"}\n')
    result = run("convert", "--format", "jsonl", "--input", tmp_path / "l.jsonl", "--output", tmp_path / "o.jsonl")
    assert result.code == 2 and "l.jsonl:1: the key 'video' appears twice" in result.err


def test_git_lfs_pointers_are_named_as_such(tmp_path, run, synthetic_root):
    (tmp_path / "vatex_validation_v1.0.json").write_text(LFS_POINTER)
    result = run("convert", "--format", "vatex", "--input", tmp_path / "vatex_validation_v1.0.json",
                 "--output", tmp_path / "o.jsonl")
    assert result.code == 2 and "is a Git LFS pointer" in result.err and "git lfs pull" in result.err
    (tmp_path / "train.jsonl").write_text(LFS_POINTER)
    result = _check(run, tmp_path / "train.jsonl", synthetic_root)
    assert result.code == 2 and "is a Git LFS pointer" in result.err
    (tmp_path / "model.ckpt").write_text(LFS_POINTER)
    result = run("index", "--ckpt_path", tmp_path / "model.ckpt", "--videos", synthetic_root, "--output",
                 tmp_path / "g.safetensors")
    assert result.code == 2 and "model.ckpt is a Git LFS pointer" in result.err


def test_msvd_captions_as_json_are_read_and_other_files_say_what_is_expected(tmp_path, run):
    (tmp_path / "test_list.txt").write_text("-4wsuPCjDBc_5_15\n")
    (tmp_path / "captions_msvd.json").write_text(json.dumps({"-4wsuPCjDBc_5_15": ["a man is singing", "someone sings"]}))
    result = run("convert", "--format", "msvd", "--input", tmp_path / "test_list.txt", "--captions_file",
                 tmp_path / "captions_msvd.json", "--output", tmp_path / "o.jsonl")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "o.jsonl").read_text())["captions"] == ["a man is singing", "someone sings"]
    (tmp_path / "captions.txt").write_text("-4wsuPCjDBc_5_15 a man is singing\n")
    result = run("convert", "--format", "msvd", "--input", tmp_path / "test_list.txt", "--captions_file",
                 tmp_path / "captions.txt", "--output", tmp_path / "o2.jsonl")
    assert result.code == 2 and "neither a pickle nor JSON" in result.err and "raw-captions.pkl" in result.err


@pytest.mark.parametrize("invisible", ["\u200b", " \u200b\u200c ", "\ufeff", "\u2060"])
def test_a_caption_of_invisible_characters_is_empty(invisible, tmp_path, run, synthetic_root):
    rows = synthetic_rows(synthetic_root)[:1]
    rows[0]["captions"] = [invisible]
    listing = write_jsonl(tmp_path / "zw.jsonl", rows)
    result = run("convert", "--format", "jsonl", "--input", listing, "--output", tmp_path / "o.jsonl")
    assert result.code == 2 and "zw.jsonl:1: empty caption (only invisible characters)" in result.err
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps({
        "videos": [{"video_id": "video0", "split": "test"}],
        "sentences": [{"video_id": "video0", "caption": invisible, "sen_id": 0}]}))
    result = run("convert", "--format", "msrvtt_json", "--input", tmp_path / "MSRVTT_data.json", "--split", "test",
                 "--output", tmp_path / "o2.jsonl")
    assert result.code == 2 and "empty caption (only invisible characters)" in result.err


# ----- spans of the paragraph formats (issue #22 item 2) ------------------------------------------
def _activitynet(tmp_path, timestamps, duration=60.0):
    data = {"v_QOlSCBRmfWY": {"duration": duration, "timestamps": timestamps,
                              "sentences": [f"sentence {j}." for j in range(len(timestamps))]}}
    (tmp_path / "val_1.json").write_text(json.dumps(data))
    return tmp_path / "val_1.json"


def test_span_problems_name_the_entry_the_field_and_what_was_done(tmp_path, run, caplog, synthetic_root):
    inverted = _activitynet(tmp_path, [[0.0, 10.0], [30.0, 20.0]])
    with caplog.at_level(logging.WARNING):
        kept = run("convert", "--format", "activitynet", "--input", inverted, "--output", tmp_path / "a.jsonl")
    assert kept.code == 0  # without use_span the whole video is read: counted and warned, not silent
    assert "1 moments have times that are not a clip of their video (1 inverted" in caplog.text
    assert "video 'v_QOlSCBRmfWY': timestamps[1] [30, 20] is inverted" in caplog.text
    refused = run("convert", "--format", "activitynet", "--input", inverted, "--output", tmp_path / "b.jsonl",
                  "--use_span")
    assert refused.code == 2 and "timestamps[1] [30, 20] is inverted (start after end); refused" in refused.err
    checked = run("data-check", "--annotations", inverted, "--video_root", synthetic_root, "--format", "activitynet",
                  "--use_span", "--workers", "0")
    assert checked.code == 2 and "timestamps[1] [30, 20] is inverted" in checked.err
    late = _activitynet(tmp_path, [[0.0, 10.0], [70.0, 80.0]])
    refused = run("convert", "--format", "activitynet", "--input", late, "--output", tmp_path / "c.jsonl", "--use_span")
    assert refused.code == 2 and "timestamps[1] [70, 80] starts after the video's duration 60" in refused.err
    caplog.clear()
    clipped = _activitynet(tmp_path, [[0.0, 10.0], [50.0, 65.0]])
    with caplog.at_level(logging.WARNING):
        result = run("convert", "--format", "activitynet", "--input", clipped, "--output", tmp_path / "d.jsonl",
                     "--use_span")
    assert result.code == 0 and "1 moments end after their video's duration and were clipped to it" in caplog.text
    assert "timestamps[1] [50, 65] ends after the video's duration 60: clipped to it" in caplog.text
    assert json.loads((tmp_path / "d.jsonl").read_text())["end"] == 60.0
