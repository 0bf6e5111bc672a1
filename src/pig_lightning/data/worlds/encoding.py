"""Writing rendered frames as mp4 files that decode to the same pixels on every machine.

The synthetic sets (the demo's, the quality benchmark's, the tests') are real H.264 mp4 files.
A *lossy* encode is not reproducible: on a 2-core AMD EPYC with AVX-512, libx264 (core 165,
one thread, crf 18) wrote a different bit stream each time it was given the same frames in one
process, and some of those decoded to different frames. What the model sees then changes from
run to run, on that kind of machine only. So the sets are encoded **losslessly**:

1. the RGB frames are converted to YUV 4:2:0 (BT.601, limited range) here, in integer numpy
   arithmetic that gives the same bytes on every machine (FFmpeg's scaler may take other SIMD
   paths on other processors);
2. those planes are encoded by libx264 at ``qp 0``, H.264's lossless mode (transform bypass):
   whatever the encoder decides, the decoder returns exactly the planes it was given.

Reproducible, everywhere: the decoded YUV planes (and so the RGB frames a reader makes of them on
one machine), the captions and the splits. Not promised: the container bytes (the encoder's
choices may differ between machines or runs; they no longer change what is decoded). The price is
size: about 3x a crf-18 file (147 kB for a 40-frame 64-px scene clip). Lossless H.264 uses the
High 4:4:4 Predictive profile, which PyAV/FFmpeg decode but web browsers do not play. The preset
is ``ultrafast``: its CAVLC entropy coding decodes 2.3x faster than ``veryfast``'s CABAC (8.8
against 20.3 ms for that clip; decoding is what a training epoch on these sets waits for) and
encodes ~12 % faster, for files 11-13 % larger; the decoded planes are the same (lossless either way),
so sets written with the earlier preset stay valid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# libx264 in its lossless mode; one thread so that even the container bytes are stable where the
# encoder itself is (they are not relied on).
LOSSLESS_H264 = {"qp": "0", "preset": "ultrafast", "threads": "1"}


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited-range Y, U, V of ``int32 [..., 3]`` RGB (the classic 8-bit integer form)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128
    return y, u, v


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` RGB -> ``uint8 [T, H * 3 // 2, W]``: each frame's Y plane, then its
    U and V planes (half size each way, from the 2x2 block means of RGB), stacked the way
    ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes them. H and W must be even."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"frame height and width must be even for 4:2:0, got {h}x{w}")
    rgb = frames.astype(np.int32)
    y, _, _ = _rgb_to_yuv(rgb)
    blocks = rgb.reshape(t, h // 2, 2, w // 2, 2, 3).sum(axis=(2, 4))
    _, u, v = _rgb_to_yuv((blocks + 2) >> 2)  # rounded 2x2 means
    planes = [p.reshape(t, -1) for p in (y, u, v)]
    return np.clip(np.concatenate(planes, axis=1), 0, 255).astype(np.uint8).reshape(t, h * 3 // 2, w)


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode ``uint8 [T, H, W, 3]`` RGB frames losslessly as H.264 (yuv420p) in an mp4 container;
    decoding returns exactly :func:`rgb_to_yuv420p` of them (see the module docstring)."""
    planes = rgb_to_yuv420p(frames)
    import av  # here, not at import: the tokenizer writer beside it must not need PyAV (benchmarks/gpu_check.py)

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = dict(LOSSLESS_H264)
        for plane in planes:
            for packet in stream.encode(av.VideoFrame.from_ndarray(plane, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_yuv420p(path: str | Path) -> np.ndarray:
    """Every frame of a yuv420p video as ``uint8 [T, H * 3 // 2, W]`` planes, no colour conversion:
    what a lossless file must give back exactly."""
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]
    return np.stack(frames)
