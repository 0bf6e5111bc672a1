"""Annotation files in the six benchmarks' formats, written for tests (shapes of the published files)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _msrvtt_data(tmp_path: Path) -> Path:
    """MSRVTT_data.json: 'videos' with split, 'sentences' in file order (interleaved videos)."""
    videos = [
        {"category": 9, "url": "https://www.youtube.com/watch?v=aaa", "video_id": "video0", "start time": 137.72,
         "end time": 149.44, "split": "train", "id": 0},
        {"category": 16, "url": "https://www.youtube.com/watch?v=bbb", "video_id": "video1", "start time": 184.33,
         "end time": 206.89, "split": "train", "id": 1},
        {"category": 9, "url": "https://www.youtube.com/watch?v=ccc", "video_id": "video6513", "start time": 1.0,
         "end time": 11.0, "split": "validate", "id": 6513},
        {"category": 3, "url": "https://www.youtube.com/watch?v=ddd", "video_id": "video7010", "start time": 5.0,
         "end time": 20.0, "split": "test", "id": 7010},
        {"category": 3, "url": "https://www.youtube.com/watch?v=eee", "video_id": "video7011", "start time": 5.0,
         "end time": 20.0, "split": "test", "id": 7011},
    ]
    sentences = [
        {"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
        {"caption": "a man drives a car", "video_id": "video1", "sen_id": 1},
        {"caption": "a red car on a road", "video_id": "video0", "sen_id": 2},
        {"caption": "someone is cooking", "video_id": "video7010", "sen_id": 3},
        {"caption": "a man talks", "video_id": "video6513", "sen_id": 4},
        {"caption": "a cartoon cat", "video_id": "video7011", "sen_id": 5},
        {"caption": "a person makes food", "video_id": "video7010", "sen_id": 6},
        {"caption": "  a car drives fast ", "video_id": "video0", "sen_id": 7},
    ]
    return _write_json(tmp_path / "MSRVTT_data.json", {"info": {"year": 2016}, "videos": videos, "sentences": sentences})


def _lsmdc_file(tmp_path: Path) -> Path:
    lines = [
        "0001_American_Beauty_00.00.51.926-00.00.54.129\t00.00.51.926\t00.00.54.129\t00.00.51.000\t00.00.55.000"
        "\tSOMEONE's \"perfect\" lawn.",
        "0001_American_Beauty_00.00.56.000-00.00.58.500\t00.00.56.000\t00.00.58.500\t00.00.56.000\t00.00.59.000"
        "\tSOMEONE jogs past.",
        "1010_TITANIC_00.41.32.072-00.41.40.196\t00.41.32.072\t00.41.40.196\t00.41.32.000\t00.41.41.000"
        "\tThe ship sails.",
        "0001_American_Beauty_00.00.51.926-00.00.54.129\t00.00.51.926\t00.00.54.129\t00.00.51.000\t00.00.55.000"
        "\tThe lawn is green.",
    ]
    return _write(tmp_path / "LSMDC16_annos_training.csv", "\n".join(lines) + "\n")


def _msvd_files(tmp_path: Path, ids: list[str]) -> tuple[Path, Path]:
    captions = {
        "-4wsuPCjDBc_5_15": [["a", "man", "is", "singing"], ["someone", "sings"]],
        "-7KMZQEsJW4_205_208": [["a", "cat", "plays"], ["a", "kitten", "is", "playing"], ["cat"]],
        "bQJQGoJF7_k_162_169": [["a", "woman", "slices", "an", "onion"]],
    }
    pkl = tmp_path / "raw-captions.pkl"
    pkl.write_bytes(pickle.dumps(captions))
    return _write(tmp_path / "test_list.txt", "\n".join(ids) + "\n"), pkl


def _didemo_file(tmp_path: Path) -> Path:
    entries = [
        {"annotation_id": 1, "description": "a dog runs in.", "video": "12090392@N02_13482799053_87ef417396.mov",
         "times": [[0, 0], [0, 1], [0, 0], [0, 1]], "dl_link": "https://example.invalid/1"},
        {"annotation_id": 2, "description": "the camera pans left", "video": "10015567@N08_3655084291_d8b58466fa.mp4",
         "times": [[2, 3], [2, 3], [2, 3], [2, 3]], "dl_link": "https://example.invalid/2"},
        {"annotation_id": 3, "description": " the dog sits down ", "video": "12090392@N02_13482799053_87ef417396.mov",
         "times": [[4, 5], [4, 5], [3, 5], [5, 5]], "dl_link": "https://example.invalid/1"},
        {"annotation_id": 4, "description": "a boy jumps", "video": "10026939@N00_4523218017_c0e8d3b3d7.avi",
         "times": [[1, 1], [1, 1], [1, 1], [1, 1]], "dl_link": "https://example.invalid/3"},
    ]
    return _write_json(tmp_path / "test_data.json", entries)


def _activitynet_file(tmp_path: Path) -> Path:
    data = {
        "v_QOlSCBRmfWY": {"duration": 82.73, "timestamps": [[0.83, 19.86], [17.37, 60.81], [56.26, 79.42]],
                          "sentences": ["A young woman is seen standing in a room.",
                                        " The girl dances around the room.", "  She ends by bowing. "]},
        "v_ehGHCYKzyZ8": {"duration": 61.72, "timestamps": [[0, 14.29], [10.5, 65.0]],
                          "sentences": ["Two men play.", "They shake hands."]},
        "v_nwznKOuZM7w": {"duration": 30.0, "timestamps": [[3.5, 12.0]], "sentences": ["A cat jumps."]},
    }
    return _write_json(tmp_path / "val_1.json", data)


def _vatex_file(tmp_path: Path) -> Path:
    data = [
        {"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": [f"a man plays drum {i}" for i in range(10)],
         "chCap": [f"中文 {i}" for i in range(10)]},
        {"videoID": "wsAG-b2m0wE_000015_000025", "enCap": [f"a girl sings {i}" for i in range(10)],
         "chCap": [f"中文 {i}" for i in range(10)]},
        {"videoID": "b_0yzHtxNg8_000030_000040", "enCap": [f"people ski {i}" for i in range(10)],
         "chCap": [f"中文 {i}" for i in range(10)]},
    ]
    return _write_json(tmp_path / "vatex_validation_v1.0.json", data)


def localizing_moments_file(path: Path, videos: int, pairs_mov_mp4: int, pairs_trailing_dot: int,
                            moments: int = 4) -> Path:
    """A DiDeMo ``*_data.json`` shaped as LocalizingMoments publishes it: ``videos`` Flickr videos with
    ``moments`` moments each; ``pairs_mov_mp4`` of them are also listed as ``X.mp4`` beside ``X.mov``, and
    ``pairs_trailing_dot`` as ``X.`` beside ``X.mp4``, with the same ``dl_link`` and *different* moments."""
    entries = []
    for v in range(videos):
        stem = f"{10000000 + v}@N0{v % 9}_{3600000000 + 7 * v}_{v:010x}"
        link = f"https://www.flickr.com/video_download.gne?id={3600000000 + 7 * v}"
        if v < pairs_mov_mp4:
            names = [f"{stem}.mov", f"{stem}.mp4"]
        elif v < pairs_mov_mp4 + pairs_trailing_dot:
            names = [f"{stem}.", f"{stem}.mp4"]
        else:
            names = [f"{stem}.{('mov', 'mp4', 'avi', 'm4v')[v % 4]}"]
        for m in range(moments):
            entries.append({"annotation_id": len(entries), "description": f"moment {m} of video {v}",
                            "video": names[m % len(names)], "times": [[m, m], [m, m + 1], [m, m], [m, m]],
                            "dl_link": link})
    return _write_json(path, entries)


# ----- the published files' shapes, at their published sizes ---------------------------------------
def msrvtt_published(folder: Path) -> dict[str, Path]:
    """MSRVTT_data.json (10,000 videos x 20 captions, interleaved), the 9k training list and the 1k-A
    test pairs (MSRVTT_JSFUSION_test.csv, one caption per video)."""
    videos = [{"video_id": f"video{i}", "split": "train" if i < 6513 else "validate" if i < 7010 else "test",
               "id": i, "category": i % 20, "url": f"https://www.youtube.com/watch?v=v{i}"} for i in range(10000)]
    sentences = [{"caption": f"caption {j} of video {i}", "video_id": f"video{i}", "sen_id": j * 10000 + i}
                 for j in range(20) for i in range(10000)]
    data = _write_json(folder / "MSRVTT_data.json", {"videos": videos, "sentences": sentences})
    train = _write(folder / "MSRVTT_train.9k.csv", "video_id\n" + "".join(
        f"video{i}\n" for i in list(range(6513)) + list(range(7010, 7010 + 2487))))
    test = _write(folder / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence\n" + "".join(
        f"ret{k},msr{7010 + k},video{7010 + k},\"a caption, of video {7010 + k}\"\n" for k in range(1000)))
    return {"data": data, "train_9k": train, "test_1k_a": test}


def msvd_published(folder: Path) -> dict[str, Path]:
    """CLIP4Clip's raw-captions.pkl (1,970 videos, 80,827 tokenised captions) and the split lists
    (1,200 train / 100 val / 670 test)."""
    ids = [f"clip{i:04d}_{i % 97}_{i % 97 + 5}" for i in range(1970)]
    captions = {video: [["a", "caption", str(j)] for j in range(41 + (i < 57))] for i, video in enumerate(ids)}
    pkl = folder / "raw-captions.pkl"
    pkl.write_bytes(pickle.dumps(captions, protocol=2))
    lists = {"train": ids[:1200], "val": ids[1200:1300], "test": ids[1300:]}
    return {"captions": pkl, **{name: _write(folder / f"{name}_list.txt", "\n".join(v) + "\n")
                                for name, v in lists.items()}}


def activitynet_published(folder: Path, name: str, videos: int) -> Path:
    """ActivityNet Captions ``val_1.json`` / ``val_2.json``: one object per video, sentences with timestamps."""
    data = {f"v_{i:011d}": {"duration": 120.0, "timestamps": [[0.0, 30.0], [25.0, 90.0], [80.0, 120.0]],
                            "sentences": ["A person enters.", " They talk.", "They leave. "]} for i in range(videos)}
    return _write_json(folder / name, data)


def vatex_published(folder: Path) -> Path:
    """``vatex_validation_v1.0.json``: 3,000 videos, 10 English and 10 Chinese captions each."""
    data = [{"videoID": f"yt{i:08d}_{i % 300:06d}_{i % 300 + 10:06d}", "enCap": [f"caption {j}" for j in range(10)],
             "chCap": [f"中文 {j}" for j in range(10)]} for i in range(3000)]
    return _write_json(folder / "vatex_validation_v1.0.json", data)


def lsmdc_published(folder: Path) -> Path:
    """``LSMDC16_challenge_1000_publictect.csv``: the 1,000 test clips, tab-separated, one sentence each."""
    lines = [f"{1000 + i // 100}_Movie_{i // 100}_00.{i % 100:02d}.01.000-00.{i % 100:02d}.03.000\t00.00.01.000\t"
             f"00.00.03.000\t00.00.01.000\t00.00.03.000\tSOMEONE does thing {i}." for i in range(1000)]
    return _write(folder / "LSMDC16_challenge_1000_publictect.csv", "\n".join(lines) + "\n")
