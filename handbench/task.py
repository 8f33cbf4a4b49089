"""The Task interface: one subclass per task module in ``tasks/``.

A task adds its objects to the shared scene, samples an initial state from a seed, extracts the
``environment_state`` observation, and scores each step (dense reward and success). Everything a task
randomizes comes from the generator it is given, so an episode depends only on (task version, seed).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import mujoco
import numpy as np

from handbench.hands import BoundHand
from handbench.rewards import Term, describe, total, weighted

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.expert import Expert


@dataclass(frozen=True)
class StepScore:
    reward: float
    success: bool
    terms: Mapping[str, float] = field(default_factory=dict)  # weighted reward terms; they sum to ``reward``


class Task(abc.ABC):
    """Base class of all tasks. Subclasses set the class variables and implement the hooks."""

    name: ClassVar[str]
    version: ClassVar[int] = 0
    skill: ClassVar[str]
    description: ClassVar[str]
    success_rule: ClassVar[str]
    reward_terms: ClassVar[tuple[Term, ...]]  # the dense reward: weighted named terms (handbench.rewards)
    reward_doc: ClassVar[str]  # generated from reward_terms
    max_episode_steps: ClassVar[int]
    # The highest ``--action-noise`` (fraction of each actuator's range) at which the expert was measured to
    # still succeed on >= 95% of 50 demo seeds with every hand (README, "Action noise"); None: not measured.
    expert_noise_limit: ClassVar[float | None] = None
    frame_skip: ClassVar[int] = 25  # 0.002 s physics step -> 20 Hz control

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "reward_terms" in cls.__dict__:
            cls.reward_doc = describe(cls.reward_terms)

    def __init__(self) -> None:
        self.model: mujoco.MjModel | None = None
        self.hand: BoundHand | None = None
        self.params: dict[str, Any] = {}

    # ------------------------------------------------------------------ scene
    @abc.abstractmethod
    def build(self, spec: mujoco.MjSpec) -> None:
        """Add objects, fixtures and goal markers to the scene spec."""

    def bind(self, model: mujoco.MjModel, hand: BoundHand) -> None:
        """Cache ids in the compiled model. Called once per env."""
        self.model = model
        self.hand = hand

    # ------------------------------------------------------------------ episode
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the episode's parameters (object pose, size, mass, goal ...) from ``rng``."""

    @abc.abstractmethod
    def apply(self, data: mujoco.MjData, params: dict[str, Any]) -> None:
        """Write sampled parameters into the model and state (qpos already reset to the home pose)."""

    @abc.abstractmethod
    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        """Object and goal state (privileged; part of the ``state`` observation mode)."""

    @abc.abstractmethod
    def score(self, data: mujoco.MjData) -> StepScore:
        """Dense reward and success after one env step. May update per-episode counters."""

    @abc.abstractmethod
    def make_expert(self, env: HandEnv, seed: int, action_noise: float = 0.0) -> Expert:
        """The scripted expert for this task (works for every hand)."""

    # ------------------------------------------------------------------ helpers
    def step_score(self, values: Mapping[str, float], success: bool) -> StepScore:
        """The StepScore of one step from the unweighted value of every term in ``reward_terms``."""
        terms = weighted(self.reward_terms, values)
        return StepScore(total(terms), bool(success), terms)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)


def params_to_attrs(params: dict[str, Any]) -> dict[str, Any]:
    """Episode parameters as plain JSON-friendly values (for datasets and results)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out
