"""Can an in-range action fling an object? The random floor's episodes, watched for how high and fast objects go.

A hand whose actuators a real hand could have cannot throw a cube across the room, whatever it is told: this runs
the random floor (``handbench.floors.RandomPolicy``, uniform over the action space, seeded per episode) on a
protocol's eval seeds and records, per episode, the highest any free object's centre gets above the table top and
its fastest linear speed. An episode ended by a physics failure (``info["physics_error"]``) is counted apart: its
last state is MuJoCo's reset, not the episode's. ``handbench check-physics`` prints the figures per task and hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from handbench import registry
from handbench.errors import HandbenchError
from handbench.floors import RandomPolicy
from handbench.protocol import load_protocol
from handbench.rules import MAX_OBJECT_HEIGHT

if TYPE_CHECKING:
    from handbench.env import HandEnv


@dataclass(frozen=True)
class FlingEpisode:
    seed: int
    highest: float  # m, the highest a free object's centre got above the table top (0 without free objects)
    fastest: float  # m/s, the fastest linear speed of a free object
    physics_error: str  # "" unless the episode ended in a physics failure


@dataclass(frozen=True)
class FlingCheck:
    """The random floor's episodes of one task and hand, and the height bound they are held to."""

    task: str
    hand: str
    hand_version: int
    episodes: tuple[FlingEpisode, ...]
    bound: float = MAX_OBJECT_HEIGHT  # m above the table
    task_version: int = 0

    @property
    def clean(self) -> tuple[FlingEpisode, ...]:
        return tuple(e for e in self.episodes if not e.physics_error)

    @property
    def above(self) -> tuple[int, ...]:
        """Seeds of episodes (without a physics failure) in which an object went above ``bound``."""
        return tuple(e.seed for e in self.clean if e.highest > self.bound)

    @property
    def physics_errors(self) -> tuple[int, ...]:
        return tuple(e.seed for e in self.episodes if e.physics_error)

    @property
    def highest(self) -> FlingEpisode | None:
        return max(self.clean, key=lambda e: e.highest, default=None)

    @property
    def passed(self) -> bool:
        return not self.above


def free_bodies(model: mujoco.MjModel) -> list[tuple[int, slice]]:
    """(body id, linear-velocity slice of qvel) of every body on a free joint (the task's loose objects)."""
    return [(int(model.jnt_bodyid[j]), slice(int(model.jnt_dofadr[j]), int(model.jnt_dofadr[j]) + 3))
            for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]


def fling_episodes(env: HandEnv, seeds: list[int], steps: int) -> tuple[FlingEpisode, ...]:
    """The random floor's episodes of ``env`` from ``seeds`` (at most ``steps`` control steps each, ending early on
    success or a physics failure), with how high and fast its free objects went."""
    bodies = free_bodies(env.model)
    results = []
    for seed in seeds:
        env.reset(seed=seed)
        policy = RandomPolicy(env.action_space.low, env.action_space.high, seed)
        highest, fastest, error = 0.0, 0.0, ""
        for _ in range(steps):
            _, _, terminated, truncated, info = env.step(policy.act())
            error = info.get("physics_error", "")
            if error:
                break
            for body, linear in bodies:
                highest = max(highest, float(env.data.xpos[body][2]))
                fastest = max(fastest, float(np.linalg.norm(env.data.qvel[linear])))
            if terminated or truncated:
                break
        results.append(FlingEpisode(int(seed), highest, fastest, error))
    return tuple(results)


def fling_check(task: str, hand: str, protocol: str, episodes: int | None = None,
                hand_version: int | None = None, task_version: int | None = None) -> FlingCheck:
    """Run the random floor on the first ``episodes`` eval seeds (all by default) of ``task`` in ``protocol``,
    with the task at ``task_version`` and the hand at ``hand_version`` (default: the versions the protocol pins;
    another one measures what a version changes). Raises :class:`HandbenchError` for unknown names or versions."""
    rules = load_protocol(protocol)
    entry = rules.task(task)
    entry.check(hand, "state", protocol)
    if episodes is not None and not 1 <= episodes <= len(entry.eval_seeds):
        raise HandbenchError(f"--seeds must be in 1..{len(entry.eval_seeds)} (the eval seeds), got {episodes}")
    hand_version = rules.hand_version(hand) if hand_version is None else hand_version
    task_version = entry.task_version if task_version is None else task_version
    env = registry.make_env(task, hand, task_version, hand_version)
    try:
        results = fling_episodes(env, list(entry.eval_seeds)[:episodes], entry.episode_steps)
    finally:
        env.close()
    return FlingCheck(task, hand, hand_version, results, task_version=task_version)
