"""Per-feature statistics in LeRobot's form (min, max, mean, std, count), per episode and pooled.

Per-episode statistics are pooled exactly (counts, means and variances combine), so the whole
dataset never has to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STAT_NAMES = ("min", "max", "mean", "std", "count")


def array_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over the first axis of (T, D) or (T,) values; scalars keep a trailing dim of 1."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    return {
        "min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
        "std": values.std(axis=0), "count": np.array([values.shape[0]], dtype=np.int64),
    }


def image_stats(frames: np.ndarray, max_frames: int = 100) -> dict[str, np.ndarray]:
    """Per-channel stats of (T, H, W, 3) uint8 frames scaled to [0, 1], shaped (3, 1, 1) like LeRobot's.

    At most ``max_frames`` evenly spaced frames are used (neighbouring frames are nearly identical).
    """
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    pixels = frames[picks].astype(np.float64).reshape(-1, frames.shape[-1]) / 255.0
    stats = array_stats(pixels)
    out = {key: value.reshape(-1, 1, 1) for key, value in stats.items() if key != "count"}
    out["count"] = np.array([len(picks)], dtype=np.int64)
    return out


def pool_stats(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine stats of disjoint parts into the stats of their union (exact for mean and std)."""
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
