"""Scripted experts: closed-loop phase machines over privileged state, written once per task.

An expert reads the simulator directly (object poses, contacts), decides a wrist pose for the hand's
grasp site and a finger synergy, and returns absolute joint targets through the Hand interface. The
:class:`WristMotion` helper limits the commanded speed so motions are smooth and learnable.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Generic, TypeVar

import mujoco
import numpy as np

from handbench.hands import BoundHand, HandSpec
from handbench.seeding import stream_rng

TaskT = TypeVar("TaskT")  # the task class an expert is written for (``class LiftCubeExpert(Expert[LiftCube])``)


class WristMotion:
    """Moves a commanded grasp-site pose toward a goal at bounded linear and angular speed."""

    def __init__(self, position: np.ndarray, rotation: np.ndarray | None = None,
                 max_step: float = 0.012, max_turn: float = 0.12) -> None:
        self.position = np.array(position, dtype=np.float64)
        self.rotation = np.array([1.0, 0, 0, 0]) if rotation is None else np.array(rotation, dtype=np.float64)
        self.max_step = max_step
        self.max_turn = max_turn

    def toward(self, goal_position: np.ndarray, goal_rotation: np.ndarray | None = None,
               max_step: float | None = None) -> float:
        """Advance one control step; return the remaining distance (metres + radians)."""
        step_limit = self.max_step if max_step is None else max_step
        delta = np.asarray(goal_position, dtype=np.float64) - self.position
        dist = float(np.linalg.norm(delta))
        if dist > step_limit:
            delta *= step_limit / dist
        self.position += delta
        angle = 0.0
        if goal_rotation is not None:
            diff = np.empty(3)
            mujoco.mju_subQuat(diff, np.asarray(goal_rotation, dtype=np.float64), self.rotation)
            angle = float(np.linalg.norm(diff))
            if angle > 1e-9:
                turn = min(angle, self.max_turn)
                quat = np.empty(4)
                mujoco.mju_axisAngle2Quat(quat, diff / angle, turn)
                out = np.empty(4)
                mujoco.mju_mulQuat(out, self.rotation, quat)
                self.rotation = out / np.linalg.norm(out)
            angle = max(angle - self.max_turn, 0.0)
        return max(dist - step_limit, 0.0) + angle


class Expert(abc.ABC, Generic[TaskT]):
    """Base class of scripted experts; also a valid evaluation Policy (``reset`` / ``act``).

    An expert sees exactly what an episode gives it: the task (its state accessors), the hand, the sim data
    and the episode's parameters, nothing more. ``reset()`` starts the episode and always runs before the
    first action (``act`` calls it when the caller did not); subclasses put their per-episode setup in
    :meth:`on_reset`. Its random stream (strategy, then action noise) derives from the episode seed only. Action
    noise (a fraction of each actuator's range) is added to every actuator but those the task's rule holds still
    (``Task.still_actuators``).
    """

    version: ClassVar[int] = 0  # bumped whenever the expert acts differently (see version_for)
    strategies: ClassVar[tuple[str, ...]] = ("default",)

    def __init__(self, task: TaskT, hand: BoundHand, data: mujoco.MjData, params: Any, seed: int,
                 action_noise: float = 0.0) -> None:
        self.task = task
        self.hand = hand
        self.data = data
        self.params = params  # the episode's EpisodeParams (frozen)
        self.seed = int(seed)
        self.action_noise = float(action_noise)
        # A stream separate from the task's, so expert choices never change the initial state.
        self.rng = stream_rng("expert", self.seed)
        self.strategy = self.strategies[int(self.rng.integers(len(self.strategies)))]
        self.phase = "start"
        self.phase_steps = 0
        self._started = False

    @classmethod
    def version_for(cls, hand: HandSpec) -> int:
        """The version of this expert's behaviour with ``hand``: what datasets and results record. ``version``,
        unless a new version changed what the expert does with some hands only (their results stay current)."""
        return cls.version

    def goto(self, phase: str) -> None:
        self.phase = phase
        self.phase_steps = 0

    def reset(self) -> None:
        """Start the episode from the current state (phase ``start``, then :meth:`on_reset`)."""
        self.phase = "start"
        self.phase_steps = 0
        self.on_reset()
        self._started = True

    def on_reset(self) -> None:
        """Per-episode setup from the initial state (e.g. where the wrist starts); override it, not reset."""

    @abc.abstractmethod
    def plan(self) -> np.ndarray:
        """The noiseless action for the current state."""

    def act(self, observation: Any = None) -> np.ndarray:
        if not self._started:
            self.reset()
        action = self.plan()
        self.phase_steps += 1
        if self.action_noise > 0:
            span = self.hand.ctrl_high - self.hand.ctrl_low
            noise = self.rng.normal(0.0, self.action_noise, size=action.shape) * span
            if self.task.still_actuators is not None:  # held by the rule: noise there would void the episode
                noise[self.task.still_actuators] = 0.0
            action = action + noise
        return np.clip(action, self.hand.ctrl_low, self.hand.ctrl_high).astype(np.float32)

    def info(self) -> dict[str, Any]:
        """What a dataset records about how this demonstration was made."""
        return {"strategy": self.strategy, "action_noise": self.action_noise,
                "expert_version": self.version_for(self.hand.spec)}
