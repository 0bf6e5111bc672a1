"""Decoding paths (through / seek), clip start-end, resize modes, frame folders, load_frames."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pig_lightning.data import load_frames
from pig_lightning.data.video.decoding import FrameConverter, PyAVVideoReader, VideoDecodeError
from pig_lightning.data.video.frame_folders import FrameFolderReader
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import segment_indices, uniform_indices
from tests.data.video_factory import frame_numbers, indexed_frames, write_frame_folder, write_video

CONTAINERS = {"mp4": ("libx264", "mp4"), "avi": ("mpeg4", "avi"), "webm": ("libvpx-vp9", "webm")}


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> dict[str, Path]:
    """240 frames at 20 fps (12 s), a keyframe every 25 frames, in three containers."""
    root = tmp_path_factory.mktemp("clips")
    frames = indexed_frames(240, 32, 32)
    return {name: write_video(root / f"indexed.{name}", frames, fps=20, gop=25, codec=codec, container_format=fmt)
            for name, (codec, fmt) in CONTAINERS.items()}


SAMPLERS = {
    "uniform": lambda n: uniform_indices(n, 7),
    "repeats": lambda n: np.array([0, 3, 3, 50, 51, 200, n - 1]),
}


@pytest.mark.parametrize("container", list(CONTAINERS))
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_seeking_and_decoding_through_return_the_same_frames(long_videos, container, sampler):
    path = long_videos[container]
    through, idx_t = PyAVVideoReader(16, seek_threshold=None).read(path, SAMPLERS[sampler])
    seeking, idx_s = PyAVVideoReader(16, seek_threshold=0).read(path, SAMPLERS[sampler])
    indexed, idx_i = PyAVVideoReader(16).read(path, SAMPLERS[sampler])  # seeks past keyframes it knows
    assert idx_t.tolist() == idx_s.tolist() == idx_i.tolist()
    assert frame_numbers(through) == idx_t.tolist()
    np.testing.assert_array_equal(through, seeking)
    np.testing.assert_array_equal(through, indexed)


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_keyframe_positions_come_from_the_container_index(long_videos, container):
    import av

    from pig_lightning.data.video.decoding import _keyframe_before, _keyframe_times

    with av.open(str(long_videos[container])) as c:
        stream = c.streams.video[0]
        keys = _keyframe_times(stream)
        shown = np.array([f.time for f in c.decode(stream) if f.key_frame])
    if container == "webm":  # libvpx's muxer wrote a single cue: no usable index, use the threshold rule
        assert keys is None
        return
    np.testing.assert_allclose(keys, shown, atol=1e-6)
    assert _keyframe_before(keys, shown[2] + 0.01) == pytest.approx(shown[2])
    assert _keyframe_before(keys, -1.0) == pytest.approx(shown[0])


@pytest.mark.parametrize("seek_threshold", [None, 0])
@pytest.mark.parametrize(("start", "end", "first", "count"), [
    (3.0, 6.0, 60, 60),      # a clip inside the video
    (10.0, None, 200, 40),   # to the end
    (None, 2.0, 0, 40),      # from the start
    (10.0, 30.0, 200, 40),   # an end past the video is clamped
    (5.0, 5.01, 100, 1),     # shorter than a frame: the nearest frame
])
def test_clip_start_and_end_select_the_right_frames(long_videos, seek_threshold, start, end, first, count):
    reader = PyAVVideoReader(16, seek_threshold=seek_threshold)
    frames, idx = reader.read(long_videos["mp4"], lambda n: uniform_indices(n, 4), start=start, end=end)
    assert idx.tolist() == uniform_indices(count, 4).tolist()
    assert frame_numbers(frames) == (first + idx).tolist()


def test_a_clip_starting_after_the_video_is_an_error_naming_the_file(long_videos):
    with pytest.raises(VideoDecodeError, match="indexed.mp4.*clip start 20.000 s is at or after the video's end"):
        PyAVVideoReader(16).read(long_videos["mp4"], lambda n: uniform_indices(n, 4), start=20.0)


def _bands(width: int = 64, height: int = 32) -> np.ndarray:
    """Red | green | blue vertical bands of widths 1/4, 1/2, 1/4."""
    a = np.zeros((1, height, width, 3), dtype=np.uint8)
    a[:, :, : width // 4, 0] = 255
    a[:, :, width // 4: 3 * width // 4, 1] = 255
    a[:, :, 3 * width // 4:, 2] = 255
    return a


def test_resize_modes_squash_and_centre_crop(tmp_path):
    path = write_video(tmp_path / "bands.mp4", np.repeat(_bands(), 3, axis=0), fps=3)
    squash, _ = PyAVVideoReader(16, resize="squash").read(path, lambda n: [0])
    crop, _ = PyAVVideoReader(16, resize="crop").read(path, lambda n: [0])
    assert squash.shape == crop.shape == (1, 16, 16, 3)
    # squash keeps all three bands; the centre crop of a 2:1 frame is the green middle half only
    assert squash[0, :, 0].argmax(-1).tolist() == [0] * 16 and squash[0, :, -1].argmax(-1).tolist() == [2] * 16
    assert (crop[0, 4:-4, 1:-1].argmax(-1) == 1).all()
    assert FrameConverter(16, "crop").scaled_size(64, 32) == (32, 16)
    assert FrameConverter(16, "crop").scaled_size(30, 45) == (16, 24)
    with pytest.raises(ValueError, match="resize must be one of"):
        FrameConverter(16, "stretch")


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory) -> Path:
    return write_frame_folder(tmp_path_factory.mktemp("frames") / "video0", indexed_frames(40, 32, 32))


def test_frame_folders_sample_like_videos(frame_folder, tmp_path):
    video = write_video(tmp_path / "same.mp4", indexed_frames(40, 32, 32), fps=10)
    from_folder, idx_f = FrameFolderReader(16).read(frame_folder, lambda n: uniform_indices(n, 6))
    from_video, idx_v = PyAVVideoReader(16).read(video, lambda n: uniform_indices(n, 6))
    assert idx_f.tolist() == idx_v.tolist() == uniform_indices(40, 6).tolist()
    assert frame_numbers(from_folder) == idx_f.tolist()
    assert np.abs(from_folder.astype(int) - from_video.astype(int)).max() <= 8  # JPEG vs H.264 noise
    clip, idx = FrameFolderReader(16, fps=10).read(frame_folder, lambda n: uniform_indices(n, 3), start=1.0, end=2.0)
    assert frame_numbers(clip) == (10 + idx).tolist() and idx.tolist() == [0, 4, 9]


def test_frame_folder_errors_name_the_folder(frame_folder, tmp_path):
    with pytest.raises(VideoDecodeError, match="video0.*needs the extraction rate"):
        FrameFolderReader(16).read(frame_folder, lambda n: [0], start=1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="empty.*no frame files"):
        FrameFolderReader(16).read(tmp_path / "empty", lambda n: [0])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoDecodeError, match="000001.jpg"):
        FrameFolderReader(16).read(broken, lambda n: [0])


def test_clip_reader_dispatches_on_the_path(frame_folder, long_videos):
    reader = ClipReader(16)
    assert frame_numbers(reader.read(frame_folder, lambda n: [5])[0]) == [5]
    assert frame_numbers(reader.read(long_videos["mp4"], lambda n: [77])[0]) == [77]


def test_load_frames_public_helper(long_videos, frame_folder):
    out = load_frames(long_videos["mp4"], num_frames=12, size=24)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == (12, 24, 24, 3)
    assert frame_numbers(out.numpy()) == uniform_indices(240, 12).tolist()
    clip = load_frames(long_videos["mp4"], 4, size=16, start=3.0, end=6.0)
    assert frame_numbers(clip.numpy()) == (60 + uniform_indices(60, 4)).tolist()
    a = load_frames(long_videos["mp4"], 6, sampling="jittered", size=16, seed=3)
    b = load_frames(long_videos["mp4"], 6, sampling="jittered", size=16, seed=3)
    assert torch.equal(a, b)
    seg = frame_numbers(load_frames(long_videos["mp4"], 6, sampling="segment", size=16, seed=0).numpy())
    assert [s // 40 for s in seg] == list(range(6))  # one frame from each sixth
    assert load_frames(frame_folder, 3, size=8, resize="crop").shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="sampling must be one of"):
        load_frames(long_videos["mp4"], 4, sampling="random")


@pytest.mark.parametrize(("n", "t"), [(100, 12), (12, 12), (5, 12), (1, 4), (37, 7)])
def test_segment_sampling_takes_one_frame_per_segment(n, t):
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = segment_indices(n, t, rng)
        assert len(idx) == t and idx.min() >= 0 and idx.max() < n and (np.diff(idx) >= 0).all()
        edges = np.linspace(0, n, t + 1)
        for k, i in enumerate(idx):
            assert np.floor(edges[k]) <= i < max(np.floor(edges[k + 1]), np.floor(edges[k]) + 1)
    assert segment_indices(n, t, np.random.default_rng(5)).tolist() == segment_indices(n, t, np.random.default_rng(5)).tolist()


def test_a_cut_off_download_is_refused_not_sampled_short(tmp_path):
    """With the index at the front (faststart), a truncated mp4 opens and decodes without an
    error; only the frame count tells. It must fail, not silently give frames of its first part."""
    import av

    path = tmp_path / "whole.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.codec_context.options = {"threads": "1"}
        rng = np.random.default_rng(0)
        for _ in range(60):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(path)) as c:  # cut exactly where packet 30 starts: a clean end of file
        offset = [p.pos for p in c.demux(video=0) if p.size][30]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:offset])
    assert PyAVVideoReader(16).read(path, lambda n: uniform_indices(n, 4))[1].tolist() == [0, 19, 39, 59]  # k * 59 / 3, truncated
    with pytest.raises(VideoDecodeError, match=r"cut.mp4.*of the 60 frames it declares decode \(truncated\?\)"):
        PyAVVideoReader(16).read(cut, lambda n: uniform_indices(n, 4))


def test_the_frame_counting_fallback_returns_the_same_frames(long_videos):
    """Files without a rate or timestamps are read by counting frames; same frames as by time."""
    import av

    from pig_lightning.data.video.decoding import _clip_of

    path = long_videos["mp4"]
    idx = np.array([0, 3, 3, 50, 51, 200, 239])
    by_time, _ = PyAVVideoReader(16).read(path, lambda n: idx)
    reader = PyAVVideoReader(16)
    with av.open(str(path)) as c:
        counted, count = reader._read_through(c, c.streams.video[0], _clip_of(c.streams.video[0], path, 3.0, 9.0),
                                              idx[idx < 120])
    assert frame_numbers(counted) == (60 + idx[idx < 120]).tolist()
    with av.open(str(path)) as c:
        counted, _ = reader._read_through(c, c.streams.video[0], _clip_of(c.streams.video[0], path, None, None), idx)
    np.testing.assert_array_equal(counted, by_time)


def test_a_reader_used_before_forking_workers_still_works_in_them(long_videos):
    """A reader that converted frames in the main process is then copied into forked workers."""
    from torch.utils.data import DataLoader, Dataset

    reader = ClipReader(24)
    reader.read(long_videos["mp4"], lambda n: [0, 1])  # the parent's scaler now exists

    class Clips(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.from_numpy(reader.read(long_videos["mp4"], lambda n: [i * 10])[0])

    loader = DataLoader(Clips(), batch_size=2, num_workers=2, timeout=60, multiprocessing_context="fork")
    batches = list(loader)
    assert [frame_numbers(b.reshape(-1, 24, 24, 3).numpy()) for b in batches] == [[0, 10], [20, 30]]
