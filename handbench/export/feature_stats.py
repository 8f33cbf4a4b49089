"""Per-feature statistics in LeRobot's form (min, max, mean, std, count, q01 ... q99), per episode and pooled.

Means and variances of episodes pool exactly (counts, means and variances combine). Quantiles do not pool,
so the dataset-level ones are computed over all values: the low-dimensional columns' values (small), and
for images an exact per-channel histogram of the 256 uint8 levels. Quantiles use the inverted-CDF
definition (the smallest value with at least a fraction q of the values at or below it), which a
histogram gives exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's names
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILES)


def _as_2d(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def quantile_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """q01 ... q99 over the first axis of (T, D) or (T,) values (inverted CDF), each (D,)."""
    values = _as_2d(values)
    levels = np.quantile(values, list(QUANTILES.values()), axis=0, method="inverted_cdf")
    return dict(zip(QUANTILES, levels, strict=True))


def array_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over the first axis of (T, D) or (T,) values; scalars keep a trailing dim of 1."""
    values = _as_2d(values)
    return {
        "min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
        "std": values.std(axis=0), "count": np.array([values.shape[0]], dtype=np.int64),
        **quantile_stats(values),
    }


def sampled_frames(frames: np.ndarray, max_frames: int = 100) -> np.ndarray:
    """At most ``max_frames`` evenly spaced frames (neighbouring frames are nearly identical)."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    return frames[picks]


def channel_histogram(frames: np.ndarray) -> np.ndarray:
    """(C, 256) counts of each uint8 level per channel of (T, H, W, C) frames."""
    channels = frames.shape[-1]
    flat = np.asarray(frames, dtype=np.uint8).reshape(-1, channels)
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(channels)]).astype(np.int64)


def histogram_quantiles(histogram: np.ndarray) -> dict[str, np.ndarray]:
    """q01 ... q99 per channel of a (C, 256) histogram, scaled to [0, 1] and shaped (C, 1, 1)."""
    cumulative = np.cumsum(histogram, axis=1)
    total = cumulative[:, -1:]
    out = {}
    for name, q in QUANTILES.items():
        # inverted CDF: first level whose cumulative count reaches q * n
        level = np.argmax(cumulative >= np.ceil(q * total - 1e-9), axis=1)
        out[name] = (level / 255.0).reshape(-1, 1, 1)
    return out


def image_stats(frames: np.ndarray, max_frames: int = 100) -> dict[str, np.ndarray]:
    """Per-channel stats of (T, H, W, 3) uint8 frames scaled to [0, 1], shaped (3, 1, 1) like LeRobot's.

    At most ``max_frames`` evenly spaced frames are used (see :func:`sampled_frames`).
    """
    picks = sampled_frames(frames, max_frames)
    pixels = picks.astype(np.float64).reshape(-1, frames.shape[-1]) / 255.0
    stats = {key: value for key, value in array_stats(pixels).items() if key not in QUANTILES}
    out = {key: value.reshape(-1, 1, 1) for key, value in stats.items() if key != "count"}
    out.update(histogram_quantiles(channel_histogram(picks)))
    out["count"] = np.array([len(picks)], dtype=np.int64)
    return out


def pool_stats(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine stats of disjoint parts into the stats of their union (exact for mean and std).

    Quantiles are not poolable: add them from all the values (:func:`quantile_stats`,
    :func:`histogram_quantiles`).
    """
    counts = np.array([float(part["count"][0]) for part in parts])
    weights = counts / counts.sum()
    means = np.stack([part["mean"] for part in parts])
    shape = (-1,) + (1,) * (means.ndim - 1)
    mean = np.sum(weights.reshape(shape) * means, axis=0)
    second_moment = np.stack([part["std"] ** 2 + part["mean"] ** 2 for part in parts])
    variance = np.sum(weights.reshape(shape) * second_moment, axis=0) - mean**2
    return {
        "min": np.min(np.stack([part["min"] for part in parts]), axis=0),
        "max": np.max(np.stack([part["max"] for part in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(np.maximum(variance, 0.0)),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, list]]:
    return {feature: {name: np.asarray(value).tolist() for name, value in values.items()}
            for feature, values in stats.items()}
