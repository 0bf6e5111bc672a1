"""Benchmark annotation readers (formats.py) and the convert command, on tiny files shaped like
the real downloads."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from pig_lightning.cli import main as cli_main
from pig_lightning.data.sources.annotations import AnnotationError, VideoRecord, read_jsonl, write_jsonl
from pig_lightning.data.sources.formats import FORMATS, describe_formats, read_annotations
from tests.data.annotation_files import localizing_moments_file
from tests.data.annotation_files import (_activitynet_file, _didemo_file, _lsmdc_file, _msrvtt_data, _msvd_files,
                                         _vatex_file, _write, _write_json)

# ------------------------------------------------------------------------------------------------
# fixture files


# ------------------------------------------------------------------------------------------------
# formats


def test_registry_lists_every_format_with_a_description():
    assert set(FORMATS) == {"jsonl", "msrvtt_csv", "msrvtt_json", "msrvtt_jsonl", "msvd", "didemo",
                            "activitynet", "vatex", "lsmdc"}
    help_text = describe_formats()
    for name, spec in FORMATS.items():
        assert name in help_text and spec.description


def test_generic_jsonl_and_pattern_override(tmp_path):
    path = _write(tmp_path / "a.jsonl", json.dumps({"video_id": "x1", "video": "raw/x1.webm", "captions": ["hi"]}) + "\n")
    assert read_annotations(path) == [VideoRecord("x1", "raw/x1.webm", ("hi",))]
    assert read_annotations(path, video_pattern="{video_id}.mp4")[0].video == "x1.mp4"


def test_msrvtt_csv_9k_takes_all_captions_in_file_order(tmp_path):
    data = _msrvtt_data(tmp_path)
    split = _write(tmp_path / "MSRVTT_train.9k.csv", "video_id\nvideo1\nvideo0\n")
    records = read_annotations(split, "msrvtt_csv", captions_file=data)
    assert records == [
        VideoRecord("video1", "video1.mp4", ("a man drives a car",)),
        VideoRecord("video0", "video0.mp4", ("a car is shown", "a red car on a road", "a car drives fast")),
    ]


def test_msrvtt_csv_jsfusion_one_caption_per_video(tmp_path):
    csv_text = (
        "key,vid_key,video_id,sentence\n"
        "ret0,msr7010,video7010,a person is cooking\n"
        'ret1,msr7011,video7011,"a cat, a dog and a bird"\n'
        "ret2,msr7012,video7012,people dance\n"
    )
    path = _write(tmp_path / "MSRVTT_JSFUSION_test.csv", csv_text)
    records = read_annotations(path, "msrvtt_csv", video_pattern="all/{video_id}.mp4")
    assert records == [
        VideoRecord("video7010", "all/video7010.mp4", ("a person is cooking",)),
        VideoRecord("video7011", "all/video7011.mp4", ("a cat, a dog and a bird",)),
        VideoRecord("video7012", "all/video7012.mp4", ("people dance",)),
    ]


def test_msrvtt_json_split(tmp_path):
    data = _msrvtt_data(tmp_path)
    records = read_annotations(data, "msrvtt_json", split="test")
    assert records == [
        VideoRecord("video7010", "video7010.mp4", ("someone is cooking", "a person makes food")),
        VideoRecord("video7011", "video7011.mp4", ("a cartoon cat",)),
    ]
    assert [r.video_id for r in read_annotations(data, "msrvtt_json", split="validate")] == ["video6513"]
    with pytest.raises(AnnotationError, match=r"MSRVTT_data.json: unknown split 'val'; the file has test, train, validate"):
        read_annotations(data, "msrvtt_json", split="val")


def test_msrvtt_jsonl_merges_lines_of_one_video(tmp_path):
    lines = [
        {"clip_id": "video0", "text": ["a car is shown", "a red car"]},
        {"clip_id": "all/video1", "text": "a man drives"},
        {"clip_id": "video0", "text": "a car drives fast"},
        {"video_id": "video2", "text": ["a dog"]},
    ]
    path = _write(tmp_path / "train9k.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert read_annotations(path, "msrvtt_jsonl") == [
        VideoRecord("video0", "video0.mp4", ("a car is shown", "a red car", "a car drives fast")),
        VideoRecord("video1", "video1.mp4", ("a man drives",)),
        VideoRecord("video2", "video2.mp4", ("a dog",)),
    ]


def test_msvd_joins_tokens(tmp_path):
    ids, pkl = _msvd_files(tmp_path, ["-7KMZQEsJW4_205_208", "-4wsuPCjDBc_5_15", "bQJQGoJF7_k_162_169"])
    assert read_annotations(ids, "msvd", captions_file=pkl) == [
        VideoRecord("-7KMZQEsJW4_205_208", "-7KMZQEsJW4_205_208.avi", ("a cat plays", "a kitten is playing", "cat")),
        VideoRecord("-4wsuPCjDBc_5_15", "-4wsuPCjDBc_5_15.avi", ("a man is singing", "someone sings")),
        VideoRecord("bQJQGoJF7_k_162_169", "bQJQGoJF7_k_162_169.avi", ("a woman slices an onion",)),
    ]


def test_didemo_paragraphs_segments_and_span(tmp_path):
    path = _didemo_file(tmp_path)
    records = read_annotations(path, "didemo")
    assert records == [
        VideoRecord("12090392@N02_13482799053_87ef417396", "12090392@N02_13482799053_87ef417396.mov",
                    ("a dog runs in. the dog sits down",)),
        VideoRecord("10015567@N08_3655084291_d8b58466fa", "10015567@N08_3655084291_d8b58466fa.mp4",
                    ("the camera pans left",)),
        VideoRecord("10026939@N00_4523218017_c0e8d3b3d7", "10026939@N00_4523218017_c0e8d3b3d7.avi",
                    ("a boy jumps",)),
    ]
    first = records[0]
    # times are 5 s chunks, one [first, last] per annotator: mean(first) * 5 .. (mean(last) + 1) * 5
    assert first.meta == {"segments": [[0.0, 7.5], [20.0, 30.0]], "span": [0.0, 30.0],
                          "sentences": ["a dog runs in.", "the dog sits down"]}
    assert first.start is None and first.end is None
    spanned = read_annotations(path, "didemo", use_span=True, video_pattern="{video_id}.mp4")
    assert [(r.video, r.start, r.end) for r in spanned] == [
        ("12090392@N02_13482799053_87ef417396.mp4", 0.0, 30.0),
        ("10015567@N08_3655084291_d8b58466fa.mp4", 10.0, 20.0),
        ("10026939@N00_4523218017_c0e8d3b3d7.mp4", 5.0, 10.0),
    ]


def test_activitynet_paragraphs_and_span(tmp_path):
    path = _activitynet_file(tmp_path)
    records = read_annotations(path, "activitynet")
    assert records == [
        VideoRecord("v_QOlSCBRmfWY", "v_QOlSCBRmfWY.mp4",
                    ("A young woman is seen standing in a room. The girl dances around the room. She ends by bowing.",)),
        VideoRecord("v_ehGHCYKzyZ8", "v_ehGHCYKzyZ8.mp4", ("Two men play. They shake hands.",)),
        VideoRecord("v_nwznKOuZM7w", "v_nwznKOuZM7w.mp4", ("A cat jumps.",)),
    ]
    assert records[1].meta == {"duration": 61.72, "segments": [[0.0, 14.29], [10.5, 65.0]],
                               "span": [0.0, 61.72],  # clipped to the duration
                               "sentences": ["Two men play.", "They shake hands."]}
    assert all(r.start is None and r.end is None for r in records)
    spanned = read_annotations(path, "activitynet", use_span=True, video_pattern="{youtube_id}.mp4")
    assert [(r.video, r.start, r.end) for r in spanned] == [
        ("QOlSCBRmfWY.mp4", 0.83, 79.42), ("ehGHCYKzyZ8.mp4", 0.0, 61.72), ("nwznKOuZM7w.mp4", 3.5, 12.0),
    ]


def test_vatex_english_captions_and_id_list(tmp_path):
    path = _vatex_file(tmp_path)
    records = read_annotations(path, "vatex")
    assert [r.video_id for r in records] == ["Ptf_2VRj-V0_000122_000132", "wsAG-b2m0wE_000015_000025",
                                             "b_0yzHtxNg8_000030_000040"]
    assert records[0] == VideoRecord("Ptf_2VRj-V0_000122_000132", "Ptf_2VRj-V0_000122_000132.mp4",
                                     tuple(f"a man plays drum {i}" for i in range(10)))
    ids = _write(tmp_path / "test_ids.txt", "b_0yzHtxNg8_000030_000040\nPtf_2VRj-V0_000122_000132\n")
    subset = read_annotations(path, "vatex", split=ids, video_pattern="{youtube_id}.mp4")
    assert [(r.video_id, r.video) for r in subset] == [("b_0yzHtxNg8_000030_000040", "b_0yzHtxNg8.mp4"),
                                                      ("Ptf_2VRj-V0_000122_000132", "Ptf_2VRj-V0.mp4")]
    bad = _write(tmp_path / "bad_ids.txt", "Ptf_2VRj-V0_000122_000132\nnope_000001_000011\n")
    with pytest.raises(AnnotationError, match=r"bad_ids.txt:2: video 'nope_000001_000011' is not in .*vatex_validation"):
        read_annotations(path, "vatex", split=bad)


def test_lsmdc_movie_folders_and_repeated_clip(tmp_path):
    records = read_annotations(_lsmdc_file(tmp_path), "lsmdc")
    assert records == [
        VideoRecord("0001_American_Beauty_00.00.51.926-00.00.54.129",
                    "0001_American_Beauty/0001_American_Beauty_00.00.51.926-00.00.54.129.avi",
                    ('SOMEONE\'s "perfect" lawn.', "The lawn is green.")),
        VideoRecord("0001_American_Beauty_00.00.56.000-00.00.58.500",
                    "0001_American_Beauty/0001_American_Beauty_00.00.56.000-00.00.58.500.avi", ("SOMEONE jogs past.",)),
        VideoRecord("1010_TITANIC_00.41.32.072-00.41.40.196",
                    "1010_TITANIC/1010_TITANIC_00.41.32.072-00.41.40.196.avi", ("The ship sails.",)),
    ]


def test_round_trip_through_generic_jsonl(tmp_path):
    for records in (read_annotations(_didemo_file(tmp_path), "didemo", use_span=True),
                    read_annotations(_activitynet_file(tmp_path), "activitynet"),
                    read_annotations(_lsmdc_file(tmp_path), "lsmdc"),
                    read_annotations(_msrvtt_data(tmp_path), "msrvtt_json", split="train")):
        back = read_jsonl(write_jsonl(records, tmp_path / "out.jsonl"))
        assert back == records
        assert [r.meta for r in back] == [r.meta for r in records]


# ------------------------------------------------------------------------------------------------
# convert command


def test_convert_end_to_end(tmp_path, capsys):
    data = _msrvtt_data(tmp_path)
    split = _write(tmp_path / "MSRVTT_train.9k.csv", "video_id\nvideo0\nvideo1\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "video0.mp4").write_bytes(b"")
    out = tmp_path / "data" / "msrvtt" / "train9k.jsonl"
    cli_main(["convert", "--format", "msrvtt_csv", "--input", str(split), "--captions_file", str(data),
                  "--output", str(out), "--video_root", str(videos)])
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote 2 videos, 4 captions to {out}"
    assert "1 of 2 videos not found" in captured.err and str(videos / "video1.mp4") in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {"video_id": "video0", "video": "video0.mp4",
         "captions": ["a car is shown", "a red car on a road", "a car drives fast"]},
        {"video_id": "video1", "video": "video1.mp4", "captions": ["a man drives a car"]},
    ]


def test_convert_paragraph_with_span(tmp_path, capsys):
    out = tmp_path / "val_1.jsonl"
    cli_main(["convert", "--format", "activitynet", "--input", str(_activitynet_file(tmp_path)), "--output", str(out),
                  "--use_span"])
    assert capsys.readouterr().out.strip() == f"wrote 3 videos, 3 captions to {out}"
    first = json.loads(out.read_text().splitlines()[0])
    assert (first["start"], first["end"], first["span"]) == (0.83, 79.42, [0.83, 79.42])


def test_convert_reports_errors_without_traceback(tmp_path, capsys):
    ids, _ = _msvd_files(tmp_path, ["-4wsuPCjDBc_5_15"])
    with pytest.raises(SystemExit) as exc:
        cli_main(["convert", "--format", "msvd", "--input", str(ids), "--output", str(tmp_path / "o.jsonl")])
    assert exc.value.code == 2
    assert "needs captions_file" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


# ------------------------------------------------------------------------------------------------
# bad inputs


def test_csv_malformed_row_names_file_and_line(tmp_path):
    path = _write(tmp_path / "MSRVTT_JSFUSION_test.csv",
                  "key,vid_key,video_id,sentence\nret0,msr1,video1,a dog\nret1,msr2,video2\n")
    with pytest.raises(AnnotationError, match=r"MSRVTT_JSFUSION_test.csv:3: expected 4 fields"):
        read_annotations(path, "msrvtt_csv")


def test_csv_missing_column(tmp_path):
    path = _write(tmp_path / "MSRVTT_train.9k.csv", "vid\nvideo0\n")
    with pytest.raises(AnnotationError, match=r"MSRVTT_train.9k.csv:1: missing column 'video_id'"):
        read_annotations(path, "msrvtt_csv", captions_file=_msrvtt_data(tmp_path))


def test_csv_id_without_captions_names_both_files(tmp_path):
    path = _write(tmp_path / "MSRVTT_train.9k.csv", "video_id\nvideo0\nvideo999\n")
    with pytest.raises(AnnotationError, match=r"MSRVTT_train.9k.csv:3: video 'video999' has no captions in "
                                              r"captions_file .*MSRVTT_data.json"):
        read_annotations(path, "msrvtt_csv", captions_file=_msrvtt_data(tmp_path))


def test_lsmdc_wrong_field_count(tmp_path):
    path = _write(tmp_path / "LSMDC16_annos_val.csv", "0001_A_00.00.01.000-00.00.02.000\t1\t2\t1\t2\tok\n"
                                                     "0001_A_00.00.03.000-00.00.04.000\t3\t4 a broken line\n")
    with pytest.raises(AnnotationError, match=r"LSMDC16_annos_val.csv:2: expected 6 fields"):
        read_annotations(path, "lsmdc")


def test_json_entry_missing_key(tmp_path):
    path = _write_json(tmp_path / "train_data.json", [
        {"description": "ok", "video": "a.mp4", "times": [[0, 0]]},
        {"description": "no times", "video": "b.mp4"},
    ])
    with pytest.raises(AnnotationError, match=r"train_data.json: entry 1 \(video 'b.mp4'\): missing key 'times'"):
        read_annotations(path, "didemo")
    anet = _write_json(tmp_path / "train.json", {"v_a": {"duration": 3.0, "timestamps": [[0, 1]]}})
    with pytest.raises(AnnotationError, match=r"train.json: video 'v_a': missing key 'sentences'"):
        read_annotations(anet, "activitynet")


def test_msvd_id_missing_from_pickle(tmp_path):
    ids, pkl = _msvd_files(tmp_path, ["-4wsuPCjDBc_5_15", "zzz_1_2"])
    with pytest.raises(AnnotationError, match=r"test_list.txt:2: video 'zzz_1_2' is not in captions_file .*raw-captions.pkl"):
        read_annotations(ids, "msvd", captions_file=pkl)


def test_empty_caption(tmp_path):
    path = _write_json(tmp_path / "vatex.json", [{"videoID": "a_000001_000011", "enCap": ["fine", "   "]}])
    with pytest.raises(AnnotationError, match=r"vatex.json: entry 0 \(videoID 'a_000001_000011'\), enCap\[1\]: empty caption"):
        read_annotations(path, "vatex")
    csv_path = _write(tmp_path / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence\nret0,msr1,video1, \n")
    with pytest.raises(AnnotationError, match=r"MSRVTT_JSFUSION_test.csv:2: empty caption"):
        read_annotations(csv_path, "msrvtt_csv")


def test_duplicate_ids_in_one_line_per_video_formats(tmp_path):
    path = _write(tmp_path / "MSRVTT_JSFUSION_test.csv",
                  "key,vid_key,video_id,sentence\nret0,msr1,video1,a\nret1,msr1,video1,b\n")
    with pytest.raises(AnnotationError, match=r":3: video id 'video1' already used on line 2"):
        read_annotations(path, "msrvtt_csv")


def test_option_errors(tmp_path):
    path = _write(tmp_path / "x.jsonl", "")
    with pytest.raises(ValueError, match=r"unknown annotation format 'msrvt'; known formats: jsonl, msrvtt_csv"):
        read_annotations(path, "msrvt")
    with pytest.raises(ValueError, match=r"format 'msvd' needs captions_file"):
        read_annotations(path, "msvd")
    with pytest.raises(ValueError, match=r"format 'msrvtt_json' needs split"):
        read_annotations(path, "msrvtt_json")
    with pytest.raises(ValueError, match=r"use_span applies to the paragraph formats"):
        read_annotations(path, "lsmdc", use_span=True)
    with pytest.raises(ValueError, match=r"video_pattern '\{clip\}.mp4' uses 'clip'; format 'msvd' provides \{video_id\}"):
        read_annotations(path, "msvd", captions_file=path, video_pattern="{clip}.mp4")


def test_missing_files_name_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"annotation file .*not found: .*nope.txt"):
        read_annotations(tmp_path / "nope.txt", "msvd", captions_file=tmp_path / "x.pkl")
    ids, _ = _msvd_files(tmp_path, ["-4wsuPCjDBc_5_15"])
    with pytest.raises(FileNotFoundError, match=r"captions_file not found: .*missing.pkl"):
        read_annotations(ids, "msvd", captions_file=tmp_path / "missing.pkl")



@pytest.mark.parametrize("split, videos, mov_mp4, trailing_dot",
                         [("val", 1065, 27, 2), ("test", 1004, 27, 6)])
def test_didemo_as_published_merges_the_names_of_one_video(tmp_path, caplog, split, videos, mov_mp4, trailing_dot):
    """LocalizingMoments lists 29 val / 33 test videos under two file names (X.mov and X.mp4; in 2 val /
    6 test cases X. and X.mp4) with different moments: 1,094 / 1,037 names, 1,065 / 1,004 videos."""
    path = localizing_moments_file(tmp_path / f"{split}_data.json", videos, mov_mp4, trailing_dot)
    names = {e["video"] for e in json.loads(path.read_text())}
    assert len(names) == videos + mov_mp4 + trailing_dot  # what the published file holds
    with caplog.at_level("INFO"):
        records = read_annotations(path, "didemo")
    assert len(records) == videos and len({r.video_id for r in records}) == videos
    assert f"{mov_mp4 + trailing_dot} videos are listed under two or more file names" in caplog.text
    merged = [r for r in records if "file_names" in r.meta]
    assert len(merged) == mov_mp4 + trailing_dot
    assert all(len(r.meta["sentences"]) == 4 for r in records)  # the moments of both names, none lost
    first, dotted = merged[0], merged[-1]
    assert first.video.endswith(".mov") and first.meta["alternative_videos"] == [first.video[:-4] + ".mp4"]
    assert dotted.video.endswith(".mp4") and dotted.meta["alternative_videos"] == [dotted.video[:-3]]
    assert first.video_id == first.video[:-4] and dotted.video_id == dotted.video[:-4]


def test_didemo_resolves_the_name_that_is_on_disk_and_keeps_a_split_list(tmp_path):
    from pig_lightning.data.sources.paths import resolve_video_path

    path = localizing_moments_file(tmp_path / "test_data.json", 5, 1, 1)
    records = {r.video_id: r for r in read_annotations(path, "didemo")}
    pair = next(r for r in records.values() if r.video.endswith(".mov"))
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / (pair.video_id + ".mp4")).write_bytes(b"")  # only the .mp4 was downloaded
    assert resolve_video_path(tmp_path / "videos", pair) == tmp_path / "videos" / (pair.video_id + ".mp4")
    keep = sorted(records)[:2]
    listing = _write(tmp_path / "test_list.txt", f"{keep[0]}.mp4\n{keep[1]}\n")  # names or ids
    assert [r.video_id for r in read_annotations(path, "didemo", split=listing)] == \
        [v for v in records if v in keep]
    _write(listing, "nobody_knows_this_one\n")
    with pytest.raises(AnnotationError, match="test_list.txt:1: video 'nobody_knows_this_one' is not in"):
        read_annotations(path, "didemo", split=listing)


def test_didemo_names_both_entries_when_one_id_stands_for_two_videos(tmp_path):
    entries = [{"description": "a", "video": "abc.mov", "times": [[0, 0]], "dl_link": "https://x/1"},
               {"description": "b", "video": "abc.mp4", "times": [[1, 1]], "dl_link": "https://x/2"}]
    path = _write_json(tmp_path / "val_data.json", entries)
    with pytest.raises(AnnotationError, match=r"entry 1 \(video 'abc.mp4'\).*'abc'.*entry 0 \('abc.mov'\)"):
        read_annotations(path, "didemo")


def test_the_six_benchmarks_files_parse_with_their_published_counts(tmp_path):
    """Files shaped as published, at their published sizes: no video or caption is dropped or merged."""
    from tests.data.annotation_files import (activitynet_published, lsmdc_published, msrvtt_published,
                                             msvd_published, vatex_published)

    def counts(records):
        return len(records), sum(len(r.captions) for r in records)

    msrvtt = msrvtt_published(tmp_path)
    assert counts(read_annotations(msrvtt["test_1k_a"], "msrvtt_csv")) == (1000, 1000)
    assert counts(read_annotations(msrvtt["train_9k"], "msrvtt_csv", captions_file=msrvtt["data"])) == (9000, 180000)
    msvd = msvd_published(tmp_path)
    per_split = {s: counts(read_annotations(msvd[s], "msvd", captions_file=msvd["captions"]))
                 for s in ("train", "val", "test")}
    assert {s: n for s, (n, _) in per_split.items()} == {"train": 1200, "val": 100, "test": 670}
    assert sum(c for _, c in per_split.values()) == 80827
    for name, videos in (("val_1.json", 4917), ("val_2.json", 4885)):
        assert counts(read_annotations(activitynet_published(tmp_path, name, videos), "activitynet")) == (videos, videos)
    assert counts(read_annotations(vatex_published(tmp_path), "vatex")) == (3000, 30000)
    assert counts(read_annotations(lsmdc_published(tmp_path), "lsmdc")) == (1000, 1000)
    didemo = localizing_moments_file(tmp_path / "test_data.json", 1004, 27, 6)
    assert counts(read_annotations(didemo, "didemo")) == (1004, 1004)  # paragraphs: one query per video
