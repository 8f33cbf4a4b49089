"""Every handbench task as a ``dm_env.Environment``, for agents written against DeepMind's interface.

Specs come from the gymnasium spaces (a ``Box`` with finite bounds becomes a ``BoundedArray``, an
unbounded one an ``Array``; a ``Dict`` becomes a dict of specs, nested for ``pixels``). Episodes end
LAST with discount 0 on success (termination) and discount 1 at the task's step limit (truncation).

dm_env has no seed argument, so episode ``k`` after construction is reset with seed ``seed + k``: the
same ``seed`` replays the same sequence of initial states.
"""

from __future__ import annotations

from typing import Any

import dm_env
import gymnasium as gym
import numpy as np
from dm_env import specs

from handbench.errors import HandbenchError
from handbench.registry import make_env


def spec_from_space(space: gym.Space, name: str) -> Any:
    """A dm_env spec (or nested dict of specs) equivalent to a gymnasium ``Box`` or ``Dict`` space."""
    if isinstance(space, gym.spaces.Dict):
        return {key: spec_from_space(sub, f"{name}/{key}" if name else key) for key, sub in space.spaces.items()}
    if isinstance(space, gym.spaces.Box):
        low, high = np.asarray(space.low), np.asarray(space.high)
        if np.all(np.isinf(low)) and np.all(np.isinf(high)):
            return specs.Array(space.shape, space.dtype, name=name)
        return specs.BoundedArray(space.shape, space.dtype, minimum=low, maximum=high, name=name)
    raise HandbenchError(f"cannot convert gymnasium space {type(space).__name__} ({name}) to a dm_env spec")


def _cast(value: Any, spec: Any) -> Any:
    """Observation values with exactly the spec's dtype (dm_env validates dtypes strictly)."""
    if isinstance(spec, dict):
        return {key: _cast(value[key], sub) for key, sub in spec.items()}
    return np.asarray(value, dtype=spec.dtype)


class HandDmEnv(dm_env.Environment):
    """A :class:`HandEnv` behind the dm_env interface (``reset``/``step`` return ``TimeStep``)."""

    def __init__(self, task: str, hand: str = "hb16", seed: int = 0, max_episode_steps: int | None = None,
                 **env_kwargs: Any) -> None:
        self.env = make_env(task, hand, **env_kwargs)
        self.max_episode_steps = max_episode_steps or self.env.task.max_episode_steps
        self._seed = int(seed)
        self._episodes = 0
        self._steps = 0
        self._needs_reset = True
        self._observation_spec = spec_from_space(self.env.observation_space, "")
        self._action_spec = spec_from_space(self.env.action_space, "action")

    # ------------------------------------------------------------------ dm_env API
    def reset(self) -> dm_env.TimeStep:
        observation, _ = self.env.reset(seed=self._seed + self._episodes)
        self._episodes += 1
        self._steps = 0
        self._needs_reset = False
        return dm_env.restart(_cast(observation, self._observation_spec))

    def step(self, action) -> dm_env.TimeStep:
        if self._needs_reset:
            return self.reset()
        observation, reward, terminated, truncated, _ = self.env.step(action)
        self._steps += 1
        observation = _cast(observation, self._observation_spec)
        reward = float(reward)
        if terminated:
            self._needs_reset = True
            return dm_env.termination(reward, observation)
        if truncated or self._steps >= self.max_episode_steps:
            self._needs_reset = True
            return dm_env.truncation(reward, observation)
        return dm_env.transition(reward, observation)

    def observation_spec(self) -> dict[str, Any]:
        return self._observation_spec

    def action_spec(self) -> specs.BoundedArray:
        return self._action_spec

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ extras
    @property
    def physics_model(self):
        """The MuJoCo model (for viewers and tools that want it)."""
        return self.env.model


def make_dm_env(task: str, hand: str = "hb16", seed: int = 0, **kwargs: Any) -> HandDmEnv:
    """``HandDmEnv`` for a task name, with the same name checks as :func:`handbench.make`."""
    from handbench.errors import unknown_choice
    from handbench.hands import HANDS
    from handbench.registry import get_task_class

    get_task_class(task)
    if hand not in HANDS:
        raise unknown_choice("hand", hand, HANDS)
    return HandDmEnv(task, hand, seed=seed, **kwargs)
