"""The Task interface: one subclass per task (version) in ``tasks/``.

A task adds its objects to the shared scene, samples an episode's parameters from a seed, writes them into
the model and state, extracts the ``environment_state`` observation, and scores each step (dense reward as
named terms, and success). Everything a task randomizes comes from the generator it is given, so an episode
depends only on (task version, seed).

The contract. Everything the framework reads from a task class is declared below with its type, and the
registry refuses a class that leaves one out (:meth:`Task.check_contract`): there are no hidden defaults.
Episode parameters are a frozen dataclass (:class:`EpisodeParams`) made once per episode by ``sample``;
the env's current episode holds it and hands the same object to the task (``apply``) and the expert.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import mujoco
import numpy as np

from handbench.errors import HandbenchError
from handbench.expert import Expert
from handbench.hands import BoundHand
from handbench.rewards import Term, describe, total, weighted

OBS_MODES = ("state", "pixels")


@dataclass(frozen=True)
class StepScore:
    reward: float
    success: bool
    terms: Mapping[str, float] = field(default_factory=dict)  # weighted reward terms; they sum to ``reward``


@dataclass(frozen=True)
class EpisodeParams:
    """Base class of a task's episode parameters: subclass it as a frozen dataclass, one field per sampled value
    (object pose, size, mass, goal, ...). Arrays are fine; they are never modified after sampling."""

    def to_attrs(self) -> dict[str, Any]:
        """The parameters as plain JSON-friendly values (for datasets and results)."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                out[item.name] = value.tolist()
            elif isinstance(value, np.generic):
                out[item.name] = value.item()
            else:
                out[item.name] = value
        return out


# What every task class must declare (name -> expected type); checked when a task is registered.
CONTRACT: dict[str, type | tuple[type, ...]] = {
    "name": str, "version": int, "order": int, "skill": str, "description": str, "success_rule": str,
    "reward_terms": tuple, "max_episode_steps": int, "frame_skip": int, "obs_modes": tuple, "state_size": int,
    "params_type": type, "expert": type, "model_fields": tuple,
}


class Task(abc.ABC):
    """Base class of all tasks. Subclasses declare the contract's class variables and implement the hooks."""

    name: ClassVar[str]
    """Task name, lower-case with dashes (``lift-cube``); part of the gymnasium id."""
    version: ClassVar[int]
    """Task version. A released protocol pins it: a change to the scene, reset distribution, success rule or
    reward makes a new version (a new class), never an edit of a published one."""
    order: ClassVar[int]
    """Position in the suite's listings (smaller first)."""
    skill: ClassVar[str]
    """The manipulation skill, in a few words (``power grasp and lift``)."""
    description: ClassVar[str]
    """One sentence for users: what the hand must do."""
    success_rule: ClassVar[str]
    """The success condition in words, exactly as the protocol manifest records it."""
    reward_terms: ClassVar[tuple[Term, ...]]
    """The dense reward: weighted named terms (:mod:`handbench.rewards`)."""
    reward_doc: ClassVar[str]
    """Generated from ``reward_terms``."""
    max_episode_steps: ClassVar[int]
    """Episode length in control steps (the protocol's ``episode_steps``)."""
    expert_noise_limit: ClassVar[float | None] = None
    """The highest ``--action-noise`` (fraction of each actuator's range) at which the expert was measured to
    still succeed on >= 95% of 50 demo seeds with every hand (README, "Action noise"); None: not measured."""
    frame_skip: ClassVar[int] = 25
    """Physics steps per control step (0.002 s physics step -> 20 Hz control)."""
    obs_modes: ClassVar[tuple[str, ...]] = OBS_MODES
    """Observation modes the task supports."""
    state_size: ClassVar[int]
    """Length of ``environment_state`` (sizes the observation space before any episode)."""
    params_type: ClassVar[type[EpisodeParams]]
    """The frozen dataclass ``sample`` returns."""
    expert: ClassVar[type[Expert]]
    """The scripted expert class (works for every hand)."""
    model_fields: ClassVar[tuple[str, ...]]
    """``MjModel`` fields ``apply`` changes per episode; the env restores exactly these before each episode."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "reward_terms" in cls.__dict__:
            cls.reward_doc = describe(cls.reward_terms)

    @classmethod
    def check_contract(cls) -> None:
        """Raise :class:`HandbenchError` naming every contract attribute ``cls`` leaves out or mistypes."""
        problems = []
        for attribute, kind in CONTRACT.items():
            if not hasattr(cls, attribute):
                problems.append(f"{attribute} is not declared")
            elif not isinstance(getattr(cls, attribute), kind) or isinstance(getattr(cls, attribute), bool):
                problems.append(f"{attribute} must be a {getattr(kind, '__name__', kind)}")
        if hasattr(cls, "params_type") and not (isinstance(cls.params_type, type)
                                                and issubclass(cls.params_type, EpisodeParams)):
            problems.append("params_type must be an EpisodeParams subclass (a frozen dataclass)")
        if hasattr(cls, "expert") and not (isinstance(cls.expert, type) and issubclass(cls.expert, Expert)):
            problems.append("expert must be an Expert subclass")
        for name in getattr(cls, "model_fields", ()):
            if not hasattr(mujoco.MjModel, name):
                problems.append(f"model_fields: MjModel has no field {name!r}")
        for mode in getattr(cls, "obs_modes", ()):
            if mode not in OBS_MODES:
                problems.append(f"obs_modes: {mode!r} is not one of {', '.join(OBS_MODES)}")
        if problems:
            raise HandbenchError(f"task class {cls.__module__}.{cls.__qualname__}: {'; '.join(problems)}")

    def __init__(self) -> None:
        self.model: mujoco.MjModel | None = None
        self.hand: BoundHand | None = None
        self.params: EpisodeParams | None = None  # the current episode's (the env's own object, never a copy)
        # (n_actuators,) bool over the action layout, or None: the actuators whose targets the success rule
        # requires to keep their initial values (the in-hand tasks' wrist, set in bind). An expert's action noise
        # leaves them alone.
        self.still_actuators: np.ndarray | None = None

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
    def sample(self, rng: np.random.Generator) -> EpisodeParams:
        """Draw the episode's parameters (an instance of ``params_type``) from ``rng``, the episode's stream."""

    def start_episode(self, data: mujoco.MjData, params: EpisodeParams) -> None:
        """Called by the env at reset: keep a reference to ``params`` and :meth:`apply` them."""
        self.params = params
        self.apply(data, params)

    @abc.abstractmethod
    def apply(self, data: mujoco.MjData, params: Any) -> None:
        """Write the episode's parameters into the model (only the ``model_fields``) and the state (qpos is
        already at the hand's home pose), and reset per-episode scoring counters."""

    @abc.abstractmethod
    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        """Object and goal state, shape ``(state_size,)`` (privileged; part of the ``state`` observation mode)."""

    @abc.abstractmethod
    def score(self, data: mujoco.MjData) -> StepScore:
        """Dense reward and success after one env step. May update per-episode counters."""

    # ------------------------------------------------------------------ helpers
    def step_score(self, values: Mapping[str, float], success: bool) -> StepScore:
        """The StepScore of one step from the unweighted value of every term in ``reward_terms``."""
        terms = weighted(self.reward_terms, values)
        return StepScore(total(terms), bool(success), terms)
