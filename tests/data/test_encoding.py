"""The synthetic sets decode to the same pixels every time: lossless H.264 of planes made in numpy.

These tests compare *decoded* frames, never file bytes (a lossy libx264 encode of the same frames
gave a different file, and sometimes different frames, on every run on an AVX-512 machine)."""

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from pig_lightning.data.video.decoding import PyAVVideoReader
from pig_lightning.data.worlds.encoding import decode_yuv420p, rgb_to_yuv420p, write_mp4
from pig_lightning.data.worlds.scenes import SceneVideosConfig, render_scene_video, write_jpeg
from pig_lightning.data.worlds.synthetic import SyntheticConfig, build_dataset_folder, make_synthetic

EVENTS = [("red", "circle", "left"), ("blue", "square", "up"), ("yellow", "cross", "down")]


def scene_frames(seed: int = 0) -> np.ndarray:
    cfg = SceneVideosConfig(frames_per_event=6, frame_size=64)
    return render_scene_video(EVENTS, ("green", "square", "small", "corner"), cfg, np.random.default_rng(seed))


def _encode_and_decode(job: tuple[str, int]) -> np.ndarray:
    path, seed = job
    write_mp4(Path(path), scene_frames(seed), fps=8)
    return decode_yuv420p(path)


def test_encodes_decode_to_the_rendered_planes_in_one_process_and_in_workers(tmp_path):
    frames = scene_frames()
    expected = rgb_to_yuv420p(frames)
    in_process = [_encode_and_decode((str(tmp_path / f"p{i}.mp4"), 0)) for i in range(3)]
    with ProcessPoolExecutor(2) as pool:
        in_workers = list(pool.map(_encode_and_decode, [(str(tmp_path / f"w{i}.mp4"), 0) for i in range(4)]))
    for decoded in in_process + in_workers:
        assert decoded.shape == expected.shape and decoded.dtype == np.uint8
        assert np.array_equal(decoded, expected)  # lossless: exactly the planes written
    # and the RGB frames the training reader makes of them are the same for every file
    reader = PyAVVideoReader(size=32)
    read = [reader.read(tmp_path / f"{n}.mp4", lambda n: np.arange(n))[0] for n in ("p0", "p2", "w0", "w3")]
    assert all(np.array_equal(read[0], r) for r in read[1:])
    # a lossy file of the same frames does not decode to them (the check above can fail)
    with av.open(str(tmp_path / "lossy.mp4"), mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.codec_context.options = {"crf": "18", "threads": "1"}
        for plane in expected:
            for packet in s.encode(av.VideoFrame.from_ndarray(plane, format="yuv420p")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    assert not np.array_equal(decode_yuv420p(tmp_path / "lossy.mp4"), expected)


def test_colour_conversion_is_bt601_limited_range():
    colours = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (6, 4, 4, 3)).copy()
    planes = rgb_to_yuv420p(frames)
    y, u, v = planes[:, 0, 0], planes[:, 4, 0], planes[:, 5, 0]  # 4x4 frame: Y rows 0-3, U row 4, V row 5
    assert y.tolist() == [16, 235, 82, 144, 41, 126]
    assert u.tolist() == [128, 128, 90, 54, 240, 128]
    assert v.tolist() == [128, 128, 240, 34, 110, 128]
    # luma agrees with FFmpeg's own converter to within rounding
    frames = scene_frames()[:4]
    swscale = np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray()
                        for f in frames])
    assert np.abs(swscale[:, :64].astype(int) - rgb_to_yuv420p(frames)[:, :64]).max() <= 1


def test_a_flat_colour_decodes_back_to_itself_in_rgb(tmp_path):
    frames = np.full((3, 32, 48, 3), (128, 128, 128), np.uint8)
    write_mp4(tmp_path / "grey.mp4", frames, fps=8)
    with av.open(str(tmp_path / "grey.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height) == (48, 32)
        rgb = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert rgb.shape == (3, 32, 48, 3) and np.abs(rgb.astype(int) - 128).max() <= 1


@pytest.mark.parametrize("frames, message", [
    (np.zeros((2, 31, 32, 3), np.uint8), "even"),
    (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((32, 32, 3), np.uint8), r"\[T, H, W, 3\]"),
])
def test_frames_that_cannot_be_written_are_refused(tmp_path, frames, message):
    with pytest.raises(ValueError, match=message):
        write_mp4(tmp_path / "bad.mp4", frames, fps=8)
    assert not (tmp_path / "bad.mp4").exists()


def test_jpeg_images_decode_to_the_same_pixels_every_time(tmp_path):
    image = scene_frames()[3]
    for i in range(3):
        write_jpeg(tmp_path / f"{i}.jpg", image)
    decoded = []
    for i in range(3):
        with av.open(str(tmp_path / f"{i}.jpg")) as c:
            decoded.append(next(c.decode(video=0)).to_ndarray(format="rgb24"))
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:])
    assert np.abs(decoded[0].astype(int) - image).mean() < 8  # a JPEG of the image, not of something else


def test_a_set_in_the_older_format_is_generated_again_in_place(tmp_path):
    cfg = SyntheticConfig(num_train=2, num_val=1, num_test=1, frames_per_event=2, frame_size=32)
    root = make_synthetic(tmp_path / "set", cfg, num_workers=1)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "format_version": manifest["format_version"] - 1}))
    (root / "videos" / "stale.mp4").write_bytes(b"from the old format")
    again = make_synthetic(tmp_path / "set", cfg, num_workers=1)
    assert json.loads((again / "manifest.json").read_text()) == manifest
    assert not (again / "videos" / "stale.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # nothing left beside it
    # other parameters are still refused, naming them
    (root / "manifest.json").write_text(json.dumps({**manifest, "config": {**manifest["config"], "seed": 9}}))
    with pytest.raises(FileExistsError, match=r"'seed': \(9, 0\)"):
        build_dataset_folder(root, manifest, lambda tmp: None)
