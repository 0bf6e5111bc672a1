"""The embedded synthetic video-caption data set: real H.264 mp4 files written with PyAV.

Each video shows two short events in sequence, e.g. "a red circle moves left, then a green
square moves up": colours x shapes x motions, on a random noisy background. A model has to
look at the whole clip (both halves) to tell videos apart, and at the order of the halves to
tell "A then B" from "B then A". Every video has several paraphrased captions; every
(first event, second event) combination is used by one video only, so no caption is shared
between videos or across the train/val/test splits.

The set is deterministic in its parameters (seed included): the videos are encoded losslessly
(:mod:`pig_lightning.data.worlds.encoding`), so they decode to the same frames on every machine, and it
is written atomically: it is
built in a temporary folder next to the target and renamed into place with its
``manifest.json`` once complete, so an interrupted run never leaves a set that is trusted
later. An existing folder is reused when its manifest matches the requested parameters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pig_lightning.data.worlds.encoding import write_mp4
from pig_lightning.data.worlds.synthetic_tokenizer import write_clip_tokenizer

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: videos encoded losslessly (data/worlds/encoding.py)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (60, 100, 255),
    "yellow": (240, 220, 40),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

# Paraphrase templates. {c1} {s1} {m1} is the first event, {c2} {s2} {m2} the second.
TEMPLATES = (
    "a {c1} {s1} moves {m1}, then a {c2} {s2} moves {m2}",
    "first a {c1} {s1} goes {m1} and then a {c2} {s2} goes {m2}",
    "a {c2} {s2} moves {m2} after a {c1} {s1} moves {m1}",
    "the {c1} {s1} slides {m1}, followed by the {c2} {s2} sliding {m2}",
    "{c1} {s1} heading {m1}, then {c2} {s2} heading {m2}",
    "a {s1} in {c1} travels {m1} before a {s2} in {c2} travels {m2}",
    "we see a {c1} {s1} going {m1} and later a {c2} {s2} going {m2}",
    "after a {c1} {s1} moves {m1}, a {c2} {s2} moves {m2}",
)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a synthetic set; the manifest stores them and reuse compares them."""

    num_train: int = 480
    num_val: int = 80
    num_test: int = 80
    captions_per_video: int = 4
    frame_size: int = 64
    frames_per_event: int = 12
    fps: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_set_sizes(self, ("num_train", "num_val", "num_test"))
        if not 1 <= self.captions_per_video <= len(TEMPLATES):
            raise ValueError(f"captions_per_video must be in [1, {len(TEMPLATES)}], got {self.captions_per_video}")
        total = self.num_train + self.num_val + self.num_test
        if total > len(event_pairs()):
            raise ValueError(f"at most {len(event_pairs())} distinct videos can be made, asked for {total}")


def check_set_sizes(cfg, counts: tuple[str, ...]) -> None:
    """The checks every synthetic set's parameters share: split sizes >= 0, an even frame size
    >= 32 and (for videos) at least 2 frames per event."""
    for name in counts:
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.frame_size < 32 or cfg.frame_size % 2:
        raise ValueError(f"frame_size must be an even number >= 32, got {cfg.frame_size}")
    if getattr(cfg, "frames_per_event", 2) < 2:
        raise ValueError(f"frames_per_event must be >= 2, got {cfg.frames_per_event}")


Event = tuple[str, str, str]  # (colour, shape, motion)


def all_events() -> list[Event]:
    return [(c, s, m) for c in COLOURS for s in SHAPES for m in MOTIONS]


def event_pairs() -> list[tuple[Event, Event]]:
    """Ordered (first, second) event pairs whose two objects differ in colour or shape."""
    events = all_events()
    return [(a, b) for a in events for b in events if (a[0], a[1]) != (b[0], b[1])]


def vocabulary() -> list[str]:
    """Every word that can appear in a synthetic caption."""
    words = set(COLOURS) | set(SHAPES) | set(MOTIONS)
    for template in TEMPLATES:
        text = template.replace(",", " ")
        words |= {w for w in text.split() if not w.startswith("{")}
    return sorted(words)


def caption(template: str, first: Event, second: Event) -> str:
    (c1, s1, m1), (c2, s2, m2) = first, second
    return template.format(c1=c1, s1=s1, m1=m1, c2=c2, s2=s2, m2=m2)


def _shape_mask(shape: str, size: int, cx: float, cy: float, frame_size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:frame_size, 0:frame_size].astype(np.float32)
    half = size / 2
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
    if shape == "square":
        return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    if shape == "triangle":  # apex up, base down
        top, bottom = cy - half, cy + half
        rel = (yy - top) / max(bottom - top, 1e-6)
        return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= rel * half)
    raise ValueError(f"unknown shape {shape!r}")


def render_video(first: Event, second: Event, cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Frames ``uint8 [2 * frames_per_event, H, W, 3]``: the first event, then the second."""
    n, fs = cfg.frames_per_event, cfg.frame_size
    background = rng.integers(0, 90, size=3).astype(np.float32)
    texture = rng.normal(0, 10, size=(fs, fs, 3)).astype(np.float32)  # static per video
    frames = []
    for colour, shape, motion in (first, second):
        size = rng.uniform(0.22, 0.3) * fs
        travel = rng.uniform(0.25, 0.32) * fs
        cx0 = fs / 2 + rng.uniform(-0.05, 0.05) * fs
        cy0 = fs / 2 + rng.uniform(-0.05, 0.05) * fs
        dx, dy = MOTIONS[motion]
        rgb = np.array(COLOURS[colour], dtype=np.float32) + rng.uniform(-15, 15, size=3)
        for k in range(n):
            t = k / (n - 1)
            img = background + texture + rng.normal(0, 8, size=(fs, fs, 3)).astype(np.float32)
            mask = _shape_mask(shape, size, cx0 + dx * travel * t, cy0 + dy * travel * t, fs)
            img[mask] = rgb
            frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _make_one(job: tuple[int, Event, Event, str, SyntheticConfig]) -> None:
    index, first, second, path, cfg = job
    rng = np.random.default_rng([cfg.seed, index, 1])
    write_mp4(Path(path), render_video(first, second, cfg, rng), cfg.fps)


def _plan(cfg: SyntheticConfig) -> list[dict]:
    rng = np.random.default_rng([cfg.seed, 0])
    pairs = event_pairs()
    chosen = rng.choice(len(pairs), size=cfg.num_train + cfg.num_val + cfg.num_test, replace=False)
    records = []
    splits = ["train"] * cfg.num_train + ["val"] * cfg.num_val + ["test"] * cfg.num_test
    for index, (pair_index, split) in enumerate(zip(chosen, splits)):
        first, second = pairs[pair_index]
        templates = rng.choice(len(TEMPLATES), size=cfg.captions_per_video, replace=False)
        records.append(
            {
                "split": split,
                "video_id": f"synth{index:05d}",
                "video": f"videos/synth{index:05d}.mp4",
                "captions": [caption(TEMPLATES[t], first, second) for t in templates],
                "events": {"first": list(first), "second": list(second)},
            }
        )
    by_split: dict[str, set[str]] = {}
    for r in records:
        by_split.setdefault(r["split"], set()).update(r["captions"])
    names = list(by_split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = by_split[a] & by_split[b]
            if shared:  # cannot happen with distinct event pairs; guard the invariant anyway
                raise AssertionError(f"captions shared between {a} and {b}: {sorted(shared)[:3]}")
    return records


def _manifest(cfg: SyntheticConfig) -> dict:
    return {"format_version": FORMAT_VERSION, "config": dataclasses.asdict(cfg)}


def read_manifest(root: str | Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def make_synthetic(root: str | Path, cfg: SyntheticConfig | None = None, num_workers: int | None = None) -> Path:
    """Create the synthetic set in ``root`` (or reuse it when it already matches ``cfg``).

    Returns ``root``. Layout: ``videos/*.mp4``, ``{train,val,test}.jsonl`` in the generic
    annotation format, ``tokenizer/`` (a CLIP tokenizer folder covering the captions) and
    ``manifest.json`` (written last; its presence marks a complete set).
    """
    cfg = cfg or SyntheticConfig()

    def write(tmp: Path) -> None:
        records = _plan(cfg)
        jobs = [
            (i, tuple(r["events"]["first"]), tuple(r["events"]["second"]), str(tmp / r["video"]), cfg)
            for i, r in enumerate(records)
        ]
        (tmp / "videos").mkdir()
        run_jobs(_make_one, jobs, num_workers, f"writing {len(jobs)} synthetic videos to {root}")
        write_splits(tmp, records)
        write_tokenizer_folder(tmp / "tokenizer", vocabulary())

    return build_dataset_folder(root, _manifest(cfg), write)


def build_dataset_folder(root: str | Path, manifest: dict, write: Callable[[Path], None]) -> Path:
    """Build a generated data set atomically, or reuse it when its manifest matches.

    ``write(tmp)`` fills a temporary folder next to ``root``; it is renamed into place with
    ``manifest.json`` (written last) once complete, so an interrupted run never leaves a set that
    is trusted later. An existing ``root`` with another manifest is refused, naming the keys
    that differ, except a set of the same kind in an older format version: that one is generated
    again and replaces it (its manifest shows it holds nothing but what this function wrote).
    """
    root = Path(root)
    outdated = None
    if root.exists():
        existing = read_manifest(root)
        if existing == manifest:
            log.info("reusing the synthetic set in %s", root)
            return root
        if _older_format_of(existing, manifest):
            log.warning("%s holds a synthetic set in the older format %s (%s); generating format %s in its place",
                        root, existing.get("format_version"), existing.get("config"), manifest.get("format_version"))
            outdated = root
        elif existing is None:
            raise FileExistsError(
                f"{root} exists but holds no {MANIFEST}: it is not a complete synthetic set. "
                "Remove it or choose another folder."
            )
        else:
            old, new = existing.get("config", {}), manifest.get("config", {})
            diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
            if existing.get("format_version") != manifest.get("format_version"):
                diff["format_version"] = (existing.get("format_version"), manifest.get("format_version"))
            raise FileExistsError(
                f"{root} holds a synthetic set made with other parameters (key: (existing, requested)) {diff}. "
                "Remove it or choose another folder."
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if outdated is not None:  # set the old one aside first: a folder cannot replace a full one
            aside = Path(tempfile.mkdtemp(prefix=f".{root.name}.outdated-", dir=root.parent))
            os.replace(outdated, aside / root.name)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process finished the same set first; trust it only if it matches.
            if read_manifest(root) != manifest:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _older_format_of(existing: dict | None, manifest: dict) -> bool:
    """Whether ``existing`` is the manifest of a set of the same kind written by an older format
    version (whose parameters may have had other names)."""
    if not existing:
        return False
    older = existing.get("format_version", 0)
    return (existing.get("kind") == manifest.get("kind") and isinstance(older, int)
            and older < manifest.get("format_version", 0))


def run_jobs(func: Callable, jobs: list, num_workers: int | None, what: str) -> None:
    """``func(job)`` for every job, in ``num_workers`` processes (default: min(4, cores))."""
    workers = num_workers if num_workers is not None else min(4, os.cpu_count() or 1)
    log.info("%s with %d processes", what, workers)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(func, jobs, chunksize=16))
    else:
        for job in jobs:
            func(job)


def write_splits(folder: Path, records: list[dict], splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """``{split}.jsonl`` for every split (the records' ``split`` key is dropped)."""
    for split in splits:
        with open(folder / f"{split}.jsonl", "w") as f:
            for r in records:
                if r["split"] == split:
                    f.write(json.dumps({k: v for k, v in r.items() if k != "split"}) + "\n")


def write_tokenizer_folder(folder: Path, words: list[str] | None = None) -> Path:
    """Write a CLIP tokenizer for the synthetic captions' ``words`` (default: this set's
    :func:`vocabulary`), complete enough for ``AutoTokenizer``."""
    from transformers import CLIPTokenizer

    write_clip_tokenizer(folder, vocabulary() if words is None else words)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(str(folder))
    return folder
