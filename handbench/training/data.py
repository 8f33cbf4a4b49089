"""Canonical HDF5 demos -> in-memory arrays, an episode-wise train/validation split, and training windows.

A window at frame ``t`` holds the observations ``t-To+1 .. t`` and the actions ``t-To+1 .. t-To+Tp``
(Diffusion Policy's convention; with To = 1 it is ACT's ``t .. t+k-1``). Indices before the episode
start repeat the first frame, indices after its end repeat the last action, and ``action_is_pad``
marks the latter two so a loss may ignore them (ACT does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from handbench.dataset import STATE_OBS_KEYS, image_key, open_dataset
from handbench.errors import HandbenchError
from handbench.seeding import stream_rng
from handbench.training.spec import ObsActionSpec

# The env's observation keys a policy reads, per mode (pixels mode sees no privileged object state).
STATE_KEYS = {"state": STATE_OBS_KEYS, "pixels": ("agent_pos", "tactile")}


@dataclass
class DemoData:
    """All frames of some episodes, concatenated; ``episode_ends[i]`` is one past episode i's last frame."""

    spec: ObsActionSpec
    state: np.ndarray  # (N, state_dim) float32
    actions: np.ndarray  # (N, action_dim) float32
    images: np.ndarray | None  # (N, cameras, H, W, 3) uint8, pixels mode only
    episode_ends: np.ndarray  # (E,) int64
    episode_names: tuple[str, ...]

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    def episode_bounds(self) -> np.ndarray:
        """(E, 2) start and end (exclusive) frame of each episode."""
        starts = np.concatenate([[0], self.episode_ends[:-1]])
        return np.stack([starts, self.episode_ends], axis=1)

    def select(self, episodes: np.ndarray) -> DemoData:
        """The subset made of the given episode indices (in that order)."""
        bounds = self.episode_bounds()[np.asarray(episodes, dtype=np.int64)]
        frames = np.concatenate([np.arange(s, e) for s, e in bounds]) if len(bounds) else np.zeros(0, np.int64)
        return replace(self, state=self.state[frames], actions=self.actions[frames],
                       images=None if self.images is None else self.images[frames],
                       episode_ends=np.cumsum(bounds[:, 1] - bounds[:, 0]),
                       episode_names=tuple(self.episode_names[i] for i in episodes))


def load_demos(path: str | Path, obs_mode: str | None = None) -> tuple[DemoData, dict[str, Any]]:
    """Read every demo of a canonical dataset (validated by :mod:`handbench.dataset`) and its attributes.

    ``obs_mode`` defaults to the mode the dataset was recorded in; state mode works on any dataset
    (every mode stores ``environment_state``), pixels mode needs a dataset recorded with cameras.
    """
    with open_dataset(path) as dataset:
        header, attrs = dataset.header, dataset.attrs
        obs_mode = obs_mode or header.obs_mode
        if obs_mode not in STATE_KEYS:
            raise HandbenchError(f"unknown observation mode {obs_mode!r}; valid: {', '.join(STATE_KEYS)}")
        cameras: tuple[str, ...] = ()
        if obs_mode == "pixels":
            if header.obs_mode != "pixels" or not header.cameras:
                raise HandbenchError(f"dataset {path} has no pixel observations (recorded in {header.obs_mode!r} "
                                     "mode); use --obs state, or generate demos with --obs pixels")
            cameras = tuple(header.cameras)
        state_keys = STATE_KEYS[obs_mode]
        keys = list(state_keys) + [image_key(camera) for camera in cameras]
        states, actions, images, ends, names = [], [], [], [], []
        for index, episode in enumerate(dataset.episodes(obs_keys=keys)):
            states.append(np.concatenate([episode.observations[k] for k in state_keys], axis=1).astype(np.float32))
            actions.append(episode.actions.astype(np.float32))
            if cameras:
                images.append(np.stack([episode.pixels(camera) for camera in cameras], axis=1))
            ends.append(episode.num_samples)
            names.append(f"demo_{index}")
    if not names or sum(ends) == 0:
        raise HandbenchError(f"dataset {path} holds no samples to train on")
    image_array = np.concatenate(images) if cameras else None
    spec = ObsActionSpec(obs_mode=obs_mode, state_keys=state_keys, state_dim=states[0].shape[1],
                         action_dim=actions[0].shape[1], cameras=cameras,
                         image_size=tuple(image_array.shape[2:4]) if cameras else (0, 0))
    data = DemoData(spec=spec, state=np.concatenate(states), actions=np.concatenate(actions), images=image_array,
                    episode_ends=np.cumsum(ends), episode_names=tuple(names))
    return data, attrs


def split_episodes(num_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices of the training and validation splits (no validation with a single episode)."""
    order = stream_rng("data_split", seed).permutation(num_episodes)
    num_val = 0 if num_episodes < 2 else min(num_episodes - 1, max(1, round(val_fraction * num_episodes)))
    if val_fraction <= 0:
        num_val = 0
    return np.sort(order[num_val:]), np.sort(order[:num_val])


class WindowSampler:
    """Gathers (observation window, action window) batches from a DemoData without copying episodes."""

    def __init__(self, data: DemoData, obs_steps: int, horizon: int) -> None:
        self.data, self.obs_steps, self.horizon = data, obs_steps, horizon
        bounds = data.episode_bounds()
        episode_of_frame = np.repeat(np.arange(data.num_episodes), bounds[:, 1] - bounds[:, 0])
        self.first = bounds[episode_of_frame, 0]
        self.last = bounds[episode_of_frame, 1] - 1

    def __len__(self) -> int:
        return len(self.first)

    def batch(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ending (observations) at ``frames``: numpy arrays keyed state/action/action_is_pad[/images]."""
        frames = np.asarray(frames, dtype=np.int64)
        first, last = self.first[frames, None], self.last[frames, None]
        base = frames[:, None] - (self.obs_steps - 1)
        obs_index = np.clip(base + np.arange(self.obs_steps), first, last)
        raw_action_index = base + np.arange(self.horizon)
        out = {
            "state": self.data.state[obs_index],
            "action": self.data.actions[np.clip(raw_action_index, first, last)],
            "action_is_pad": (raw_action_index < first) | (raw_action_index > last),
        }
        if self.data.images is not None:
            out["images"] = self.data.images[obs_index]
        return out
