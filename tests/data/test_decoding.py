from pathlib import Path

import av
import numpy as np
import pytest

from pig_lightning.data.video.decoding import PyAVVideoReader, VideoDecodeError
from pig_lightning.data.video.sampling import uniform_indices
from pig_lightning.data.worlds.encoding import write_mp4
from tests.data.video_factory import write_bad_videos


def grey_ramp(num_frames: int, size: int = 32) -> np.ndarray:
    """Frame k is a flat grey of level 8 * k: the decoded level tells which frame came back."""
    levels = (np.arange(num_frames) * 8 + 16).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, size, size, 3)).copy()


def frame_levels(frames: np.ndarray) -> np.ndarray:
    return np.round((frames.reshape(len(frames), -1).mean(1) - 16) / 8).astype(int)


@pytest.fixture()
def ramp_mp4(tmp_path) -> Path:
    path = tmp_path / "ramp.mp4"
    write_mp4(path, grey_ramp(30), fps=10)
    return path


def test_decoded_frames_are_the_sampled_ones(ramp_mp4):
    reader = PyAVVideoReader(size=24)
    frames, idx = reader.read(ramp_mp4, lambda n: uniform_indices(n, 7))
    assert frames.shape == (7, 24, 24, 3) and frames.dtype == np.uint8
    assert idx.tolist() == uniform_indices(30, 7).tolist()
    assert frame_levels(frames).tolist() == idx.tolist()


def test_repeated_indices_and_reuse_of_the_reader(ramp_mp4):
    reader = PyAVVideoReader(size=16)
    for _ in range(3):  # the reformatter is reused from call to call
        frames, idx = reader.read(ramp_mp4, lambda n: np.array([0, 0, 5, 5, 29]))
        assert frame_levels(frames).tolist() == [0, 0, 5, 5, 29]


def test_synthetic_frames_have_value_range_and_content(synthetic_root):
    reader = PyAVVideoReader(size=32)
    frames, _ = reader.read(Path(synthetic_root) / "videos" / "synth00000.mp4", lambda n: uniform_indices(n, 8))
    assert frames.shape == (8, 32, 32, 3)
    assert frames.min() < 100 and frames.max() > 150  # dark background, bright object


def test_webm_without_frame_count_falls_back_to_duration(tmp_path):
    path = tmp_path / "ramp.webm"
    frames = grey_ramp(20)
    with av.open(str(path), "w", format="webm") as c:
        s = c.add_stream("libvpx-vp9", rate=10)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 0  # the case the fallback exists for
    out, idx = PyAVVideoReader(size=32).read(path, lambda n: uniform_indices(n, 5))
    assert out.shape == (5, 32, 32, 3)
    assert abs(int(idx[-1]) - 19) <= 1
    assert np.abs(frame_levels(out) - idx).max() <= 1


@pytest.mark.parametrize("kind", ["missing", "zero", "garbage", "truncated", "audio-only"])
def test_bad_videos_raise_an_error_naming_the_file(tmp_path, ramp_mp4, kind):
    path = write_bad_videos(tmp_path, ramp_mp4)[kind]
    with pytest.raises(VideoDecodeError) as info:
        PyAVVideoReader(size=16).read(path, lambda n: uniform_indices(n, 4))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_an_image_is_a_one_frame_video(tmp_path, suffix):
    """Image-caption pairs (generator pre-training) go through the same reader."""
    path = tmp_path / f"image.{suffix}"
    frame = av.VideoFrame.from_ndarray(np.full((24, 40, 3), 200, dtype=np.uint8), format="rgb24")
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png" if suffix == "png" else "mjpeg", rate=1)
        s.width, s.height = 40, 24
        s.pix_fmt = "rgb24" if suffix == "png" else "yuvj420p"
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames, idx = PyAVVideoReader(size=16).read(path, lambda n: uniform_indices(n, 1))
    assert frames.shape == (1, 16, 16, 3) and idx.tolist() == [0]
    assert abs(int(frames.mean()) - 200) <= 3


def test_a_failing_sampler_is_not_reported_as_a_bad_video(ramp_mp4):
    from pig_lightning.data.video.decoding import SamplingError

    def broken(n):
        raise ValueError("low >= high")

    with pytest.raises(SamplingError, match="frame sampling failed .*ramp.mp4 \\(30 frames\\)"):
        PyAVVideoReader(size=16).read(ramp_mp4, broken)
