"""``pig-lightning preprocess``: re-encode videos once to a low frame rate and short side.

Why: training decodes every sampled clip again on every epoch, and decoding, not the model,
is what limits a data loader on CPU. A 30 fps 1080p source costs hundreds of milliseconds per
clip to decode; the same clip at 3 fps and a 224 px short side decodes in a few milliseconds
and the model (8-12 frames per clip) sees no difference. So the common video-retrieval recipe
re-encodes each video once: keep about ``fps`` frames per second (chosen by timestamp, never
duplicated, never more than the source has), resize so the short side is ``short_side``, and
write H.264 (yuv420p) with a short keyframe interval, audio dropped.

Each output file is written to a temporary name next to its destination and renamed into place,
so a file at an output path is always complete: an interrupted run is resumed by running it
again (existing outputs are skipped). The settings used are written to ``preprocessing.json``
in the output folder; a later run with other pixel-changing settings is refused unless
``overwrite`` is given, and :func:`find_preprocessing` / :func:`settings_differences` let the
data module warn when train and test videos were prepared differently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import Interpolation, VideoReformatter
from tqdm import tqdm

from pig_lightning.atomic import TEMP_MARKER, atomic_path, write_json_atomic
from pig_lightning.data.video.decoding import VideoDecodeError, check_complete

log = logging.getLogger(__name__)

SETTINGS_FILE = "preprocessing.json"
FAILURES_FILE = "preprocessing_failures.json"
FORMAT_VERSION = 1
NOT_PREPROCESSED = "not preprocessed"
# The settings that change the decoded pixels; only these are compared between two folders.
PIXEL_KEYS = ("fps", "short_side", "codec", "crf", "pixel_format")
VIDEO_EXTENSIONS = (
    ".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".wmv",
)  # fmt: skip
INTERPOLATION = "BICUBIC"  # fixed in code (recorded in the settings file); ffmpeg's scale default
# Container timestamps are rounded (mkv/webm store milliseconds: frame 10 of a 30 fps clip sits
# at 0.333 s, just before the 1/3 s tick). A frame this close before a tick counts as on it.
TICK_TOLERANCE = Fraction(1, 1000)


@dataclasses.dataclass(frozen=True)
class PreprocessSettings:
    """How videos are re-encoded. ``fps`` 0/None keeps the source rate, ``short_side`` 0 the size."""

    fps: float | None = 3.0
    short_side: int = 224
    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    pixel_format: str = "yuv420p"
    # Keyframe interval in output frames. 12 frames = one keyframe every 4 s at 3 fps: a reader
    # that seeks to a clip's start decodes at most 11 extra 224 px frames (a few ms), while
    # keyframes, the most expensive frames, stay a small part of the file. (At a kept 25-30 fps
    # source rate it means ~0.5 s, larger files but still cheap seeks; raise it with --gop.)
    gop: int = 12

    def __post_init__(self) -> None:
        fps = None if not self.fps else float(self.fps)
        if fps is not None and (fps < 0 or not math.isfinite(fps)):
            raise ValueError(f"fps must be a positive number, or 0/None to keep the source rate, got {self.fps}")
        object.__setattr__(self, "fps", fps)
        if self.short_side < 0:
            raise ValueError(f"short_side must be >= 0 (0 keeps the size), got {self.short_side}")
        if self.short_side % 2:
            raise ValueError(f"short_side must be even (H.264 in yuv420p needs even sizes): {self.short_side} would be "
                             f"written as {self.short_side + 1}; use {self.short_side - 1} or {self.short_side + 1}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")
        if self.gop < 1:
            raise ValueError(f"gop must be >= 1, got {self.gop}")

    def to_json(self) -> dict:
        """The settings as a JSON-ready dict, as written to ``preprocessing.json``.

        ``format_version`` and the library versions are informational (not compared).
        """
        return {
            "format_version": FORMAT_VERSION,
            **dataclasses.asdict(self),
            "interpolation": INTERPOLATION.lower(),
            "pyav_version": av.__version__,
            "ffmpeg_version": str(getattr(av, "ffmpeg_version_info", "unknown")),
        }


# ----------------------------------------------------------------------------- settings files


def _normalized(settings: dict, key: str):
    value = settings.get(key)
    if key == "fps" and not value:
        return None  # 0 and None both mean "source rate"
    return value


def settings_differences(a: dict | None, b: dict | None) -> list[str]:
    """Names of the pixel-changing settings that differ between two settings dicts.

    ``[]`` when both are None or they agree on :data:`PIXEL_KEYS`; ``["not preprocessed"]`` when
    exactly one is None.
    """
    if a is None and b is None:
        return []
    if a is None or b is None:
        return [NOT_PREPROCESSED]
    return [k for k in PIXEL_KEYS if _normalized(a, k) != _normalized(b, k)]


@functools.lru_cache(maxsize=256)
def _read_settings_cached(path: str, mtime_ns: int, size: int) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the preprocessing settings {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"the preprocessing settings {path} do not hold a JSON object")  # noqa: TRY004
    return data


def read_settings(path: str | Path) -> dict:
    """Parse a settings file (cached on its path, modification time and size)."""
    stat = os.stat(path)
    return dict(_read_settings_cached(str(path), stat.st_mtime_ns, stat.st_size))


def find_preprocessing(video_path: str | Path, root: str | Path) -> dict | None:
    """The settings a video was preprocessed with, or None.

    Looks for :data:`SETTINGS_FILE` in the video's folder, then each parent up to and including
    ``root``. When the video is not inside ``root``, only its own folder is looked at.
    """
    folder = Path(os.path.abspath(video_path)).parent
    root = Path(os.path.abspath(root))
    chain = [folder, *folder.parents]
    if root in chain:
        chain = chain[: chain.index(root) + 1]
    else:
        chain = [folder]
    for directory in chain:
        candidate = directory / SETTINGS_FILE
        if candidate.is_file():
            return read_settings(candidate)
    return None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# ----------------------------------------------------------------------------- one video


def _even(x: float) -> int:
    """Nearest even integer (halves up), at least 2: yuv420p needs even sizes."""
    return max(2, 2 * math.floor(x / 2 + 0.5))


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side at ``short_side`` (0: kept), aspect kept, both even."""
    if short_side <= 0:
        return _even(width), _even(height)
    scale = short_side / min(width, height)
    return _even(width * scale), _even(height * scale)


def _frame_time(frame: av.VideoFrame, index: int, stream) -> Fraction:
    """Presentation time in seconds (exact), or index / rate for frames without a timestamp."""
    if frame.pts is not None and frame.time_base is not None:
        return frame.pts * Fraction(frame.time_base)
    if frame.pts is not None and stream.time_base is not None:
        return frame.pts * Fraction(stream.time_base)
    rate = stream.average_rate or stream.guessed_rate or 25
    return Fraction(index) / Fraction(rate)


def _decoded_frames(container, stream, path: Path) -> Iterator[tuple[Fraction, av.VideoFrame]]:
    """``(time since the first frame, frame)``; decoding errors become :class:`VideoDecodeError`."""
    start: Fraction | None = None
    try:
        for index, frame in enumerate(container.decode(stream)):
            t = _frame_time(frame, index, stream)
            if start is None:
                start = t
            yield t - start, frame
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise VideoDecodeError(path, f"{type(exc).__name__}: {exc}") from exc


class _FrameSelector:
    """Output timestamps for the frames to keep.

    With a target rate ``r`` the first frame at or after each tick ``k / r`` is kept and stamped
    ``k`` in a ``1 / r`` time base. A frame is kept at most once (it takes the last tick it
    reaches), so a slower source keeps all of its frames at their own times. Without a target
    rate every frame is kept with its own timestamp.
    """

    def __init__(self, rate: Fraction | None, time_base: Fraction):
        self.rate = rate
        self.time_base = time_base  # of the output timestamps
        self.next_tick = 0
        self.last_pts = -1

    def pts(self, t: Fraction) -> int | None:
        """The output timestamp for a frame at ``t`` seconds, or None to drop it."""
        if self.rate is None:
            pts = max(round(t / self.time_base), self.last_pts + 1)  # strictly increasing
        else:
            tick = math.floor((t + TICK_TOLERANCE) * self.rate)
            if tick < self.next_tick:
                return None
            pts = tick * self.rate.denominator  # time base is 1 / rate.numerator
            self.next_tick = tick + 1
        self.last_pts = pts
        return pts


def _rate(value: float) -> Fraction:
    return Fraction(value).limit_denominator(1001)


def _open_output(path: Path, settings: PreprocessSettings, width: int, height: int, rate: Fraction,
                 time_base: Fraction):
    container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
    stream = container.add_stream(settings.codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = settings.pixel_format
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    stream.codec_context.gop_size = settings.gop
    # One encoder thread: outputs are identical from run to run; parallelism comes from processes.
    stream.codec_context.options = {"crf": str(settings.crf), "preset": settings.preset, "threads": "1"}
    return container, stream


def preprocess_video(src: str | Path, dst: str | Path, settings: PreprocessSettings | None = None) -> dict:
    """Re-encode one video; returns ``{frames, width, height, duration}`` of the output.

    Written to a temporary file next to ``dst`` and renamed into place, so ``dst`` only ever
    appears complete. A source without a video stream, undecodable, cut off (fewer frames decode
    than its index lists) or without frames raises :class:`VideoDecodeError` naming it (and
    leaves nothing at ``dst``).
    """
    settings = settings or PreprocessSettings()
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise VideoDecodeError(src, "file not found")
    with atomic_path(dst) as tmp:
        try:
            source = av.open(str(src))
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise VideoDecodeError(src, f"{type(exc).__name__}: {exc}") from exc
        with source:
            if not source.streams.video:
                raise VideoDecodeError(src, "the file has no video stream")
            info = _transcode(source, source.streams.video[0], src, tmp, settings)
    return info


def _transcode(source, in_stream, src: Path, tmp: Path, settings: PreprocessSettings) -> dict:
    in_stream.thread_type = "AUTO"  # frame threads decode large sources faster
    source_rate = in_stream.average_rate or in_stream.guessed_rate
    if settings.fps is None:
        rate = Fraction(source_rate) if source_rate else Fraction(25)
        time_base = Fraction(in_stream.time_base) if in_stream.time_base else 1 / rate
        selector = _FrameSelector(None, time_base)
    else:
        target = _rate(settings.fps)
        rate = min(target, Fraction(source_rate)) if source_rate else target
        time_base = Fraction(1, target.numerator)
        selector = _FrameSelector(target, time_base)
    reformatter = VideoReformatter()
    output = None
    decoded, frames, last_t = 0, 0, Fraction(0)
    try:
        for t, frame in _decoded_frames(source, in_stream, src):
            decoded += 1
            pts = selector.pts(t)
            if pts is None:
                continue
            if output is None:
                width, height = output_size(frame.width, frame.height, settings.short_side)
                output, out_stream = _open_output(tmp, settings, width, height, rate, time_base)
            out = reformatter.reformat(frame, width=width, height=height, format=settings.pixel_format,
                                       interpolation=Interpolation[INTERPOLATION], threads=1)
            out.pts, out.time_base = pts, time_base
            out.pict_type = 0  # let the encoder choose frame types (not the source's I/P/B)
            for packet in out_stream.encode(out):
                output.mux(packet)
            frames, last_t = frames + 1, t
        if output is None:
            raise VideoDecodeError(src, "the video stream holds no decodable frame")
        check_complete(src, decoded, in_stream.frames)
        for packet in out_stream.encode():
            output.mux(packet)
    except BaseException:
        if output is not None:
            with contextlib.suppress(Exception):  # keep the original error; the file is discarded
                output.close()
        raise
    output.close()
    step = 1 / rate if rate else Fraction(0)
    return {"frames": frames, "width": width, "height": height, "duration": float(last_t + step)}


# ----------------------------------------------------------------------------- folders


class PreprocessError(RuntimeError):
    """A folder run was refused before any work (conflicting settings, colliding outputs...)."""


def find_videos(input_dir: Path, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Video files under ``input_dir`` (recursively, following links), relative and sorted."""
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found = []
    for dirpath, dirnames, filenames in os.walk(input_dir, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if Path(name).suffix.lower() in wanted:
                found.append(Path(dirpath, name).relative_to(input_dir))
    return sorted(found)


def plan_outputs(videos: Sequence[Path]) -> dict[Path, Path]:
    """Map each output path (relative, ``.mp4``) to its input; collisions raise before any work."""
    targets: dict[Path, list[Path]] = {}
    for rel in videos:
        targets.setdefault(rel.with_suffix(".mp4"), []).append(rel)
    clashes = {out: ins for out, ins in targets.items() if len(ins) > 1}
    if clashes:
        lines = [f"{out} <- {', '.join(map(str, ins))}" for out, ins in sorted(clashes.items())]
        raise PreprocessError(
            "several input videos would be written to the same output file (rename or remove one):\n  "
            + "\n  ".join(lines)
        )
    return {out: ins[0] for out, ins in targets.items()}


def _check_folders(input_dir: Path, output_dir: Path) -> None:
    if not input_dir.is_dir():
        raise PreprocessError(f"input folder {input_dir} does not exist")
    if output_dir.exists() and not output_dir.is_dir():
        raise PreprocessError(f"the output folder {output_dir} is a file")
    inp, out = input_dir.resolve(), output_dir.resolve()
    if out == inp or inp in out.parents:
        raise PreprocessError(f"the output folder {output_dir} must not be (inside) the input folder {input_dir}")


def _check_settings(output_dir: Path, wanted: dict, overwrite: bool) -> bool:
    """Compare with the settings already in ``output_dir``; True when they differ (overwrite)."""
    path = output_dir / SETTINGS_FILE
    if not path.is_file():
        return False
    try:
        existing = read_settings(path)
    except ValueError:
        if overwrite:
            return True
        raise
    diff = settings_differences(existing, wanted)
    if diff and not overwrite:
        detail = ", ".join(f"{k}: {_normalized(existing, k)!r} -> {_normalized(wanted, k)!r}" for k in diff)
        raise PreprocessError(
            f"{output_dir} holds videos preprocessed with other settings ({detail}). "
            "Use another output folder, or overwrite=True / --overwrite to re-encode every video."
        )
    return bool(diff)


def _remove_stale_temps(output_dir: Path) -> None:
    """Temporary files left by an interrupted run (outputs only ever appear by rename)."""
    for stale in output_dir.rglob(f".*{TEMP_MARKER}*"):
        log.info("removing a temporary file left by an interrupted run: %s", stale)
        _remove(stale)


def _job(src: str, dst: str, settings: PreprocessSettings) -> str | None:
    """Encode one file; returns None, or the reason it failed.

    Errors come back as text, not exceptions: an exception that does not survive pickling
    (an exception object from a worker) could break the whole process pool.
    """
    try:
        preprocess_video(src, dst, settings)
    except VideoDecodeError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - an encoder or disk error: this file fails, the others go on
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_jobs(jobs: list[tuple[Path, Path]], settings: PreprocessSettings, workers: int) -> list[dict]:
    """Run every job; returns the failures as ``{"file", "reason"}`` (a bad file stops nothing)."""
    failures = []
    bar = tqdm(total=len(jobs), unit="video", desc="preprocess", mininterval=1.0)

    def record(src: Path, reason: str | None) -> None:
        if reason is not None:
            log.warning("failed: %s: %s", src, reason)
            failures.append({"file": str(src), "reason": reason})
        bar.update()

    try:
        if workers <= 1:
            for src, dst in jobs:
                record(src, _job(str(src), str(dst), settings))
        else:
            pool = ProcessPoolExecutor(workers)
            futures = {}
            try:
                for src, dst in jobs:
                    futures[pool.submit(_job, str(src), str(dst), settings)] = src
                for future in as_completed(futures):
                    try:
                        reason = future.result()
                    except Exception as exc:  # noqa: BLE001 - the worker died (e.g. BrokenProcessPool)
                        reason = f"{type(exc).__name__}: {exc}"
                    record(futures[future], reason)
            except BaseException:  # Ctrl-C: drop the queued videos instead of encoding them all first
                for future in futures:  # (cancel_futures alone is lost when the pool object dies first)
                    future.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    finally:
        bar.close()
    return sorted(failures, key=lambda f: f["file"])


def preprocess_folder(
    input_dir: str | Path,
    output_dir: str | Path,
    settings: PreprocessSettings | None = None,
    workers: int | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    overwrite: bool = False,
) -> dict:
    """Re-encode every video under ``input_dir`` to ``output_dir/<same relative path>.mp4``.

    Resumable: existing outputs are skipped (unless ``overwrite``). Refused (:class:`PreprocessError`)
    when ``output_dir`` was made with other pixel-changing settings (unless ``overwrite``, which
    re-encodes everything) or when two inputs map to one output. Bad videos are logged, listed in
    ``preprocessing_failures.json`` and counted; the others are still written.

    Returns ``{"processed", "skipped", "failed", "failures", "output_dir", "seconds"}``.
    """
    started = time.perf_counter()
    settings = settings or PreprocessSettings()
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0 (0 and 1: encode in this process), got {workers}")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    _check_folders(input_dir, output_dir)
    plan = plan_outputs(find_videos(input_dir, extensions))
    wanted = settings.to_json()
    had_settings = (output_dir / SETTINGS_FILE).is_file()
    replacing = _check_settings(output_dir, wanted, overwrite)
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(output_dir)
    if not replacing:
        # Written first, so that a resumed run with other settings is refused even after a crash.
        # When replacing other settings it is written last: until then a plain resume is refused.
        write_json_atomic(output_dir / SETTINGS_FILE, wanted, indent=2)

    jobs, skipped = [], 0
    for out_rel, in_rel in sorted(plan.items()):
        dst = output_dir / out_rel
        if dst.exists() and not overwrite:
            skipped += 1
        else:
            jobs.append((input_dir / in_rel, dst))
    if skipped and not had_settings:
        log.warning("%d outputs already exist in %s, which held no %s: they are kept, made with unknown "
                    "settings (use --overwrite to re-encode them)", skipped, output_dir, SETTINGS_FILE)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    workers = min(workers, len(jobs))
    log.info("%d videos to encode, %d already done, %d processes", len(jobs), skipped, max(workers, 1))
    failures = _run_jobs(jobs, settings, workers)
    for failure in failures:  # after an overwrite, an old output must not pass for a new one
        _remove(output_dir / Path(failure["file"]).relative_to(input_dir).with_suffix(".mp4"))
    if replacing:
        write_json_atomic(output_dir / SETTINGS_FILE, wanted, indent=2)
    _write_failures(output_dir, input_dir, failures)
    return {
        "processed": len(jobs) - len(failures),
        "skipped": skipped,
        "failed": len(failures),
        "failures": failures,
        "output_dir": str(output_dir),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _write_failures(output_dir: Path, input_dir: Path, failures: list[dict]) -> None:
    path = output_dir / FAILURES_FILE
    if failures:
        write_json_atomic(path, {"input_dir": str(input_dir), "failures": failures}, indent=2)
    else:
        _remove(path)  # a resumed run retried the earlier failures


# ----------------------------------------------------------------------------- command line
