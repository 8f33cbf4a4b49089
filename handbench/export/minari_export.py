"""Export to a Minari dataset (the gymnasium ecosystem's offline-data format, HDF5 backend).

The output folder is a Minari datasets root holding one dataset, ``handbench/<task>-<hand>/expert-v0``
(``expert-pixels-v0`` for a pixels dataset)::

    MINARI_DATASETS_PATH=<out> python -c "import minari; minari.load_dataset('handbench/lift-cube-hb16/expert-v0')"

Each episode has the env's observations in its own observation space (state mode: ``agent_pos``,
``environment_state``, ``tactile``; pixels mode: ``agent_pos``, ``tactile`` and ``pixels/<cam>``), T + 1 of
them: the HDF5's ``obs`` then the final ``next_obs``. Actions, rewards, terminations (the last step of a
successful episode) and truncations (the last step of a failed one) have T entries. Images are stored raw
(``jpeg_encoding=False``), so they equal the HDF5's. The episode's seed is Minari's episode seed, and the
env spec carries the dataset's observation mode, cameras and image size, so
``dataset.recover_environment()`` builds the env the data came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from handbench.dataset import DemoDataset, Episode, image_key
from handbench.errors import HandbenchError
from handbench.export.common import dataset_cameras


def minari_dataset_id(task: str, hand: str, obs_mode: str) -> str:
    """``handbench/<task>-<hand>/expert-v0``, or ``expert-pixels-v0`` for a pixels dataset."""
    name = "expert" if obs_mode == "state" else f"expert-{obs_mode}"
    return f"handbench/{task}-{hand}/{name}-v0"


@contextlib.contextmanager
def _datasets_root(root: Path) -> Iterator[None]:
    """Point Minari at ``root`` for the duration (it reads its root from MINARI_DATASETS_PATH only)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def episode_buffer(episode: Episode, obs_mode: str, cameras: list[str]):
    """One handbench episode as a Minari ``EpisodeBuffer`` (T + 1 observations, T of everything else)."""
    from minari.data_collector import EpisodeBuffer

    observations: dict[str, Any] = {"agent_pos": episode.all_observations("agent_pos")}
    if obs_mode == "state":
        observations["environment_state"] = episode.all_observations("environment_state")
    observations["tactile"] = episode.all_observations("tactile")
    if obs_mode == "pixels":
        observations["pixels"] = {cam: episode.all_observations(image_key(cam)) for cam in cameras}
    ends = episode.dones.astype(bool)
    return EpisodeBuffer(
        seed=int(episode.seed), observations=observations, actions=episode.actions.astype(np.float32),
        rewards=episode.rewards.astype(np.float64).tolist(),
        terminations=(ends & episode.success).tolist(), truncations=(ends & (not episode.success)).tolist())


def export_minari(dataset: DemoDataset, out_dir: Path) -> dict[str, Any]:
    """Write ``dataset`` as a Minari dataset under the (empty) datasets root ``out_dir``."""
    import gymnasium as gym
    import minari

    from handbench.registry import make_env, register_envs

    register_envs()
    header = dataset.header
    cameras = dataset_cameras(dataset)
    env = make_env(header.task, header.hand, header.task_version, header.hand_version, obs_mode=header.obs_mode,
                   cameras=cameras or None, image_size=tuple(header.image_size))
    env.close()
    spec = dataclasses.replace(gym.spec(header.env_name), kwargs={**gym.spec(header.env_name).kwargs,
                                                                   **_spec_kwargs(header.obs_mode, cameras,
                                                                                  header.image_size)})
    buffers = [episode_buffer(episode, header.obs_mode, cameras) for episode in dataset.episodes()]
    if not buffers:
        raise HandbenchError(f"{dataset.path} holds no episodes; nothing to export")
    dataset_id = minari_dataset_id(header.task, header.hand, header.obs_mode)
    with _datasets_root(out_dir), warnings.catch_warnings():
        # handbench has no versioned code link or contact address to give; Minari warns about both
        warnings.filterwarnings("ignore", message="`(code_permalink|author_email)` is set to None")
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=spec, eval_env=spec, author="handbench",
            algorithm_name=f"handbench scripted expert v{header.expert_version}",
            action_space=env.action_space, observation_space=env.observation_space,
            description=f"{header.task} with the {header.hand} hand: {len(buffers)} scripted-expert demonstrations "
                        f"(protocol {header.protocol}, handbench {header.handbench_version}, "
                        f"MuJoCo {header.mujoco_version}); actions are absolute joint-position targets",
            data_format="hdf5", jpeg_encoding=False)
    frames = sum(len(buffer.actions) for buffer in buffers)
    return {"episodes": len(buffers), "frames": frames, "cameras": cameras, "dataset_id": dataset_id}


def _spec_kwargs(obs_mode: str, cameras: list[str], image_size: list[int]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"obs_mode": obs_mode}
    if obs_mode == "pixels":
        kwargs.update(cameras=list(cameras), image_size=tuple(image_size))
    return kwargs
