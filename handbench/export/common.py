"""What every exporter reads from a :class:`handbench.dataset.DemoDataset`: rate, cameras, state arrays."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from handbench.dataset import STATE_OBS_KEYS, DemoDataset, Episode, camera_of


def dataset_fps(dataset: DemoDataset) -> float:
    """Control rate in frames per second (one frame per env step)."""
    fps = 1.0 / float(dataset.header.control_dt)
    return float(round(fps)) if abs(fps - round(fps)) < 1e-6 else fps


def dataset_cameras(dataset: DemoDataset) -> list[str]:
    return [camera for camera in map(camera_of, dataset.obs_keys) if camera is not None]


def state_arrays(episode: Episode) -> dict[str, np.ndarray]:
    """The state observations of an episode, in the canonical order."""
    return {key: episode.observations[key] for key in STATE_OBS_KEYS if key in episode.observations}


def provenance(dataset: DemoDataset) -> dict[str, Any]:
    """The dataset's header attributes (how it was made), copied into every export."""
    attrs = dataset.attrs
    attrs.pop("seeds", None)  # per-episode seeds are exported with each episode
    attrs["env_args"] = json.loads(attrs["env_args"])
    return {"source": dataset.path.name, **attrs}
