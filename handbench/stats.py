"""Statistics shared by the evaluator and the leaderboard."""

from __future__ import annotations

import math

import numpy as np

from handbench.seeding import BOOTSTRAP_SEED, bootstrap_rng


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounding leaves e.g. 7e-18 instead of 0 for 0 successes; the interval must contain p exactly
    # (plots draw p - low as an error bar, which must not be negative).
    low = 0.0 if successes == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes == n else max(p, min(1.0, centre + half))
    return low, high


# --- Aggregates across tasks and training seeds (rliable's method, in numpy) -------------------------------------
#
# A score matrix has one row per training seed (run) and one column per task. The stratified bootstrap resamples
# runs *within each task* (every column independently, with replacement), so each task keeps its weight while the
# run-to-run variation, the quantity a few training seeds estimate poorly, drives the interval.

BOOTSTRAP_REPS = 10_000


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores (rliable's 25% trimmed mean).

    ``int(0.25 * n)`` values are cut from each end, as ``scipy.stats.trim_mean(x, 0.25)`` does; robust to a
    single outlier run yet far less noisy than the median.
    """
    flat = np.sort(np.asarray(scores, dtype=float).ravel())
    if flat.size == 0:
        raise ValueError("IQM of an empty array")
    cut = int(0.25 * flat.size)
    return float(flat[cut:flat.size - cut].mean())


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a 2-D array (one bootstrap replicate per row), vectorised."""
    ordered = np.sort(samples, axis=1)
    cut = int(0.25 * ordered.shape[1])
    return ordered[:, cut:ordered.shape[1] - cut].mean(axis=1)


AGGREGATES = {"mean": lambda s: s.mean(axis=1), "iqm": _iqm_rows}


def _check_score_matrix(scores: np.ndarray) -> np.ndarray:
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"score matrix must be 2-D (runs x tasks) and non-empty, got shape {matrix.shape}")
    return matrix


def stratified_bootstrap_samples(scores: np.ndarray, reps: int = BOOTSTRAP_REPS,
                                 seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``reps`` resampled score matrices, flattened: shape (reps, runs * tasks).

    Row indices are drawn independently for every task (column); a fixed seed makes the result reproducible.
    """
    matrix = _check_score_matrix(scores)
    runs, tasks = matrix.shape
    rows = bootstrap_rng(seed).randint(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(matrix, (reps, runs, tasks)), rows, axis=1)
    return resampled.reshape(reps, runs * tasks)


def aggregate_with_interval(scores: np.ndarray, aggregate: str, reps: int = BOOTSTRAP_REPS,
                            seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> tuple[float, float, float]:
    """(point estimate, low, high): ``aggregate`` ("mean" or "iqm") over all (run, task) scores with a
    stratified-bootstrap percentile interval."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; valid: {', '.join(AGGREGATES)}")
    matrix = _check_score_matrix(scores)
    point = float(AGGREGATES[aggregate](matrix.reshape(1, -1))[0])
    replicates = AGGREGATES[aggregate](stratified_bootstrap_samples(matrix, reps, seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): for each task, the chance that a random run of X beats a random run of Y (ties count 1/2,
    the Mann-Whitney U statistic normalised), averaged over tasks. ``x`` and ``y`` are (runs x tasks) score
    matrices over the same tasks, in the same column order; their numbers of runs may differ."""
    a, b = _check_score_matrix(x), _check_score_matrix(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"score matrices cover different numbers of tasks: {a.shape[1]} vs {b.shape[1]}")
    return float(_poi_batched(a[None], b[None])[0])


def _poi_batched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(X > Y) for batches of score matrices: a (reps, runs_x, tasks), b (reps, runs_y, tasks)."""
    diff = a[:, :, None, :] - b[:, None, :, :]
    wins = (diff > 0).astype(float) + 0.5 * (diff == 0)
    return wins.mean(axis=(1, 2)).mean(axis=1)


def probability_of_improvement_with_interval(x: np.ndarray, y: np.ndarray, reps: int = BOOTSTRAP_REPS,
                                             seed: int = BOOTSTRAP_SEED,
                                             confidence: float = 0.95) -> tuple[float, float, float]:
    """(P(X > Y), low, high) with a stratified-bootstrap percentile interval: runs of each entry are
    resampled within each task, independently for the two entries."""
    a, b = _check_score_matrix(x), _check_score_matrix(y)
    point = probability_of_improvement(a, b)
    rng = bootstrap_rng(seed)
    values = []
    chunk = 1000  # bounds memory: reps x runs_x x runs_y x tasks floats per chunk
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        rows_a = rng.randint(0, a.shape[0], size=(size, *a.shape))
        rows_b = rng.randint(0, b.shape[0], size=(size, *b.shape))
        sample_a = np.take_along_axis(np.broadcast_to(a, (size, *a.shape)), rows_a, axis=1)
        sample_b = np.take_along_axis(np.broadcast_to(b, (size, *b.shape)), rows_b, axis=1)
        values.append(_poi_batched(sample_a, sample_b))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.concatenate(values), [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def seed_std(per_seed_scores: np.ndarray) -> float:
    """Sample standard deviation (ddof=1) across training seeds; NaN with a single seed."""
    values = np.asarray(per_seed_scores, dtype=float).ravel()
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")
