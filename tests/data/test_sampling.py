import numpy as np
import pytest

from pig_lightning.data.video.sampling import jittered_indices, make_sampler, uniform_indices


def test_uniform_truncates_linspace_positions_like_the_release():
    # 50 frames -> 12: positions k * 49 / 11 = 0, 4.45, 8.91, 13.36, 17.82, 22.27, 26.73, 31.18,
    # 35.64, 40.09, 44.55, 49; the release keeps their integer parts (np.linspace(...).astype(int))
    assert uniform_indices(50, 12).tolist() == [0, 4, 8, 13, 17, 22, 26, 31, 35, 40, 44, 49]
    assert uniform_indices(24, 8).tolist() == [0, 3, 6, 9, 13, 16, 19, 23]  # k * 23 / 7
    assert uniform_indices(5, 1).tolist() == [0]


def test_rounding_is_the_option():
    assert uniform_indices(50, 12, "round").tolist() == [0, 4, 9, 13, 18, 22, 27, 31, 36, 40, 45, 49]
    assert uniform_indices(24, 8, "round").tolist() == [0, 3, 7, 10, 13, 16, 20, 23]
    assert make_sampler("uniform", 12, positions="round")(50).tolist() == uniform_indices(50, 12, "round").tolist()
    with pytest.raises(ValueError, match="frame positions must be one of"):
        uniform_indices(50, 12, "floor")


def test_jittered_truncates_its_positions():
    # the same draws of start/end (METHOD.md §7), positions truncated by default, rounded as the option
    differ = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        start = rng.integers(0, 50 // 11 + 1)
        end = rng.integers(50 - 1 - 50 // 11, 50)
        positions = np.linspace(start, end, 12)
        truncated = jittered_indices(50, 12, np.random.default_rng(seed))
        rounded = jittered_indices(50, 12, np.random.default_rng(seed), positions="round")
        assert truncated.tolist() == [int(p) for p in positions]
        assert rounded.tolist() == np.round(positions).astype(int).tolist()
        differ += truncated.tolist() != rounded.tolist()
    assert differ > 0


def test_fewer_frames_than_requested_repeat_pad():
    idx = uniform_indices(3, 8)
    assert len(idx) == 8 and set(idx.tolist()) == {0, 1, 2} and np.all(np.diff(idx) >= 0)
    for seed in range(20):
        j = jittered_indices(3, 8, np.random.default_rng(seed))
        assert len(j) == 8 and j.min() >= 0 and j.max() <= 2 and np.all(np.diff(j) >= 0)
    assert uniform_indices(1, 4).tolist() == [0, 0, 0, 0]


def test_jittered_follows_the_reference_recipe_bounds():
    n, t = 300, 12
    interval = n // (t - 1)
    starts, ends = set(), set()
    for seed in range(400):
        idx = jittered_indices(n, t, np.random.default_rng(seed))
        assert len(idx) == t and np.all(np.diff(idx) >= 0)
        assert 0 <= idx[0] <= interval and n - 1 - interval <= idx[-1] <= n - 1
        starts.add(int(idx[0]))
        ends.add(int(idx[-1]))
    # the whole jitter range is used, not a fixed offset
    assert starts == set(range(interval + 1)) and ends == set(range(n - 1 - interval, n))


def test_jittered_is_deterministic_given_the_generator_seed():
    a = jittered_indices(90, 12, np.random.default_rng([42, 3, 17]))
    b = jittered_indices(90, 12, np.random.default_rng([42, 3, 17]))
    c = jittered_indices(90, 12, np.random.default_rng([42, 4, 17]))
    assert a.tolist() == b.tolist()
    assert any(not np.array_equal(a, jittered_indices(90, 12, np.random.default_rng([42, e, 17]))) for e in range(4, 9))
    assert len(c) == 12


@pytest.mark.parametrize("fn", [uniform_indices, lambda n, t: jittered_indices(n, t, np.random.default_rng(0))])
def test_empty_clip_or_zero_frames_raise(fn):
    with pytest.raises(ValueError, match="0 frames"):
        fn(0, 8)
    with pytest.raises(ValueError, match="num_frames"):
        fn(10, 0)


@pytest.mark.parametrize("n", range(1, 30))
@pytest.mark.parametrize("t", [1, 2, 3, 12])
def test_jittered_is_valid_for_every_clip_length_and_frame_count(n, t):
    for seed in range(10):
        idx = jittered_indices(n, t, np.random.default_rng(seed))
        assert len(idx) == t and idx.min() >= 0 and idx.max() <= n - 1 and np.all(np.diff(idx) >= 0)
