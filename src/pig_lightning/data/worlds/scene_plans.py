"""What each video of the quality benchmark shows and what its captions say: two settings.

A *plan* is the list of records a video set is written from: per video its events in order (a
coloured shape moving one way), their sizes, its captions and which events each caption names.
Rendering and writing live in :mod:`pig_lightning.data.worlds.scenes`; the design and why it is so are
in ``docs/quality.md``.

* ``parts`` — captions name different parts. Every caption names ``events_per_caption`` of the
  ``events_per_video`` events (in order) and the captions of one video name different subsets:
  two captions of a video share few events (partially relevant retrieval). Where query-time
  pooling (X-Pool) wins by construction.
* ``salient`` — captions agree on a salient event. ``salient_events`` of the events are *big*
  (salient in the pixels), the others *small* (minor); every caption names the salient events
  in order, paraphrased (templates, joiners, word order), and with ``detail_probability`` adds
  one minor event as a detail. In the evaluation splits a video's minor events are other videos'
  salient events, shown small: hard negatives for pooling that ignores salience. PIG's premise
  (a query written from the video can stand in for its real queries) can hold here.

**One right video per query, in both settings**: within an evaluation split no ordered pair of
events that a video *contains* (named or not; in ``salient`` an event includes its size) is
contained by another video, so the events a caption names, in their order, are contained by its
own video only.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

from pig_lightning.data.worlds.scene_world import COLOURS, EVENT_JOINERS, EVENT_TEMPLATES, MOTIONS, SHAPES, SIZES
from pig_lightning.data.worlds.synthetic import check_set_sizes

SETTINGS = ("parts", "salient")
MAX_SIZE = 0.4  # an object's side, as a fraction of the frame, that leaves it room to move
ATTEMPTS = 2000  # draws per video before a split is declared too crowded

Event = tuple[str, str, str]  # colour, shape, motion
ALL_EVENTS: list[Event] = list(itertools.product(COLOURS, SHAPES, MOTIONS))


@dataclasses.dataclass(frozen=True)
class SceneVideosConfig:
    """Parameters of the multi-event video set (stage-2 fine-tuning and evaluation).

    ``setting`` chooses what the captions say (module docstring); ``events_per_caption`` applies
    to ``parts``, ``salient_events``, ``detail_probability``, ``salient_size``, ``minor_size``
    and ``hard_negatives`` to ``salient`` (sizes are sides as fractions of the frame).
    """

    num_train: int = 1200
    num_val: int = 100
    num_test: int = 200
    events_per_video: int = 4
    events_per_caption: int = 2
    captions_per_video: int = 4
    distractor: bool = True
    frame_size: int = 64
    frames_per_event: int = 10
    fps: int = 8
    seed: int = 0
    setting: str = "parts"
    salient_events: int = 2
    detail_probability: float = 0.2
    salient_size: float = SIZES["big"]
    minor_size: float = SIZES["small"]
    hard_negatives: bool = True

    def __post_init__(self) -> None:
        where = f"scene videos, setting {self.setting!r}"
        if self.setting not in SETTINGS:
            raise ValueError(f"scene videos: setting must be one of {SETTINGS}, got {self.setting!r}")
        check_set_sizes(self, ("num_train", "num_val", "num_test"))
        if self.events_per_video < 2:
            raise ValueError(f"{where}: events_per_video must be >= 2, got {self.events_per_video}")
        if self.setting == "parts":
            if not 1 <= self.events_per_caption <= self.events_per_video:
                raise ValueError(f"{where}: events_per_caption must be in [1, events_per_video="
                                 f"{self.events_per_video}], got {self.events_per_caption}")
            subsets = len(list(itertools.combinations(range(self.events_per_video), self.events_per_caption)))
            if not 1 <= self.captions_per_video <= subsets:
                raise ValueError(f"{where}: captions_per_video must be in [1, {subsets}] (distinct event subsets), "
                                 f"got {self.captions_per_video}")
        else:
            if not 1 <= self.salient_events <= self.events_per_video:
                raise ValueError(f"{where}: salient_events must be in [1, events_per_video="
                                 f"{self.events_per_video}], got {self.salient_events}")
            if not 0.0 <= self.detail_probability <= 1.0:
                raise ValueError(f"{where}: detail_probability must be in [0, 1], got {self.detail_probability}")
            for name in ("salient_size", "minor_size"):
                if not 0.0 < getattr(self, name) <= MAX_SIZE:
                    raise ValueError(f"{where}: {name} must be in (0, {MAX_SIZE}] of the frame (room to move), "
                                     f"got {getattr(self, name)}")
            if self.minor_size >= self.salient_size:
                raise ValueError(f"{where}: minor_size must be below salient_size (salience is size), got "
                                 f"{self.minor_size} >= {self.salient_size}")
            if self.captions_per_video < 1:
                raise ValueError(f"{where}: captions_per_video must be >= 1, got {self.captions_per_video}")
        limit = max_videos_per_split(self)
        for name in ("num_val", "num_test"):
            if getattr(self, name) > limit:
                raise ValueError(f"{where}: {name}={getattr(self, name)} is too many for unique event pairs: "
                                 f"at most {limit} videos per evaluation split with {self.events_per_video} events")


def max_videos_per_split(cfg: SceneVideosConfig) -> int:
    """Videos an evaluation split can hold with every contained ordered event pair unique: half
    the number of distinct pairs over the pairs one video uses (beyond that, drawing them at
    random stalls)."""
    labels = len(ALL_EVENTS) * (1 if cfg.setting == "parts" else 2)  # salient: an event includes its size
    pairs_per_video = cfg.events_per_video * (cfg.events_per_video - 1) // 2
    return labels * labels // (2 * pairs_per_video)


def event_phrase(event: Event, rng: np.random.Generator, size: str | None = None) -> str:
    colour, shape, motion = event
    template = EVENT_TEMPLATES[rng.integers(len(EVENT_TEMPLATES))]
    if size is not None:  # "a red circle" -> "a big red circle"; "a circle in red" -> "a big circle in red"
        template = template.replace("{colour} {shape}", f"{size} {{colour}} {{shape}}").replace(
            "{shape} in", f"{size} {{shape}} in")
    return template.format(colour=colour, shape=shape, motion=motion)


def scene_caption(events: Sequence[Event], rng: np.random.Generator, sizes: Sequence[str | None] | None = None) -> str:
    """A caption naming ``events`` (already in video order), each with its size word if given."""
    phrases = [event_phrase(e, rng, None if sizes is None else sizes[i]) for i, e in enumerate(events)]
    text = phrases[0]
    for phrase in phrases[1:]:
        text = EVENT_JOINERS[rng.integers(len(EVENT_JOINERS))].format(a=text, b=phrase)
    return text


def contained_pairs(labels: Sequence[tuple]) -> set[tuple]:
    """Every ordered pair of the video's (labelled) events: what must be unique within a split."""
    return {(labels[i], labels[j]) for i in range(len(labels)) for j in range(i + 1, len(labels))}


def salient_pairs_of(events: Sequence[Event]) -> set[tuple]:
    return contained_pairs([(*e, "big") for e in events])


def _draw_sequence(rng: np.random.Generator, count: int, before: Event | None = None) -> list[Event]:
    """``count`` events in which consecutive ones differ in colour and shape (a visible cut)."""
    chosen: list[Event] = []
    while len(chosen) < count:
        e = ALL_EVENTS[rng.integers(len(ALL_EVENTS))]
        last = chosen[-1] if chosen else before
        if last is None or (e[0] != last[0] and e[1] != last[1]):
            chosen.append(e)
    return chosen


def _cuts_visible(events: Sequence[Event]) -> bool:
    return all(a[0] != b[0] and a[1] != b[1] for a, b in zip(events, events[1:]))


def _distractor(cfg: SceneVideosConfig, rng: np.random.Generator) -> list | None:
    if not cfg.distractor:
        return None
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    return [colour, SHAPES[rng.integers(len(SHAPES))], "small", "corner"]


def _crowded(split: str) -> RuntimeError:
    return RuntimeError(f"could not draw a video with unique event pairs for split {split}: make the split smaller")


def plan_videos(cfg: SceneVideosConfig) -> list[dict]:
    """The records of a set, in split order (train, val, test), drawn from ``cfg.seed``."""
    rng = np.random.default_rng([cfg.seed, 0])
    splits = ["train"] * cfg.num_train + ["val"] * cfg.num_val + ["test"] * cfg.num_test
    plan = _plan_parts if cfg.setting == "parts" else _plan_salient
    records = []
    for split in ("train", "val", "test"):
        records += plan(cfg, rng, split, splits.count(split))
    for index, record in enumerate(records):
        record["video_id"] = f"scene{index:05d}"
        record["video"] = f"videos/scene{index:05d}.mp4"
    return records


def _plan_parts(cfg: SceneVideosConfig, rng: np.random.Generator, split: str, count: int) -> list[dict]:
    subsets = list(itertools.combinations(range(cfg.events_per_video), cfg.events_per_caption))
    used: set[tuple] = set()
    records = []
    for _ in range(count):
        for _attempt in range(ATTEMPTS):
            chosen = _draw_sequence(rng, cfg.events_per_video)
            pairs = contained_pairs(chosen)
            if split == "train" or not pairs & used:
                break
        else:
            raise _crowded(split)
        if split != "train":
            used |= pairs
        picked = [subsets[i] for i in rng.choice(len(subsets), cfg.captions_per_video, replace=False)]
        distractor = _distractor(cfg, rng)
        captions = [scene_caption([chosen[i] for i in subset], rng) for subset in picked]
        records.append({"split": split, "captions": captions, "events": [list(e) for e in chosen],
                        "captioned": [list(s) for s in picked], "distractor": distractor})
    return records


def _plan_salient(cfg: SceneVideosConfig, rng: np.random.Generator, split: str, count: int) -> list[dict]:
    n_salient, n_minor = cfg.salient_events, cfg.events_per_video - cfg.salient_events
    evaluation = split != "train"
    # first every video's salient events (their ordered pairs unique in an evaluation split) ...
    salient: list[list[Event]] = []
    salient_pairs: set[tuple] = set()
    for _ in range(count):
        for _attempt in range(ATTEMPTS):
            events = _draw_sequence(rng, n_salient)
            pairs = salient_pairs_of(events)
            if not evaluation or not pairs & salient_pairs:
                break
        else:
            raise _crowded(split)
        salient_pairs |= pairs if evaluation else set()
        salient.append(events)
    # ... then each video's minor events (in evaluation: other videos' salient events) and the order
    used: set[tuple] = set()
    records = []
    for index, events in enumerate(salient):
        for _attempt in range(ATTEMPTS):
            if evaluation and cfg.hard_negatives and count > 1:
                donors = [d for d in rng.permutation(count) if d != index][:n_minor]
                minor = [salient[d][rng.integers(n_salient)] for d in donors]
                while len(minor) < n_minor:  # fewer other videos than minor events
                    minor.append(ALL_EVENTS[rng.integers(len(ALL_EVENTS))])
            else:
                minor = [ALL_EVENTS[rng.integers(len(ALL_EVENTS))] for _ in range(n_minor)]
            is_salient = np.zeros(cfg.events_per_video, dtype=bool)
            is_salient[rng.choice(cfg.events_per_video, n_salient, replace=False)] = True
            order, s, m = [], iter(events), iter(minor)
            for flag in is_salient:
                order.append(next(s) if flag else next(m))
            sizes = ["big" if flag else "small" for flag in is_salient]
            pairs = contained_pairs([(*e, size) for e, size in zip(order, sizes)])
            # its own salient pairs are already taken (by itself); every other pair must be new in the split
            others = pairs - salient_pairs_of(events)
            if _cuts_visible(order) and (not evaluation or not others & (used | salient_pairs)):
                break
        else:
            raise _crowded(split)
        if evaluation:
            used |= pairs
        named = [i for i in range(cfg.events_per_video) if is_salient[i]]
        minor_at = [i for i in range(cfg.events_per_video) if not is_salient[i]]
        captions: list[str] = []
        captioned: list[list[int]] = []
        for _attempt in range(ATTEMPTS):
            if len(captions) == cfg.captions_per_video:
                break
            subset = named
            if minor_at and rng.random() < cfg.detail_probability:
                subset = sorted(named + [minor_at[rng.integers(len(minor_at))]])
            text = scene_caption([order[i] for i in subset], rng, [sizes[i] for i in subset])
            if text not in captions:
                captions.append(text)
                captioned.append(subset)
        else:
            raise RuntimeError(f"could not write {cfg.captions_per_video} distinct captions for one video: "
                               "lower captions_per_video")
        records.append({"split": split, "captions": captions, "events": [list(e) for e in order], "sizes": sizes,
                        "captioned": captioned, "distractor": _distractor(cfg, rng)})
    return records


def caption_agreement(records: Sequence[dict]) -> float:
    """Mean over pairs of captions of one video of the Jaccard overlap of the events they name
    (1: every caption names the same events; real MSR-VTT captions mostly restate the main
    actor and action)."""
    overlaps = []
    for record in records:
        named = [set(map(int, c)) for c in record["captioned"]]
        for a, b in itertools.combinations(named, 2):
            overlaps.append(len(a & b) / len(a | b))
    return float(np.mean(overlaps)) if overlaps else float("nan")
