"""The in-memory frame cache: the same frames and batches as decoding every time, within its budget."""

import logging
from fractions import Fraction
import pickle
import shutil

import numpy as np
import pytest
import av
import torch

from pig_lightning.data import AnnotationFiles, SceneVideos, VideoDecodeError
from pig_lightning.data.video.frame_cache import FrameCache
from pig_lightning.data.video.readers import ClipReader
from pig_lightning.data.video.sampling import make_sampler

from tests.data.video_factory import frame_numbers, indexed_frames, write_frame_folder, write_video
from tests.helpers import make_dm


@pytest.fixture()
def counted_video(tmp_path):
    """A 30-frame mp4 whose frames say their number, in a folder the test may change."""
    return write_video(tmp_path / "clip.mp4", indexed_frames(30), fps=10)


def samplers(seed):
    rng = np.random.default_rng(seed)
    return [make_sampler("uniform", 8), make_sampler("jittered", 8, rng), make_sampler("segment", 8, rng)]


@pytest.mark.parametrize("clip", [(None, None), (0.5, 2.2)])
def test_cached_reads_equal_direct_reads_and_do_not_touch_the_file(counted_video, clip):
    direct, cached = ClipReader(32), FrameCache(ClipReader(32), max_mib=16)
    expected = [direct.read(counted_video, s, *clip) for s in samplers(0)]
    first = [cached.read(counted_video, s, *clip) for s in samplers(0)]
    counted_video.unlink()  # later reads come from memory
    again = [cached.read(counted_video, s, *clip) for s in samplers(0)]
    for (frames, indices), *others in zip(expected, first, again):
        for got_frames, got_indices in others:
            np.testing.assert_array_equal(got_indices, indices)
            np.testing.assert_array_equal(got_frames, frames)
    assert cached.cached_clips == 1
    offset = 0 if clip[0] is None else 5  # the clip starts at frame 5 (0.5 s at 10 fps)
    assert frame_numbers(again[0][0]) == [offset + i for i in expected[0][1].tolist()]
    with pytest.raises(VideoDecodeError, match="file not found"):
        ClipReader(32).read(counted_video, samplers(0)[0])


def write_gappy_video(path, pts):
    """An mp4 at 10 fps whose frames are shown at ``pts`` tenths of a second (gaps: variable rate)."""
    frames = indexed_frames(len(pts))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"qp": "0", "preset": "ultrafast", "threads": "1"}
        for k, array in zip(pts, frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_files_with_irregular_timing_are_read_directly(tmp_path):
    """With gaps the reader picks frames by time, and which frame depends on the sample: not cached."""
    gappy = write_gappy_video(tmp_path / "gappy.mp4", [0, 1, 2, 3, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 20, 21])
    direct, cached = ClipReader(32), FrameCache(ClipReader(32), max_mib=16)
    for seed in range(5):
        for (frames, indices), (got, got_indices) in zip((direct.read(gappy, s) for s in samplers(seed)),
                                                          (cached.read(gappy, s) for s in samplers(seed))):
            np.testing.assert_array_equal(got_indices, indices)
            np.testing.assert_array_equal(got, frames)
    assert cached.cached_clips == 0


def test_a_clip_with_a_broken_frame_no_sample_touches_reads_as_without_a_cache(tmp_path):
    folder = write_frame_folder(tmp_path / "frames", indexed_frames(30))
    (folder / "000002.jpg").write_bytes(b"not a jpeg")
    uniform = make_sampler("uniform", 4)  # frames 0, 9, 19, 29: never the broken second one
    cached = FrameCache(ClipReader(32), max_mib=16)
    expected, indices = ClipReader(32).read(folder, uniform)
    for _ in range(2):
        frames, got_indices = cached.read(folder, uniform)
        np.testing.assert_array_equal(got_indices, indices)
        np.testing.assert_array_equal(frames, expected)
    assert cached.cached_clips == 0
    with pytest.raises(VideoDecodeError, match="000002.jpg|frames"):
        cached.read(folder, lambda n: np.arange(n))


def test_returned_frames_are_copies(counted_video):
    cached = FrameCache(ClipReader(32), max_mib=16)
    frames, _ = cached.read(counted_video, make_sampler("uniform", 4))
    frames[:] = 0
    again, _ = cached.read(counted_video, make_sampler("uniform", 4))
    assert again.max() > 0


def test_a_full_cache_decodes_at_every_read_and_says_so_once(counted_video, tmp_path, caplog):
    other = shutil.copy(counted_video, tmp_path / "other.mp4")
    one_clip_mib = 30 * 32 * 32 * 3 / 2**20
    cached = FrameCache(ClipReader(32), max_mib=1.5 * one_clip_mib)
    with caplog.at_level(logging.INFO, logger="pig_lightning.data.video.frame_cache"):
        for _ in range(2):
            for path in (counted_video, other):
                frames, indices = cached.read(path, make_sampler("uniform", 8))
                assert frame_numbers(frames) == indices.tolist()
    assert cached.cached_clips == 1 and cached.cached_mib == pytest.approx(one_clip_mib)
    full = [r for r in caplog.records if "frame cache full" in r.getMessage()]
    assert len(full) == 1 and "other.mp4" in full[0].getMessage() and "cache_frames_mib" in full[0].getMessage()


def test_a_decode_error_is_the_readers_and_nothing_is_kept(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    cached = FrameCache(ClipReader(32), max_mib=16)
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        cached.read(broken, make_sampler("uniform", 4))
    assert cached.cached_clips == 0


def test_a_worker_receives_an_empty_cache(counted_video):
    cached = FrameCache(ClipReader(32), max_mib=16)
    cached.read(counted_video, make_sampler("uniform", 4))
    copy = pickle.loads(pickle.dumps(cached))
    assert cached.cached_clips == 1 and copy.cached_clips == 0 and copy.max_bytes == cached.max_bytes


@pytest.mark.parametrize("value", [-1, float("nan")])
def test_a_bad_budget_names_the_key(synthetic_root, value):
    with pytest.raises(ValueError, match=r"data.source.cache_frames_mib must be >= 0"):
        AnnotationFiles(video_root=synthetic_root, cache_frames_mib=value)
    with pytest.raises(ValueError, match="data.source.cache_frames_mib"):
        SceneVideos(root=str(synthetic_root) + "_never_written", cache_frames_mib=value)


@pytest.mark.slow
def test_training_and_evaluation_batches_are_unchanged_by_the_cache(synthetic_root):
    """Two epochs through worker processes (persistent: the cache lives across epochs)."""
    plain = make_dm(synthetic_root, num_workers=0)
    cached = make_dm(synthetic_root, num_workers=2, cache_frames_mib=64)
    for dm in (plain, cached):
        dm.setup("fit")
    cached_loader = cached.train_dataloader()
    for epoch in (0, 1):
        plain_loader = plain.train_dataloader()
        plain_loader.sampler.set_epoch(epoch)
        cached_loader.sampler.set_epoch(epoch)
        for a, b in zip(plain_loader, cached_loader, strict=True):
            assert torch.equal(a["video_index"], b["video_index"]) and torch.equal(a["input_ids"], b["input_ids"])
            assert torch.equal(a["frames"], b["frames"])
    for a, b in zip(plain.val_dataloader(), cached.val_dataloader(), strict=True):
        assert torch.equal(a["frames"], b["frames"])
