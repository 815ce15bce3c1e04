"""The search's intervals: paired over the shared validation images, seeded, and able to say no."""

import numpy as np

from edgekit.search.significance import accuracy_interval, correctness, gain_interval


def _noisy(rng, right_rate, images=400, seeds=3):
    return (rng.random((seeds, images)) < right_rate).astype(float)


def test_identical_candidates_have_no_gain():
    rng = np.random.default_rng(0)
    one_seed = _noisy(rng, 0.7, seeds=1)
    gain = gain_interval(one_seed, one_seed.copy())
    assert gain.mean == gain.low == gain.high == 0 and not gain.excludes_zero_above
    # With several seeds each candidate's seeds are resampled on their own: the interval widens
    # around zero (seed noise), it does not vanish.
    seeds = _noisy(rng, 0.7, seeds=3)
    gain = gain_interval(seeds, seeds.copy())
    assert gain.mean == 0 and gain.low < 0 < gain.high


def test_pairing_separates_what_two_independent_intervals_cannot():
    # The child gets right every image the control gets right, plus 4% more: a small but sure gain.
    rng = np.random.default_rng(1)
    control = _noisy(rng, 0.6, seeds=1)
    child = control.copy()
    wrong = np.flatnonzero(control[0] == 0)
    child[0, wrong[:16]] = 1  # 16 of 400 images: +4 points
    a, b = accuracy_interval(child), accuracy_interval(control)
    assert a.low < b.high  # the two intervals overlap: compared one by one, no conclusion
    gain = gain_interval(child, control)
    assert gain.low > 0 and abs(gain.mean - 0.04) < 1e-12 and gain.excludes_zero_above


def test_a_gain_within_seed_noise_is_not_significant():
    # Same true rate; the child's seeds differ from the control's only by training noise.
    rng = np.random.default_rng(2)
    base = _noisy(rng, 0.7, seeds=1)
    control = np.vstack([np.where(rng.random(base.shape[1]) < 0.1, 1 - base[0], base[0]) for _ in range(3)])
    child = np.vstack([np.where(rng.random(base.shape[1]) < 0.1, 1 - base[0], base[0]) for _ in range(3)])
    gain = gain_interval(child, control)
    assert gain.low < 0 < gain.high and not gain.excludes_zero_above


def test_intervals_are_a_function_of_the_data():
    rng = np.random.default_rng(3)
    child, control = _noisy(rng, 0.7), _noisy(rng, 0.65)
    assert gain_interval(child, control) == gain_interval(child.copy(), control.copy())
    assert correctness(["0110", "1111"]).tolist() == [[0, 1, 1, 0], [1, 1, 1, 1]]
