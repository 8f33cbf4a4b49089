"""The canonical demonstration dataset: HDF5 in robomimic's layout, with provenance and full sim states.

Layout (``FORMAT_VERSION`` 2)::

    data                      attrs: format_version, env_args (JSON), total, provenance (see DatasetHeader)
    data/demo_<i>             attrs: seed, success, num_samples, strategy, action_noise, episode_params (JSON)
        actions               (T, A)     float32  absolute joint-position targets (env_args["action_space"])
        obs/agent_pos         (T, .)     float32
        obs/environment_state (T, .)     float32  (stored in every observation mode)
        obs/tactile           (T, .)     float32
        obs/<cam>_image       (T,H,W,3)  uint8    (pixels mode only; robomimic's image-key naming)
        next_obs/<key>        same keys: next_obs[t] = obs[t + 1]; next_obs[T-1] = the observation after the
                              last action (recorded at generation time, never copied from obs)
        rewards               (T,)       float32
        dones                 (T,)       uint8    1 on the last step
        states                (T, S)     float64  env.full_state() when obs[t] was taken (before actions[t])
        final_state           (S,)       float64  env.full_state() after the last action (for next_obs[T-1])

Every observation key is one flat dataset, as robomimic, srl_il and Diffusion Policy's converters expect;
``env_args`` holds robomimic's ``env_name``/``type``/``env_kwargs`` plus ``action_space`` (the actuators'
bounds and what an action means: actions are NOT scaled to [-1, 1]). ``states`` lets any camera or image
size be re-rendered later (``handbench render``) without rerunning the expert. Files are written
atomically and validated when opened, so a truncated, foreign or version-1 file is refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from handbench.atomic import atomic_path
from handbench.errors import HandbenchError, require_file

FORMAT_VERSION = 2
STATE_OBS_KEYS = ("agent_pos", "environment_state", "tactile")
IMAGE_SUFFIX = "_image"
ACTION_MEANING = ("absolute joint-position targets for every actuator (wrist then fingers; radians for hinge "
                  "joints, metres for slide joints), clipped by the env to [low, high]; not normalized to [-1, 1]")
_FLOAT_DATASETS = {"actions": np.float32, "rewards": np.float32, "states": np.float64}


def image_key(camera: str) -> str:
    """The dataset key of a camera's images (robomimic's ``<name>_image`` convention)."""
    return camera + IMAGE_SUFFIX


def camera_of(key: str) -> str | None:
    """The camera an observation key holds images of, or None for a state key."""
    return key[: -len(IMAGE_SUFFIX)] if key.endswith(IMAGE_SUFFIX) else None


def flat_observation(state: dict[str, np.ndarray], pixels: dict[str, np.ndarray] | None = None
                     ) -> dict[str, np.ndarray]:
    """One step's dataset observation: the state keys plus ``<cam>_image`` for each camera frame."""
    return {**state, **{image_key(camera): frame for camera, frame in (pixels or {}).items()}}


@dataclass
class Episode:
    """One demonstration, in memory.

    ``observations`` maps dataset keys (state keys, ``<cam>_image``) to (T, ...) arrays, taken before each
    action; ``final_observation`` holds the same keys for the one observation after the last action, and
    ``final_state`` the simulator state then. Together they give robomimic's ``next_obs`` and Minari's T + 1
    observations.
    """

    seed: int
    success: bool
    strategy: str
    action_noise: float
    episode_params: dict[str, Any]
    actions: np.ndarray
    observations: dict[str, np.ndarray]
    rewards: np.ndarray
    states: np.ndarray
    final_observation: dict[str, np.ndarray]
    final_state: np.ndarray
    physics_error: str = ""  # why the simulation failed (HandEnv.step); such episodes are never kept

    @property
    def num_samples(self) -> int:
        return int(self.actions.shape[0])

    @property
    def dones(self) -> np.ndarray:
        dones = np.zeros(self.num_samples, dtype=np.uint8)
        if self.num_samples:
            dones[-1] = 1
        return dones

    def pixels(self, camera: str) -> np.ndarray:
        return self.observations[image_key(camera)]

    def next_observations(self, key: str) -> np.ndarray:
        """(T, ...) observations after each action: ``observations[key][1:]`` then the final one."""
        return np.concatenate([self.observations[key][1:], self.final_observation[key][None]])

    def all_observations(self, key: str) -> np.ndarray:
        """(T + 1, ...) every observation of the episode, the final one included (Minari's convention)."""
        return np.concatenate([self.observations[key], self.final_observation[key][None]])


@dataclass
class DatasetHeader:
    """Dataset-level attributes: how the data was made (provenance) and how to rebuild its env."""

    task: str
    task_version: int
    hand: str
    env_name: str
    expert_version: int
    model_hash: str
    obs_mode: str
    cameras: list[str]
    image_size: list[int]
    frame_skip: int
    control_dt: float
    action_noise: float
    protocol: str
    handbench_version: str
    mujoco_version: str
    failed_seeds: list[int] = field(default_factory=list)
    created: str = ""
    hand_version: int = 0  # the hand's version (handbench.hands); stored only when not 0, absent reads as 0

    action_low: list[float] = field(default_factory=list)
    action_high: list[float] = field(default_factory=list)

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return {"task": self.task, "hand": self.hand, "obs_mode": self.obs_mode,
                "cameras": list(self.cameras), "image_size": list(self.image_size)}

    @property
    def env_args(self) -> dict[str, Any]:
        """robomimic's env_args (env_name, type, env_kwargs) plus the action space's bounds and meaning."""
        return {"env_name": self.env_name, "type": "handbench", "env_kwargs": self.env_kwargs,
                "action_space": {"low": list(self.action_low), "high": list(self.action_high),
                                 "meaning": ACTION_MEANING}}


_JSON_ATTRS = ("cameras", "image_size", "failed_seeds")
_ENV_ARGS_FIELDS = ("env_name", "action_low", "action_high")  # stored inside env_args, not as attributes
_HEADER_ATTRS = tuple(name for name in DatasetHeader.__dataclass_fields__ if name not in _ENV_ARGS_FIELDS)
_OPTIONAL_ATTRS = {"hand_version": 0}  # attributes absent from older datasets, and what their absence means
_DEMO_ATTRS = ("seed", "success", "num_samples", "strategy", "action_noise", "episode_params")


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------- writing
def _write_episode_group(group: h5py.Group, episode: Episode) -> None:
    group.attrs["seed"] = int(episode.seed)
    group.attrs["success"] = bool(episode.success)
    group.attrs["num_samples"] = episode.num_samples
    group.attrs["strategy"] = str(episode.strategy)
    group.attrs["action_noise"] = float(episode.action_noise)
    group.attrs["episode_params"] = json.dumps(episode.episode_params, sort_keys=True)
    group.create_dataset("actions", data=np.asarray(episode.actions, dtype=np.float32))
    missing = sorted(set(episode.observations) ^ set(episode.final_observation))
    if missing:
        raise ValueError(f"episode {episode.seed}: observations and final_observation differ in keys {missing}")
    for key in episode.observations:
        _write_observation(group, f"obs/{key}", key, episode.observations[key])
        _write_observation(group, f"next_obs/{key}", key, episode.next_observations(key))
    group.create_dataset("rewards", data=np.asarray(episode.rewards, dtype=np.float32))
    group.create_dataset("dones", data=episode.dones)
    group.create_dataset("states", data=np.asarray(episode.states, dtype=np.float64))
    group.create_dataset("final_state", data=np.asarray(episode.final_state, dtype=np.float64))


def _write_observation(group: h5py.Group, name: str, key: str, value: np.ndarray) -> None:
    if camera_of(key) is not None:
        group.create_dataset(name, data=np.asarray(value, dtype=np.uint8), chunks=(1, *np.shape(value)[1:]),
                             compression="gzip", compression_opts=4)
    else:
        group.create_dataset(name, data=np.asarray(value, dtype=np.float32))


def _read_episode_group(group: h5py.Group, obs_keys: Iterable[str] | None = None) -> Episode:
    keys = _obs_keys(group) if obs_keys is None else list(obs_keys)
    return Episode(
        seed=int(group.attrs["seed"]),
        success=bool(group.attrs["success"]),
        strategy=str(group.attrs["strategy"]),
        action_noise=float(group.attrs["action_noise"]),
        episode_params=json.loads(group.attrs["episode_params"]),
        actions=group["actions"][()],
        observations={key: group[f"obs/{key}"][()] for key in keys},
        rewards=group["rewards"][()],
        states=group["states"][()],
        final_observation={key: group[f"next_obs/{key}"][-1] for key in keys},
        final_state=group["final_state"][()],
    )


def _obs_keys(group: h5py.Group) -> list[str]:
    """State keys in canonical order, then image keys sorted by camera."""
    keys = [key for key in STATE_OBS_KEYS if key in group["obs"]]
    return keys + sorted(key for key in group["obs"] if camera_of(key) is not None)


def write_dataset(path: str | os.PathLike, header: DatasetHeader, episodes: Iterable[Episode]) -> int:
    """Write episodes (streamed, in order) to ``path`` atomically; returns the number of demos."""
    path = Path(path)
    with atomic_path(path, suffix=".hdf5") as tmp, h5py.File(tmp, "w") as file:
        data = file.create_group("data")
        seeds: list[int] = []
        total = 0
        for index, episode in enumerate(episodes):
            _write_episode_group(data.create_group(f"demo_{index}"), episode)
            seeds.append(int(episode.seed))
            total += episode.num_samples
        _write_header(data, header, seeds, total)
    return len(seeds)


def _write_header(data: h5py.Group, header: DatasetHeader, seeds: list[int], total: int) -> None:
    data.attrs["format_version"] = FORMAT_VERSION
    data.attrs["env_args"] = json.dumps(header.env_args)
    data.attrs["total"] = int(total)
    data.attrs["num_demos"] = len(seeds)
    data.attrs["seeds"] = json.dumps(seeds)
    data.attrs["num_failed"] = len(header.failed_seeds)
    for name in _HEADER_ATTRS:
        value = getattr(header, name)
        if name == "created":
            value = value or utc_now()
        if name in _OPTIONAL_ATTRS and value == _OPTIONAL_ATTRS[name]:
            continue  # a dataset of hand version 0 has the attributes datasets had before hands had versions
        data.attrs[name] = json.dumps(list(value)) if name in _JSON_ATTRS else value


def write_episode_file(path: str | os.PathLike, episode: Episode) -> None:
    """One episode in its own small HDF5 file (atomic): the unit of resumable generation."""
    with atomic_path(path, suffix=".hdf5") as tmp, h5py.File(tmp, "w") as file:
        _write_episode_group(file.create_group("demo"), episode)


def read_episode_file(path: str | os.PathLike) -> Episode:
    try:
        with h5py.File(path, "r") as file:
            return _read_episode_group(file["demo"])
    except (OSError, KeyError) as exc:
        raise HandbenchError(f"{path}: unreadable episode file ({exc})") from exc


# ---------------------------------------------------------------------------------------------- reading
class DemoDataset:
    """A validated, read-only handbench dataset. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        require_file(self.path, "dataset", "give the .hdf5 file written by generate-demos")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise HandbenchError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        try:
            self.header, self.num_demos, self.total, self.seeds = _validate(self._file, self.path)
        except Exception:
            self._file.close()
            raise

    def __enter__(self) -> DemoDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return self.num_demos

    @property
    def attrs(self) -> dict[str, Any]:
        return {key: _plain(value) for key, value in self._file["data"].attrs.items()}

    @property
    def obs_keys(self) -> list[str]:
        return _obs_keys(self._file["data/demo_0"]) if self.num_demos else list(STATE_OBS_KEYS)

    def group(self, index: int) -> h5py.Group:
        if not 0 <= index < self.num_demos:
            raise HandbenchError(f"{self.path}: no episode {index}; valid: 0..{self.num_demos - 1}")
        return self._file[f"data/demo_{index}"]

    def episode(self, index: int, obs_keys: Iterable[str] | None = None) -> Episode:
        return _read_episode_group(self.group(index), obs_keys)

    def episodes(self, indices: Iterable[int] | None = None,
                 obs_keys: Iterable[str] | None = None) -> Iterator[Episode]:
        """Episodes in order, read one at a time (memory stays at one episode)."""
        keys = list(obs_keys) if obs_keys is not None else None
        for index in range(self.num_demos) if indices is None else indices:
            yield self.episode(index, keys)

    __iter__ = episodes


def open_dataset(path: str | os.PathLike) -> DemoDataset:
    return DemoDataset(path)


def _validate(file: h5py.File, path: Path) -> tuple[DatasetHeader, int, int, list[int]]:
    def fail(problem: str) -> HandbenchError:
        return HandbenchError(f"{path}: invalid handbench dataset: {problem}")

    if "data" not in file or not isinstance(file["data"], h5py.Group):
        raise fail("missing group 'data'")
    data = file["data"]
    attrs = data.attrs
    version = attrs.get("format_version")
    if version is None:
        raise fail("missing attribute data.format_version")
    if int(version) == 1:
        raise HandbenchError(f"{path} is a version-1 handbench dataset (nested obs/pixels, no next_obs), which this "
                             f"handbench no longer reads; regenerate it: {_regenerate_command(attrs, path)}")
    if int(version) != FORMAT_VERSION:
        raise fail(f"format_version {int(version)} is not supported (this handbench reads {FORMAT_VERSION})")
    required = ("env_args", "total", "num_demos", "seeds", *(a for a in _HEADER_ATTRS if a not in _OPTIONAL_ATTRS))
    missing = [name for name in required if name not in attrs]
    if missing:
        raise fail(f"missing attributes {', '.join('data.' + m for m in missing)}")
    try:
        env_args = json.loads(attrs["env_args"])
        values = {name: _plain(attrs[name]) if name in attrs else _OPTIONAL_ATTRS[name] for name in _HEADER_ATTRS}
        for name in _JSON_ATTRS:
            values[name] = json.loads(values[name])
        action_space = env_args["action_space"]
        header = DatasetHeader(env_name=env_args["env_name"], action_low=list(action_space["low"]),
                               action_high=list(action_space["high"]), **values)
        seeds = json.loads(attrs["seeds"])
    except (ValueError, KeyError, TypeError) as exc:
        raise fail(f"malformed attributes ({exc})") from exc
    num_demos, total = int(attrs["num_demos"]), int(attrs["total"])
    if len(seeds) != num_demos:
        raise fail(f"{len(seeds)} seeds recorded for {num_demos} demos")
    expected_groups = {f"demo_{i}" for i in range(num_demos)}
    if set(data) != expected_groups:
        extra = sorted(set(data) - expected_groups)
        missing_groups = sorted(expected_groups - set(data), key=lambda n: int(n.split("_")[1]))
        raise fail(f"demo groups do not match num_demos={num_demos} "
                   f"(missing: {', '.join(missing_groups) or 'none'}; unexpected: {', '.join(extra) or 'none'})")
    widths: dict[str, tuple[int, ...]] = {}
    counted = 0
    for index in range(num_demos):
        counted += _validate_demo(data[f"demo_{index}"], header, seeds[index], widths, fail)
    if counted != total:
        raise fail(f"data.total is {total} but the demos hold {counted} samples")
    return header, num_demos, total, seeds


def _regenerate_command(attrs: h5py.AttributeManager, path: Path) -> str:
    """The ``handbench generate-demos`` command that makes a version-2 file of a version-1 file's demos."""
    try:
        plain = {name: _plain(attrs[name]) for name in ("task", "hand", "obs_mode", "num_demos", "action_noise")}
        command = (f"handbench generate-demos --task {plain['task']} --hand {plain['hand']} "
                   f"--num-demos {plain['num_demos']} --obs {plain['obs_mode']}")
        if plain["obs_mode"] == "pixels":
            height, width = json.loads(_plain(attrs["image_size"]))
            command += f" --cameras {' '.join(json.loads(_plain(attrs['cameras'])))} --image-size {height} {width}"
        if float(plain["action_noise"]):
            command += f" --action-noise {plain['action_noise']}"
    except (KeyError, ValueError, TypeError):
        command = "handbench generate-demos --task TASK --hand HAND --num-demos N"
    return f"{command} --out {path}"


def _validate_demo(group: h5py.Group, header: DatasetHeader, seed: int, widths: dict[str, tuple[int, ...]],
                   fail) -> int:
    name = group.name.lstrip("/")
    missing = [a for a in _DEMO_ATTRS if a not in group.attrs]
    if missing:
        raise fail(f"{name} lacks attributes {', '.join(missing)}")
    if int(group.attrs["seed"]) != seed:
        raise fail(f"{name} has seed {int(group.attrs['seed'])} but data.seeds lists {seed}")
    if float(group.attrs["action_noise"]) != float(header.action_noise):  # episodes of two runs mixed in one file
        raise fail(f"{name} has action noise {float(group.attrs['action_noise'])} but data.action_noise is "
                   f"{header.action_noise}")
    steps = int(group.attrs["num_samples"])
    obs_keys = [*STATE_OBS_KEYS, *(image_key(cam) for cam in header.cameras)]
    expected: dict[str, tuple[Any, int]] = {  # key -> (dtype, ndim)
        "actions": (np.float32, 2), "rewards": (np.float32, 1), "dones": (np.uint8, 1), "states": (np.float64, 2),
        **{f"{part}/{key}": (np.float32, 2) if camera_of(key) is None else (np.uint8, 4)
           for part in ("obs", "next_obs") for key in obs_keys},
    }
    for key, (dtype, ndim) in expected.items():
        if key not in group or not isinstance(group[key], h5py.Dataset):
            raise fail(f"{name} lacks dataset {key}")
        dataset = group[key]
        if dataset.dtype != dtype or dataset.ndim != ndim or dataset.shape[0] != steps:
            raise fail(f"{name}/{key} has shape {dataset.shape} and dtype {dataset.dtype}; expected {ndim} "
                       f"dimensions, {steps} steps, dtype {np.dtype(dtype)}")
        if ndim == 4:
            if list(dataset.shape[1:]) != [*header.image_size, 3]:
                raise fail(f"{name}/{key} has images of shape {dataset.shape[1:]}; expected "
                           f"{(*header.image_size, 3)}")
        elif ndim == 2:
            width = dataset.shape[1:]
            if widths.setdefault(key, width) != width:
                raise fail(f"{name}/{key} has width {width[0]} but demo_0 has {widths[key][0]}")
    for part in ("obs", "next_obs"):
        extra = sorted(set(group[part]) - set(obs_keys))
        if extra:
            raise fail(f"{name}/{part} holds keys {', '.join(extra)} that the header's cameras do not name")
    final = group.get("final_state")
    if not isinstance(final, h5py.Dataset) or final.shape != group["states"].shape[1:]:
        raise fail(f"{name} lacks dataset final_state of shape {group['states'].shape[1:]}")
    if widths.get("actions", (len(header.action_low),)) != (len(header.action_low),) or \
            len(header.action_low) != len(header.action_high):
        raise fail(f"env_args action_space has {len(header.action_low)} bounds; actions have "
                   f"{widths.get('actions', ('?',))[0]} values")
    if steps and group["dones"][-1] != 1:
        raise fail(f"{name}/dones does not end with 1")
    return steps


# ---------------------------------------------------------------------------------------------- hashing
HASHED_ARRAYS = ("actions", "obs", "next_obs", "rewards", "dones")
HASHED_ATTRS = ("format_version", "task", "task_version", "hand", "obs_mode", "cameras", "image_size", "control_dt")


def dataset_hash(path: str | os.PathLike) -> str:
    """The first 16 hex digits of a sha256 over what a learner trains on, and nothing else.

    Covered: per demo, in order, every dataset under ``HASHED_ARRAYS`` (name, dtype, shape and bytes:
    actions, each obs/ and next_obs/ key, rewards, dones), and the data attributes ``HASHED_ATTRS``.
    Not covered: provenance (versions, model hash, creation time, failed seeds, ...), per-demo
    attributes (seed, strategy, episode parameters) and simulator ``states``, which describe where the
    demonstrations came from but do not change what a policy learns from them. So the same
    demonstrations hash the same whoever made them, with any worker count, and checkpoints record it.
    """
    digest = hashlib.sha256()
    with DemoDataset(path) as dataset:
        data = dataset._file["data"]
        attrs = {name: _plain(data.attrs[name]) for name in HASHED_ATTRS}
        digest.update(json.dumps(attrs, sort_keys=True).encode())
        for index in range(dataset.num_demos):
            group = data[f"demo_{index}"]
            digest.update(f"demo_{index}".encode())
            for name in _hashed_datasets(group):
                array = np.ascontiguousarray(group[name][()])
                digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
                digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _hashed_datasets(group: h5py.Group) -> list[str]:
    names: list[str] = []
    for top in HASHED_ARRAYS:
        if isinstance(group[top], h5py.Group):
            names += sorted(f"{top}/{key}" for key in group[top])
        else:
            names.append(top)
    return names


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
