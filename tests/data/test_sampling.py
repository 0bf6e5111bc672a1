import numpy as np
import pytest

from pig_lightning.data.sampling import jittered_indices, uniform_indices


def test_uniform_spans_the_clip_like_linspace():
    assert uniform_indices(24, 8).tolist() == [0, 3, 7, 10, 13, 16, 20, 23]
    assert uniform_indices(100, 12).tolist() == np.round(np.linspace(0, 99, 12)).astype(int).tolist()
    assert uniform_indices(5, 1).tolist() == [0]


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
