"""``pig-lightning preprocess``: frame selection, sizes, settings files, resume, bad inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from pig_lightning.commands import preprocess as preprocess_command
from pig_lightning.data.video import preprocess as pp
from pig_lightning.data.video.decoding import VideoDecodeError
from pig_lightning.data.video.preprocess import (
    FAILURES_FILE,
    SETTINGS_FILE,
    PreprocessError,
    PreprocessSettings,
    find_preprocessing,
    output_size,
    preprocess_folder,
    preprocess_video,
    settings_differences,
)
from tests.data.video_factory import write_video as encode_video

SMALL = PreprocessSettings(short_side=32)


def ramp(num_frames: int, width: int, height: int) -> np.ndarray:
    """Frame k is a flat grey of level 4k + 8, so a decoded level tells which source frame it was."""
    levels = (np.arange(num_frames) * 4 + 8).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def write_video(path: Path, num_frames: int, fps: int, width: int = 64, height: int = 48, noise: bool = False) -> Path:
    fmt = {".mkv": "matroska", ".avi": "avi"}.get(path.suffix, "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = ramp(num_frames, width, height)
    if noise:  # incompressible: every frame takes its share of the file
        frames = np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8)
    return encode_video(path, frames, fps, container_format=fmt)


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    return path


def write_bad(folder: Path, good_mp4: Path) -> dict[str, Path]:
    """Four broken inputs: empty, garbage, cut in half (index at the end lost), audio only."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.avi").write_bytes(os.urandom(3000))
    data = good_mp4.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    write_audio_only(folder / "audio.mp4")
    return {p.stem: p for p in folder.iterdir()}


def probe(path: Path) -> tuple[float, int, int, list[int]]:
    """(average rate, width, height, source frame index of every frame) of an output file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        levels = [round(float(f.to_ndarray(format="rgb24").mean() - 8) / 4) for f in c.decode(s)]
        return float(s.average_rate), s.width, s.height, levels


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".")]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    write_video(root / "landscape.mp4", 60, 30)  # 2 s at 30 fps, 64x48
    write_video(root / "sub" / "portrait.mp4", 60, 30, width=48, height=64)
    write_video(root / "sub" / "slow.mkv", 10, 10)  # 1 s at 10 fps
    return root


@pytest.fixture(scope="module")
def mixed(sources, tmp_path_factory) -> Path:
    """The good sources plus four broken files (one in a sub folder)."""
    root = tmp_path_factory.mktemp("mixed")
    for src in sources.rglob("*.*"):
        dst = root / src.relative_to(sources)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    write_bad(root / "bad", sources / "landscape.mp4")
    return root


# ----------------------------------------------------------------------------- one video


def test_30fps_to_3fps_keeps_the_frame_at_each_tick(sources, tmp_path):
    info = preprocess_video(sources / "landscape.mp4", tmp_path / "out.mp4", SMALL)
    assert info == {"frames": 6, "width": 42, "height": 32, "duration": pytest.approx(2.0)}
    rate, w, h, kept = probe(tmp_path / "out.mp4")
    assert (rate, w, h) == (3.0, 42, 32)
    assert kept == [0, 10, 20, 30, 40, 50]
    assert temp_files(tmp_path) == []


def test_portrait_short_side_and_even_sizes(sources, tmp_path):
    info = preprocess_video(sources / "sub" / "portrait.mp4", tmp_path / "p.mp4", SMALL)
    assert (info["width"], info["height"]) == (32, 42)
    assert output_size(64, 48, 32) == (42, 32)
    assert output_size(1920, 1080, 224) == (398, 224)
    assert output_size(65, 49, 0) == (66, 50)  # keep size: only made even for yuv420p
    assert output_size(50, 50, 33) == (34, 34)


def test_slower_source_keeps_all_its_frames_once(sources, tmp_path):
    info = preprocess_video(sources / "sub" / "slow.mkv", tmp_path / "s.mp4", PreprocessSettings(fps=30, short_side=32))
    assert info["frames"] == 10
    assert probe(tmp_path / "s.mp4")[3] == list(range(10))
    # At 3 fps from 10 fps: the first frame at or after 0, 1/3 and 2/3 s.
    preprocess_video(sources / "sub" / "slow.mkv", tmp_path / "s3.mp4", SMALL)
    assert probe(tmp_path / "s3.mp4")[3] == [0, 4, 7]


def test_millisecond_timestamps_still_hit_the_ticks(tmp_path):
    src = write_video(tmp_path / "ms.mkv", 30, 30)  # frame 10 is stored at 0.333 s < 1/3 s
    preprocess_video(src, tmp_path / "ms.mp4", SMALL)
    assert probe(tmp_path / "ms.mp4")[3] == [0, 10, 20]


def test_fps_0_and_short_side_0_keep_the_source(sources, tmp_path):
    info = preprocess_video(sources / "landscape.mp4", tmp_path / "k.mp4", PreprocessSettings(fps=0, short_side=0))
    assert info["frames"] == 60 and (info["width"], info["height"]) == (64, 48)
    rate, _, _, kept = probe(tmp_path / "k.mp4")
    assert rate == 30 and kept == list(range(60))


@pytest.mark.parametrize("name", ["empty", "garbage", "truncated", "audio", "missing"])
def test_bad_sources_raise_naming_the_file(sources, tmp_path, name):
    bad = write_bad(tmp_path / "in", sources / "landscape.mp4")
    src = bad.get(name, tmp_path / "in" / "missing.mp4")
    with pytest.raises(VideoDecodeError, match=src.name):
        preprocess_video(src, tmp_path / "out" / "x.mp4", SMALL)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_cut_off_faststart_file_is_not_passed_off_as_short(sources, tmp_path):
    noise = write_video(tmp_path / "noise.mp4", 30, 30, noise=True)
    whole = tmp_path / "whole.mp4"  # our outputs have their index first: a cut leaves it readable
    preprocess_video(noise, whole, PreprocessSettings(fps=0))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="truncated"):
        preprocess_video(cut, tmp_path / "o.mp4", SMALL)


def test_an_interrupted_encode_leaves_nothing(sources, tmp_path, monkeypatch):
    calls = []

    def interrupt(self, t):
        calls.append(t)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return len(calls)

    monkeypatch.setattr(pp._FrameSelector, "pts", interrupt)
    with pytest.raises(KeyboardInterrupt):
        preprocess_video(sources / "landscape.mp4", tmp_path / "x.mp4", SMALL)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- folders


def test_folder_run_resume_and_settings(sources, tmp_path):
    out = tmp_path / "out"
    summary = preprocess_folder(sources, out, SMALL, workers=2)
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert outputs == ["landscape.mp4", "sub/portrait.mp4", "sub/slow.mp4"]
    saved = json.loads((out / SETTINGS_FILE).read_text())
    assert saved == SMALL.to_json()
    assert {k: saved[k] for k in pp.PIXEL_KEYS} == {
        "fps": 3.0, "short_side": 32, "codec": "libx264", "crf": 23, "pixel_format": "yuv420p"}
    assert saved["gop"] == 12 and saved["format_version"] == 1 and saved["pyav_version"] == av.__version__
    assert not (out / FAILURES_FILE).exists() and temp_files(out) == []

    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.mp4")}
    (out / "sub" / ".slow.mp4.abc123.partial").write_bytes(b"left by a killed run")
    again = preprocess_folder(sources, out, SMALL, workers=1)
    assert (again["processed"], again["skipped"], again["failed"]) == (0, 3, 0)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.mp4")} == before
    assert temp_files(out) == []

    with pytest.raises(PreprocessError, match=r"short_side: 32 -> 48") as err:
        preprocess_folder(sources, out, PreprocessSettings(short_side=48), workers=1)
    assert "fps" not in str(err.value)
    # Encoder speed settings do not change what the data module sees: accepted.
    assert preprocess_folder(sources, out, PreprocessSettings(short_side=32, preset="fast"), workers=1)["skipped"] == 3

    redo = preprocess_folder(sources, out, PreprocessSettings(short_side=48), workers=1, overwrite=True)
    assert (redo["processed"], redo["skipped"]) == (3, 0)
    assert probe(out / "landscape.mp4")[1:3] == (64, 48)
    assert json.loads((out / SETTINGS_FILE).read_text())["short_side"] == 48


def test_bad_files_are_counted_and_listed_and_the_rest_written(mixed, tmp_path):
    out = tmp_path / "out"
    summary = preprocess_folder(mixed, out, SMALL, workers=2)
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (3, 0, 4)
    listed = json.loads((out / FAILURES_FILE).read_text())["failures"]
    assert sorted(Path(f["file"]).name for f in listed) == ["audio.mp4", "empty.mp4", "garbage.avi", "truncated.mp4"]
    assert all(f["reason"] for f in listed)
    assert {p.name for p in out.rglob("*.mp4")} == {"landscape.mp4", "portrait.mp4", "slow.mp4"}
    assert temp_files(out) == []
    again = preprocess_folder(mixed, out, SMALL, workers=1)  # failures are retried, the rest skipped
    assert (again["processed"], again["skipped"], again["failed"]) == (0, 3, 4)


def test_two_inputs_for_one_output_are_refused_before_any_work(sources, tmp_path):
    inp = tmp_path / "in"
    write_video(inp / "a.mp4", 3, 30)
    write_video(inp / "a.avi", 3, 30)
    with pytest.raises(PreprocessError, match=r"a\.mp4 <- a\.avi, a\.mp4"):
        preprocess_folder(inp, tmp_path / "out", SMALL, workers=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(PreprocessError, match="inside"):
        preprocess_folder(inp, inp / "out", SMALL, workers=1)


def test_main_exit_codes(mixed, sources, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        preprocess_command.main([str(mixed), str(tmp_path / "o1"), "--short_side", "32", "--workers", "1"])
    assert exc.value.code == 1
    assert '"failed": 4' in capsys.readouterr().out
    preprocess_command.main([str(sources / "sub"), str(tmp_path / "o2"), "--fps", "2", "--short_side", "32", "--workers", "0"])
    assert '"processed": 2' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        preprocess_command.main([str(sources / "sub"), str(tmp_path / "o2"), "--fps", "3", "--workers", "0"])
    assert exc.value.code == 2 and "fps: 2.0 -> 3.0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- settings look-up


def test_find_preprocessing_walks_up_to_root_only(tmp_path):
    root = tmp_path / "data" / "videos"
    video = root / "a" / "b" / "v.mp4"
    video.parent.mkdir(parents=True)
    (tmp_path / "data" / SETTINGS_FILE).write_text(json.dumps({"fps": 1.0}))  # above root: ignored
    assert find_preprocessing(video, root) is None
    (root / SETTINGS_FILE).write_text(json.dumps({"fps": 3.0}))
    assert find_preprocessing(video, root) == {"fps": 3.0}
    (root / "a" / SETTINGS_FILE).write_text(json.dumps({"fps": 2.0}))  # the nearest wins
    assert find_preprocessing(video, root) == {"fps": 2.0}
    assert find_preprocessing(tmp_path / "data" / "x.mp4", root)["fps"] == 1.0  # outside root: own folder


def test_settings_differences():
    a = PreprocessSettings().to_json()
    assert settings_differences(None, None) == []
    assert settings_differences(a, None) == settings_differences(None, a) == ["not preprocessed"]
    assert settings_differences(a, PreprocessSettings(preset="slow", gop=50).to_json()) == []
    assert settings_differences(a, PreprocessSettings(fps=2, crf=30).to_json()) == ["fps", "crf"]
    assert settings_differences(PreprocessSettings(fps=0).to_json(), {**a, "fps": None}) == []
    with pytest.raises(ValueError):
        PreprocessSettings(short_side=-1)
