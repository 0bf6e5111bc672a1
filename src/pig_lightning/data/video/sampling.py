"""Frame index sampling, in our own code so results never depend on the decoding backend.

All functions return a sorted ``int64`` numpy array of ``num_frames`` indices in
``[0, num_available - 1]``; indices repeat when the clip has fewer frames than requested
(repeat-padding), so every clip yields exactly ``num_frames`` frames.

``linspace`` positions become frame indices by ``positions``: ``"truncate"`` (the release's
``np.linspace(...).astype(int)``, the default) or ``"round"`` (nearest frame, the choice of
this project before it followed the release; an option). They differ by one frame wherever a
position's fraction is >= 0.5, e.g. 24 frames -> 8: truncate ``[0, 3, 6, 9, 13, 16, 19, 23]``,
round ``[0, 3, 7, 10, 13, 16, 20, 23]``.
"""

from __future__ import annotations

import numpy as np


FRAME_POSITIONS = ("truncate", "round")


def _check(num_available: int, num_frames: int) -> None:
    if num_available < 1:
        raise ValueError(f"cannot sample from a clip with {num_available} frames")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")


def to_indices(positions: np.ndarray, kind: str = "truncate") -> np.ndarray:
    """Fractional frame positions (>= 0) -> ``int64`` indices, truncated or rounded."""
    if kind == "truncate":
        return positions.astype(np.int64)
    if kind == "round":
        return np.round(positions).astype(np.int64)
    raise ValueError(f"frame positions must be one of {FRAME_POSITIONS}, got {kind!r}")


def uniform_indices(num_available: int, num_frames: int, positions: str = "truncate") -> np.ndarray:
    """Evaluation sampling: ``linspace(0, n - 1, num_frames)``, truncated by default (METHOD.md §7)."""
    _check(num_available, num_frames)
    return to_indices(np.linspace(0, num_available - 1, num_frames), positions)


def jittered_indices(num_available: int, num_frames: int, rng: np.random.Generator,
                     positions: str = "truncate") -> np.ndarray:
    """Training sampling of the reference recipe (METHOD.md §7).

    ``linspace(start, end, num_frames)`` with ``start ~ U[0, interval]``,
    ``end ~ U[n - 1 - interval, n - 1]`` and ``interval = n // (num_frames - 1)``, capped at
    ``(n - 1) // 2`` so the window never inverts.
    """
    _check(num_available, num_frames)
    n = num_available
    if num_frames == 1:
        return np.array([rng.integers(0, n)], dtype=np.int64)
    # Capped so that start <= end for few frames (the reference only runs 12 frames, where it holds).
    interval = min(n // (num_frames - 1), (n - 1) // 2)
    start = rng.integers(0, interval + 1) if interval > 0 else 0
    end = rng.integers(max(n - 1 - interval, start), n) if interval > 0 else n - 1
    return to_indices(np.linspace(start, end, num_frames), positions)


def segment_indices(num_available: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """TSN / X-Pool training sampling: cut the clip into ``num_frames`` equal segments and take
    one random frame from each. Segments shorter than a frame repeat their neighbour's frame."""
    _check(num_available, num_frames)
    edges = np.linspace(0, num_available, num_frames + 1)
    low = np.floor(edges[:-1]).astype(np.int64)
    high = np.maximum(np.floor(edges[1:]).astype(np.int64), low + 1)
    return np.minimum(rng.integers(low, high), num_available - 1)


TRAIN_SAMPLING = ("jittered", "segment", "uniform")


def make_sampler(kind: str, num_frames: int, rng: np.random.Generator | None = None, positions: str = "truncate"):
    """``n -> indices`` for ``kind`` in ``uniform`` / ``jittered`` / ``segment`` (the random kinds need
    ``rng``); ``positions`` applies to the ``linspace`` kinds (``segment`` draws whole frames)."""
    if kind == "uniform":
        return lambda n: uniform_indices(n, num_frames, positions)
    if kind not in TRAIN_SAMPLING:
        raise ValueError(f"sampling must be one of {TRAIN_SAMPLING}, got {kind!r}")
    if rng is None:
        raise ValueError(f"{kind!r} sampling is random: give it a numpy Generator")
    if kind == "jittered":
        return lambda n: jittered_indices(n, num_frames, rng, positions)
    return lambda n: segment_indices(n, num_frames, rng)
