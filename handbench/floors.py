"""Floor policies: what a task's success rate is worth is judged against policies that cannot do the skill.

``random`` samples every action uniformly over the action space (each actuator's ctrlrange), from a
generator seeded by the episode seed, so a floor run is reproducible episode by episode. ``hold``
keeps the joint targets the env starts the episode with (the hand's home pose) and never moves.
A task either of them solves measures nothing: the README's floors table shows both for every
task and hand (``handbench eval --policy random`` / ``--policy hold``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from handbench.seeding import stream_rng

if TYPE_CHECKING:
    from handbench.env import HandEnv

FLOOR_POLICIES = ("random", "hold")


def random_floor_rng(seed: int) -> np.random.Generator:
    """The random floor's stream for episode ``seed`` (never the env's initial-state stream)."""
    return stream_rng("random_floor", int(seed))


class RandomPolicy:
    """Uniform actions over ``[low, high]`` of the action space; the stream restarts from ``seed`` at reset."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.seed = int(seed)
        self.rng = random_floor_rng(self.seed)

    def reset(self) -> None:
        self.rng = random_floor_rng(self.seed)

    def act(self, observation: Any = None) -> np.ndarray:
        """One action, shape ``(n_actuators,)``, float32, inside the action space."""
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class HoldPolicy:
    """Holds the actuator targets the episode starts with (``env.data.ctrl`` right after reset)."""

    def __init__(self, env: HandEnv) -> None:
        self.env = env
        self.targets = env.data.ctrl.astype(np.float32)

    def reset(self) -> None:
        self.targets = self.env.data.ctrl.astype(np.float32)

    def act(self, observation: Any = None) -> np.ndarray:
        return self.targets.copy()


def make_floor_policy(kind: str, env: HandEnv, seed: int) -> RandomPolicy | HoldPolicy:
    """The floor policy ``kind`` (``random`` or ``hold``) for the episode ``seed`` of ``env`` (already reset)."""
    if kind == "random":
        return RandomPolicy(env.action_space.low, env.action_space.high, seed)
    if kind == "hold":
        return HoldPolicy(env)
    raise ValueError(f"unknown floor policy {kind!r}; valid: {', '.join(FLOOR_POLICIES)}")
