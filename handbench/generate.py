"""Demonstration generation: run a task's scripted expert on the demo seeds and write the dataset.

Episode ``i`` depends only on its seed, and the dataset keeps the first N successful seeds in seed
order, so 1 worker and K workers write identical arrays. Finished episodes are saved one file each in
``<out>.partial/`` as they arrive; an interrupted run is resumed from there, and the final file is
assembled atomically at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from handbench.atomic import atomic_write_text, ensure_writable_dir, removed_if_empty_on_error
from handbench.dataset import (
    FORMAT_VERSION,
    DatasetHeader,
    Episode,
    camera_of,
    flat_observation,
    image_key,
    read_episode_file,
    write_dataset,
    write_episode_file,
)
from handbench.env import DEFAULT_IMAGE_SIZE, OBS_MODES, HandEnv
from handbench.errors import HandbenchError, unknown_choice
from handbench.hands import HANDS, get_hand
from handbench.locking import output_lock
from handbench.parallel import WorkerPool, cluster_address, probe_address
from handbench.protocol import DEFAULT_PROTOCOL, load_protocol
from handbench.registry import env_id, get_task_class, make_env
from handbench.rollout import EpisodeDriver, EpisodeRequest, run_lanes
from handbench.seeding import EVAL_SEED_BASE, demo_seeds
from handbench.task import Task
from handbench.version import __version__

GIVE_UP_SEEDS = 25  # generate-demos stops once the expert has failed every one of the split's first 25 seeds


@dataclass(frozen=True)
class EnvConfig:
    """Everything needed to build the same env in any process."""

    task: str
    hand: str
    obs_mode: str = "state"
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    version: int | None = None  # task version (None: the newest registered)
    hand_version: int | None = None  # hand version (None: the newest registered)

    def validate(self) -> None:
        get_task_class(self.task, self.version)
        if self.hand not in HANDS:
            raise unknown_choice("hand", self.hand, HANDS)
        get_hand(self.hand, self.hand_version)
        if self.obs_mode not in OBS_MODES:
            raise unknown_choice("observation mode", self.obs_mode, OBS_MODES)

    def make(self) -> HandEnv:
        cameras = self.cameras if self.obs_mode == "pixels" else None
        return make_env(self.task, self.hand, self.version, self.hand_version, obs_mode=self.obs_mode, cameras=cameras,
                        image_size=self.image_size)


def run_expert_episode(env: HandEnv, seed: int, action_noise: float = 0.0, record: bool = True) -> Episode:
    """Roll out the task's expert from ``seed`` (the rollout engine); with ``record``, keep observations, actions
    and states.

    The observation after the last action (and its simulator state) is recorded too: it is the dataset's
    ``next_obs`` for the last step.
    """
    trace = next(run_lanes([env], expert_driver(action_noise), [expert_request(env, seed, record)]))
    if trace.error and not trace.physics_error:
        raise HandbenchError(f"the {env.task.name} expert failed on seed {seed}: {trace.error}")
    observations: dict[str, list[np.ndarray]] = {}
    for state, pixels in trace.observations:
        for key, value in flat_observation(state, pixels).items():
            observations.setdefault(key, []).append(value)
    return Episode(
        seed=int(seed), success=trace.success_at_end, strategy=trace.strategy, action_noise=float(action_noise),
        episode_params=trace.episode_params,
        actions=np.asarray(trace.actions, dtype=np.float32).reshape(len(trace.actions), -1),
        observations={key: np.stack(values) for key, values in observations.items()},
        rewards=np.asarray(trace.rewards, dtype=np.float32),
        states=np.asarray(trace.states, dtype=np.float64) if record else np.zeros((0, 0)),
        final_observation=flat_observation(*trace.final_observation) if record else {},
        final_state=trace.final_state if record else np.zeros(0),
        physics_error=trace.physics_error,
    )


def expert_driver(action_noise: float = 0.0) -> EpisodeDriver:
    """The scripted expert in the rollout engine: built per episode from the env and the seed."""
    return EpisodeDriver(lambda env, seed: env.make_expert(seed, action_noise), 1)


def expert_request(env: HandEnv, seed: int, record: bool) -> EpisodeRequest:
    """A demo episode: the task's full length, ended by success or truncation; the expert's actions are
    recorded as it gave them (the env clips them to the actuators' range)."""
    return EpisodeRequest(seed=int(seed), max_steps=env.task.max_episode_steps, record=record, check_actions=False)


class ExpertRunner:
    """Runs expert episodes; holds its envs (one per config), built once and reused.

    A worker of :class:`handbench.parallel.WorkerPool`: in this process (``workers=0``) or a Ray actor.
    """

    def __init__(self) -> None:
        self._envs: dict[EnvConfig, HandEnv] = {}

    def env(self, config: EnvConfig) -> HandEnv:
        if config not in self._envs:
            self._envs[config] = config.make()
        return self._envs[config]

    def record(self, config: EnvConfig, seed: int, action_noise: float) -> Episode:
        return run_expert_episode(self.env(config), seed, action_noise, record=True)

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


# ---------------------------------------------------------------------------------------------- generation
DEMO_SPLIT_SIZE = EVAL_SEED_BASE  # demo seeds are 0 .. EVAL_SEED_BASE - 1


@dataclass(frozen=True)
class GenerateConfig:
    env: EnvConfig
    num_demos: int
    workers: int = 0
    action_noise: float = 0.0
    out: Path | None = None
    overwrite: bool = False
    ray_address: str | None = None
    progress: bool = True
    protocol: str = DEFAULT_PROTOCOL  # the dataset records it; the task version is the one it pins

    @property
    def out_path(self) -> Path:
        return Path(self.out) if self.out else default_output(self.env.task, self.env.hand)


@dataclass
class GenerateReport:
    path: Path
    num_demos: int
    num_failed: int
    failed_seeds: list[int] = field(default_factory=list)
    resumed: int = 0
    physics_error_seeds: list[int] = field(default_factory=list)  # failed seeds the simulation broke on


def default_output(task: str, hand: str) -> Path:
    return Path("demos") / f"{task}-{hand}.hdf5"


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def build_header(env: HandEnv, config: GenerateConfig, failed_seeds: list[int]) -> DatasetHeader:
    task = env.task
    pixels = config.env.obs_mode == "pixels"
    return DatasetHeader(
        task=task.name, task_version=int(task.version), hand=config.env.hand, hand_version=int(env.hand.spec.version),
        env_name=env_id(task.name, config.env.hand, task.version),
        expert_version=int(task.expert.version_for(env.hand.spec)), model_hash=env.model_hash,
        obs_mode=config.env.obs_mode, cameras=list(config.env.cameras) if pixels else [],
        image_size=list(config.env.image_size), frame_skip=int(env.frame_skip), control_dt=float(env.dt),
        action_noise=float(config.action_noise), protocol=config.protocol,
        handbench_version=__version__, mujoco_version=mujoco.__version__, failed_seeds=failed_seeds,
        action_low=env.action_space.low.tolist(), action_high=env.action_space.high.tolist(),
    )


def _manifest(header: DatasetHeader) -> dict[str, Any]:
    """What must match for episodes saved by an earlier run to be reused."""
    keep = ("task", "task_version", "hand", "expert_version", "model_hash", "obs_mode", "cameras", "image_size",
            "action_noise", "handbench_version", "mujoco_version")
    values = asdict(header)
    return {"format_version": FORMAT_VERSION, **{key: values[key] for key in keep}}


def action_noise_warning(task: type[Task], action_noise: float) -> str:
    """One line when ``action_noise`` is above the level at which the task's expert was measured to still reach
    95% (``Task.expert_noise_limit``), or is any noise for an expert whose limit was not measured (it claims no
    level, but says so: such an expert may fail every seed, and generation then runs on); else ""."""
    if task.expert_noise_limit is None:
        if action_noise <= 0:
            return ""
        return (f"warning: --action-noise {action_noise:g}: the {task.name} v{task.version} expert's tolerance to "
                "action noise was not measured (README, 'Action noise'); failed seeds are skipped, and generation "
                f"stops if the expert fails all of the demo split's first {GIVE_UP_SEEDS} seeds")
    if action_noise <= task.expert_noise_limit:
        return ""
    return (f"warning: --action-noise {action_noise:g} is above {task.expert_noise_limit:g}, the highest level at "
            f"which the {task.name} v{task.version} expert was measured to still succeed 95% of the time: many seeds "
            "will fail and be skipped (README, 'Action noise')")


def pin_task_version(config: GenerateConfig) -> GenerateConfig:
    """``config`` with its env at the task and hand versions its protocol pins; refuses another explicit one."""
    protocol = load_protocol(config.protocol)
    pinned = protocol.task(config.env.task).task_version
    if config.env.version is not None and config.env.version != pinned:
        raise HandbenchError(f"protocol {config.protocol} pins {config.env.task} v{pinned}, not v{config.env.version}")
    hand_pinned = protocol.hand_version(config.env.hand)
    if config.env.hand_version is not None and config.env.hand_version != hand_pinned:
        raise HandbenchError(f"protocol {config.protocol} pins hand {config.env.hand} v{hand_pinned}, not "
                             f"v{config.env.hand_version}")
    return replace(config, env=replace(config.env, version=pinned, hand_version=hand_pinned))


def validate_config(config: GenerateConfig) -> None:
    config.env.validate()
    if not 1 <= config.num_demos <= DEMO_SPLIT_SIZE:
        raise HandbenchError(f"--num-demos must be in 1..{DEMO_SPLIT_SIZE:,} (the demo split's seeds), "
                             f"got {config.num_demos}")
    if config.workers < 0:
        raise HandbenchError(f"--workers must be >= 0 (0 runs in this process), got {config.workers}")
    if not (0.0 <= config.action_noise < 1.0):  # also refuses nan
        raise HandbenchError(f"--action-noise must be in [0, 1) (a fraction of each actuator's range), "
                             f"got {config.action_noise}")
    if config.env.obs_mode == "pixels" and not config.env.cameras:
        raise HandbenchError("--obs pixels needs at least one camera (--cameras)")
    address = cluster_address(config.ray_address)
    if config.workers and address:
        probe_address(address)  # before any output exists: a dead cluster fails in seconds, in one line


def generate_demos(config: GenerateConfig) -> GenerateReport:
    """Collect ``num_demos`` successful expert demonstrations and write the dataset atomically."""
    validate_config(config)
    config = pin_task_version(config)
    out = config.out_path
    if out.is_dir():
        raise HandbenchError(f"--out {out} is a directory; give a file path, e.g. "
                             f"{out / default_output(config.env.task, config.env.hand).name}")
    # The lock is held until the dataset is written: no other run touches out or its .partial/. A run refused
    # before its first episode leaves no folder it made behind.
    with removed_if_empty_on_error(out.parent), output_lock(out):
        return _generate_locked(config, out)


def _generate_locked(config: GenerateConfig, out: Path) -> GenerateReport:
    if out.exists() and not config.overwrite:
        raise HandbenchError(f"{out} already exists; pass --overwrite to replace it")
    probe_env = config.env.make()  # fails early on bad cameras / sizes, and gives the provenance
    if config.env.obs_mode == "pixels":
        probe_env.render_camera(config.env.cameras[0], (8, 8))  # fails early, naming the packages to install
    header = build_header(probe_env, config, [])
    probe_env.close()

    store = PartialStore(partial_dir(out), _manifest(header), discard_mismatch=config.overwrite)
    done = store.load()
    resumed = len(done)
    frontier = {"next": 0}

    def successes_below_frontier() -> int:
        return sum(1 for seed, ok in done.items() if ok and seed < frontier["next"])

    def pending() -> Iterator[tuple]:
        for seed in demo_seeds():
            frontier["next"] = seed
            if successes_below_frontier() >= config.num_demos:
                return
            if seed not in done:
                yield (config.env, seed, config.action_noise)

    _stop_if_hopeless(config, done, store.directory)
    with WorkerPool(ExpertRunner, (), config.workers, config.num_demos, config.ray_address) as pool:
        progress = _progress_bar(config, initial=min(sum(done.values()), config.num_demos))
        try:
            for episode in pool.map_unordered("record", pending()):
                store.save(episode)
                done[episode.seed] = episode.success
                _stop_if_hopeless(config, done, store.directory)
                if episode.success and progress.n < config.num_demos:
                    progress.update(1)
                progress.set_postfix(failed=sum(1 for ok in done.values() if not ok), refresh=False)
        finally:
            progress.close()

    # Every seed below the frontier is finished: the first N successes there are the dataset.
    finished = sorted(seed for seed in done if seed < frontier["next"])
    kept = [seed for seed in finished if done[seed]][: config.num_demos]
    failed = [seed for seed in finished if not done[seed] and seed < kept[-1]]
    header.failed_seeds = failed
    unstable = store.physics_errors()
    write_dataset(out, header, (store.checked_episode(seed, header) for seed in kept))
    store.remove()
    return GenerateReport(out, len(kept), len(failed), failed, resumed, [s for s in failed if s in unstable])


def _stop_if_hopeless(config: GenerateConfig, done: dict[int, bool], partial: Path) -> None:
    """Raise :class:`HandbenchError` when the expert failed each of the demo split's first :data:`GIVE_UP_SEEDS`
    seeds (too much ``--action-noise``, or an expert that cannot do the task with this hand): generation would
    otherwise run through the whole split. It depends on those seeds' outcomes only, never on scheduling; the
    finished episodes stay in ``partial``."""
    first = range(GIVE_UP_SEEDS)  # demo_seeds() starts at 0
    if not all(seed in done and not done[seed] for seed in first):
        return
    noise = (f" at --action-noise {config.action_noise:g} (lower it: README, 'Action noise')"
             if config.action_noise > 0 else "")
    raise HandbenchError(f"the {config.env.task} expert failed all of the first {GIVE_UP_SEEDS} demo seeds "
                         f"(0-{GIVE_UP_SEEDS - 1}) with {config.env.hand}{noise}; stopped instead of trying the rest "
                         f"of the split (their episodes are in {partial}; --overwrite starts over)")


def _progress_bar(config: GenerateConfig, initial: int):
    from tqdm import tqdm

    return tqdm(total=config.num_demos, initial=initial, unit="demo", disable=not config.progress,
                desc=f"{config.env.task}/{config.env.hand}", dynamic_ncols=True)


class PartialStore:
    """Finished episodes of an unfinished run: ``seed_<n>.hdf5`` (success) or ``seed_<n>.failed``."""

    MANIFEST = "manifest.json"

    def __init__(self, directory: Path, manifest: dict[str, Any], discard_mismatch: bool = False) -> None:
        self.directory = directory
        self.manifest = manifest
        self.discard_mismatch = discard_mismatch

    def load(self) -> dict[int, bool]:
        """Seeds already finished -> success; creates the directory (with its manifest) if absent."""
        manifest_path = self.directory / self.MANIFEST
        if self.directory.exists():
            try:
                stored = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                stored = None
            if stored != self.manifest:
                if not self.discard_mismatch:
                    differ = sorted(k for k in self.manifest if not stored or stored.get(k) != self.manifest[k])
                    raise HandbenchError(
                        f"{self.directory} holds episodes of an unfinished run with other settings "
                        f"({', '.join(differ)} differ); pass --overwrite to discard them")
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            ensure_writable_dir(self.directory)
            atomic_write_text(manifest_path, json.dumps(self.manifest, indent=1, sort_keys=True))
        done: dict[int, bool] = {}
        for path in self.directory.iterdir():
            stem, _, suffix = path.name.partition(".")
            if not (stem.startswith("seed_") and stem[5:].isdigit() and suffix in ("hdf5", "failed")):
                continue
            seed = int(stem[5:])
            if suffix == "hdf5" and _episode_file_problem(path, seed, self.manifest) is not None:
                path.unlink()  # unreadable or foreign: that episode is run again
                continue
            done[seed] = suffix == "hdf5"
        return done

    def _path(self, seed: int, success: bool) -> Path:
        return self.directory / f"seed_{seed:06d}.{'hdf5' if success else 'failed'}"

    def save(self, episode: Episode) -> None:
        if episode.success:
            write_episode_file(self._path(episode.seed, True), episode)
        else:
            atomic_write_text(self._path(episode.seed, False),
                              json.dumps({"seed": episode.seed, "num_samples": episode.num_samples,
                                          "physics_error": episode.physics_error}))

    def physics_errors(self) -> set[int]:
        """Failed seeds whose episode ended on a physics failure."""
        seeds = set()
        for path in self.directory.glob("seed_*.failed"):
            try:
                if json.loads(path.read_text()).get("physics_error"):
                    seeds.add(int(path.name[5:].partition(".")[0]))
            except (OSError, ValueError):
                continue  # an unreadable marker still counts as failed, just not as a physics failure
        return seeds

    def episode(self, seed: int) -> Episode:
        return read_episode_file(self._path(seed, True))

    def checked_episode(self, seed: int, header: DatasetHeader) -> Episode:
        """The saved episode of ``seed``, refused in one line unless it matches the dataset's header."""
        episode = self.episode(seed)
        shapes = {key: tuple(value.shape[1:]) for key, value in episode.observations.items()}
        problem = _episode_problem(episode.seed, seed, episode.action_noise, shapes, _manifest(header))
        if problem:
            self._path(seed, True).unlink()
            raise HandbenchError(f"{self.directory}: episode of seed {seed} {problem}; it was removed, "
                                 "rerun the same command to run it again")
        return episode

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _episode_problem(stored_seed: int, seed: int, action_noise: float, obs_shapes: dict[str, tuple[int, ...]],
                     manifest: dict[str, Any]) -> str | None:
    """Why a saved episode does not belong to the run described by ``manifest`` (None if it does)."""
    if stored_seed != seed:
        return f"holds seed {stored_seed}"
    if action_noise != manifest["action_noise"]:
        return f"has action noise {action_noise}, the dataset {manifest['action_noise']}"
    cameras = sorted(camera for camera in map(camera_of, obs_shapes) if camera is not None)
    wanted = sorted(manifest["cameras"]) if manifest["obs_mode"] == "pixels" else []
    if cameras != wanted:
        return f"has images of cameras {cameras}, the dataset {wanted}"
    for camera in cameras:
        shape = obs_shapes[image_key(camera)]
        if list(shape) != [*manifest["image_size"], 3]:
            return f"has {camera} images of shape {shape}, the dataset {(*manifest['image_size'], 3)}"
    return None


def _episode_file_problem(path: Path, seed: int, manifest: dict[str, Any]) -> str | None:
    """:func:`_episode_problem` for a saved episode file, reading only its attributes and shapes."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            group = file["demo"]
            shapes: dict[str, tuple[int, ...]] = {}
            group["obs"].visititems(lambda name, item: shapes.__setitem__(name, item.shape[1:])
                                    if isinstance(item, h5py.Dataset) else None)
            return _episode_problem(int(group.attrs["seed"]), seed, float(group.attrs["action_noise"]), shapes,
                                    manifest)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"is unreadable ({exc})"
