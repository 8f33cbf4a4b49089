"""Statistics against known values: Wilson, IQM, stratified bootstrap, probability of improvement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handbench.stats import (
    aggregate_with_interval,
    iqm,
    probability_of_improvement,
    probability_of_improvement_with_interval,
    seed_std,
    stratified_bootstrap_samples,
    wilson_interval,
)


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 7, 50, 150, 1000])
def test_wilson_interval_contains_the_rate_exactly(n):
    assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0  # not 7e-18 / 0.9999999999
    for k in range(0, n + 1, max(1, n // 10)):
        low, high = wilson_interval(k, n)
        assert 0.0 <= low <= k / n <= high <= 1.0


def test_iqm_known_values():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # drops 1, 2 and 7, 8
    assert iqm(np.array([0.0, 0.0, 1.0, 100.0])) == pytest.approx(0.5)  # the outlier is cut
    assert iqm(np.array([[1.0, 2.0], [3.0, 4.0]])) == pytest.approx(2.5)  # over all cells of a matrix
    assert iqm(np.array([0.7])) == pytest.approx(0.7)


@pytest.mark.parametrize("size", [3, 5, 9, 10, 30, 31])
def test_iqm_matches_scipy_trim_mean(size):
    trim_mean = pytest.importorskip("scipy.stats").trim_mean
    values = np.random.default_rng(size).random(size)
    assert iqm(values) == pytest.approx(trim_mean(values, 0.25))


def test_iqm_of_empty_array_refused():
    with pytest.raises(ValueError):
        iqm(np.array([]))


def test_bootstrap_interval_contains_point_and_is_deterministic():
    scores = np.random.default_rng(1).random((3, 5))
    for aggregate, expected in (("mean", scores.mean()), ("iqm", iqm(scores))):
        point, low, high = aggregate_with_interval(scores, aggregate, reps=2000, seed=7)
        assert point == pytest.approx(expected)
        assert low <= point <= high and low < high
        assert aggregate_with_interval(scores, aggregate, reps=2000, seed=7) == (point, low, high)
        assert aggregate_with_interval(scores, aggregate, reps=2000, seed=8) != (point, low, high)


def test_bootstrap_is_stratified_by_task():
    """Runs agree within each task, so resampling runs within tasks cannot move the score at all
    (resampling across tasks would)."""
    scores = np.array([[0.0, 1.0, 0.5]] * 3)
    assert aggregate_with_interval(scores, "mean", reps=500) == pytest.approx((0.5, 0.5, 0.5))
    samples = stratified_bootstrap_samples(scores, reps=50, seed=0)
    assert samples.shape == (50, 9)
    assert np.all(np.sort(samples, axis=1) == np.sort(scores.ravel()))


def test_bootstrap_of_a_single_run_has_zero_width():
    point, low, high = aggregate_with_interval(np.array([[0.2, 0.4, 0.9]]), "iqm", reps=200)
    assert low == high == pytest.approx(point)


def test_unknown_aggregate_and_bad_shape_refused():
    with pytest.raises(ValueError, match="unknown aggregate"):
        aggregate_with_interval(np.ones((2, 2)), "median")
    with pytest.raises(ValueError, match="2-D"):
        aggregate_with_interval(np.ones(4), "mean")


def test_probability_of_improvement_known_values():
    assert probability_of_improvement(np.array([[1.0], [0.9]]), np.array([[0.1], [0.2]])) == 1.0
    assert probability_of_improvement(np.array([[0.5]]), np.array([[0.5]])) == 0.5  # ties count half
    # task 1: 0.2 vs 0.4 loses, 0.6 vs 0.4 wins -> 0.5; task 2: always wins -> 1; mean over tasks 0.75
    x = np.array([[0.2, 0.9], [0.6, 0.8]])
    y = np.array([[0.4, 0.1], [0.4, 0.0], [0.4, 0.3]])
    assert probability_of_improvement(x, y) == pytest.approx(0.75)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_interval():
    rng = np.random.default_rng(3)
    x, y = rng.random((3, 4)), rng.random((3, 4))
    point, low, high = probability_of_improvement_with_interval(x, y, reps=1500, seed=0)
    assert point == pytest.approx(probability_of_improvement(x, y))
    assert 0.0 <= low <= point <= high <= 1.0
    assert probability_of_improvement_with_interval(x, y, reps=1500, seed=0) == (point, low, high)
    with pytest.raises(ValueError, match="different numbers of tasks"):
        probability_of_improvement(x, y[:, :2])


def test_seed_std():
    assert seed_std(np.array([0.5, 0.7, 0.9])) == pytest.approx(0.2)
    assert math.isnan(seed_std(np.array([0.5])))


def test_bootstrap_stream_is_pinned():
    """The checked-in leaderboard tables must regenerate byte for byte on any numpy: the bootstrap draws from
    the legacy RandomState, whose stream numpy keeps frozen. A change here means every table would change."""
    scores = np.array([[0.1, 0.5], [0.3, 0.9], [0.2, 0.4]])
    assert aggregate_with_interval(scores, "mean", reps=1000, seed=0) == pytest.approx((0.4, 0.28333333, 0.55))
    assert aggregate_with_interval(scores, "iqm", reps=1000, seed=0) == pytest.approx((0.35, 0.275, 0.575))
