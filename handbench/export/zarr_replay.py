"""Export to Diffusion Policy's zarr replay buffer (zarr format v2, which its ReplayBuffer opens).

Layout::

    data/action (N, A) float32      data/state (N, S) float32 (agent_pos)
    data/environment_state, data/tactile (N, .) float32 when present
    data/reward (N,) float32        data/done (N,) bool
    data/img_<cam> (N, H, W, 3) uint8 for each camera
    meta/episode_ends (E,) int64    (exclusive end index of each episode, as ReplayBuffer expects)
    meta/episode_seeds (E,) int64   meta/episode_success (E,) bool

All episodes are concatenated along the first axis. Root attrs ``handbench`` keep fps and the provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from handbench.dataset import DemoDataset, Episode
from handbench.errors import HandbenchError
from handbench.export.common import dataset_cameras, dataset_fps, provenance, state_arrays

STATE_KEYS = {"agent_pos": "state", "environment_state": "environment_state", "tactile": "tactile"}
CHUNK_BYTES = 2 * 1024 * 1024


def image_key(camera: str) -> str:
    return f"img_{camera}"


def _episode_arrays(episode: Episode, cameras: list[str]) -> dict[str, np.ndarray]:
    arrays = {"action": episode.actions.astype(np.float32)}
    arrays.update({STATE_KEYS[key]: value.astype(np.float32) for key, value in state_arrays(episode).items()})
    arrays["reward"] = episode.rewards.astype(np.float32).reshape(-1)
    arrays["done"] = episode.dones.astype(bool).reshape(-1)
    arrays.update({image_key(cam): episode.pixels(cam).astype(np.uint8) for cam in cameras})
    return arrays


def _time_chunk(step_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Steps per chunk so a chunk holds about CHUNK_BYTES (whole frames for images)."""
    step_bytes = int(np.prod(step_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return int(max(1, min(10_000, CHUNK_BYTES // max(step_bytes, 1))))


def export_zarr(dataset: DemoDataset, out_dir: Path) -> dict[str, Any]:
    """Write ``dataset`` as a Diffusion Policy replay buffer into the (empty) directory ``out_dir``."""
    import zarr

    cameras = dataset_cameras(dataset)
    root = zarr.open_group(str(out_dir), mode="w", zarr_format=2)
    data = root.require_group("data")
    arrays: dict[str, Any] = {}
    episode_ends: list[int] = []
    seeds: list[int] = []
    successes: list[bool] = []
    total = 0
    for episode in dataset.episodes():
        for key, values in _episode_arrays(episode, cameras).items():
            if key not in arrays:
                step_shape = values.shape[1:]
                arrays[key] = data.create_array(
                    key, shape=(0, *step_shape), dtype=values.dtype,
                    chunks=(_time_chunk(step_shape, values.dtype), *step_shape))
            arrays[key].append(values, axis=0)
        total += episode.num_samples
        episode_ends.append(total)
        seeds.append(episode.seed)
        successes.append(episode.success)
    if not episode_ends:
        raise HandbenchError(f"{dataset.path} holds no episodes; nothing to export")
    meta = root.require_group("meta")
    meta.create_array("episode_ends", data=np.asarray(episode_ends, dtype=np.int64))
    meta.create_array("episode_seeds", data=np.asarray(seeds, dtype=np.int64))
    meta.create_array("episode_success", data=np.asarray(successes, dtype=bool))
    root.attrs["handbench"] = {"fps": dataset_fps(dataset), **provenance(dataset)}
    return {"episodes": len(episode_ends), "frames": total, "cameras": cameras}
