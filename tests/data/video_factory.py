"""Test videos whose frames say which frame they are (so a test can check what was decoded)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def indexed_frames(num_frames: int, width: int = 32, height: int = 32) -> np.ndarray:
    """Frame k is flat: red = 16 * (k % 16) + 8, green = 16 * (k // 16) + 8 (k < 256)."""
    k = np.arange(num_frames)
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[..., 0] = (16 * (k % 16) + 8)[:, None, None]
    frames[..., 1] = (16 * (k // 16) + 8)[:, None, None]
    frames[..., 2] = 128
    return frames


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Inverse of :func:`indexed_frames` (robust to compression noise)."""
    mean = frames.reshape(len(frames), -1, 3).mean(1)
    low = np.clip(np.round((mean[:, 0] - 8) / 16), 0, 15)
    high = np.clip(np.round((mean[:, 1] - 8) / 16), 0, 15)
    return (high * 16 + low).astype(int).tolist()


def write_video(path: Path, frames: np.ndarray, fps: int, gop: int = 250, codec: str = "libx264",
                container_format: str | None = None) -> Path:
    """Encode frames with a chosen keyframe interval (x264's default is 250)."""
    with av.open(str(path), "w", format=container_format) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = gop
        if codec == "libx264":
            s.codec_context.options = {"crf": "12", "preset": "veryfast", "threads": "1"}
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_frame_folder(folder: Path, frames: np.ndarray) -> Path:
    """One JPEG per frame: ``folder/000001.jpg, ...`` (the usual extraction layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(frames, start=1):
        with av.open(str(folder / f"{i:06d}.jpg"), "w", format="image2") as c:
            s = c.add_stream("mjpeg", rate=1)
            s.width, s.height = a.shape[1], a.shape[0]
            s.pix_fmt = "yuvj420p"
            s.codec_context.options = {"q:v": "2"}
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
            for p in s.encode():
                c.mux(p)
    return folder


def write_bad_videos(folder: Path, good_mp4: Path) -> dict[str, Path]:
    """The broken files users meet: missing, zero-byte, garbage, truncated and audio-only."""
    folder.mkdir(parents=True, exist_ok=True)
    zero = folder / "zero.mp4"
    zero.write_bytes(b"")
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(good_mp4.read_bytes()[:600])
    audio = folder / "audio.mp4"
    with av.open(str(audio), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return {"missing": folder / "nope.mp4", "zero": zero, "garbage": garbage, "truncated": truncated,
            "audio-only": audio}
