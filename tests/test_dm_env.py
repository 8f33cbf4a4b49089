"""The dm_env adapter passes dm_env's own conformance tests for every task, and ends episodes correctly."""

from __future__ import annotations

import unittest

import dm_env
import numpy as np
from dm_env import specs, test_utils

from handbench.dm_env_adapter import HandDmEnv, make_dm_env
from handbench.registry import task_names
from handbench.task import StepScore

SHORT_EPISODE = 8


class _Conformance(test_utils.EnvironmentTestMixin):
    task = "lift-cube"
    hand = "hb16"

    def make_object_under_test(self):
        return HandDmEnv(self.task, self.hand, seed=3, max_episode_steps=SHORT_EPISODE)

    def make_action_sequence(self):
        """Long enough to cross an episode boundary (truncation at SHORT_EPISODE steps) twice."""
        rng = np.random.default_rng(0)
        spec = self.environment.action_spec()
        for _ in range(2 * SHORT_EPISODE + 3):
            yield rng.uniform(spec.minimum, spec.maximum).astype(spec.dtype)


for _task in task_names():
    _name = "TestConformance_" + _task.replace("-", "_")
    globals()[_name] = type(_name, (_Conformance, unittest.TestCase), {"task": _task})


class TestShadowConformance(_Conformance, unittest.TestCase):
    hand = "shadow"


class TestPixelsConformance(_Conformance, unittest.TestCase):
    def make_object_under_test(self):
        return HandDmEnv(self.task, self.hand, seed=3, max_episode_steps=3, obs_mode="pixels",
                         cameras=["overview"], image_size=(16, 16))


def test_specs_follow_gymnasium_spaces():
    env = make_dm_env("lift-cube", "hb16")
    gym_env = env.env
    action = env.action_spec()
    assert isinstance(action, specs.BoundedArray) and action.shape == gym_env.action_space.shape
    np.testing.assert_array_equal(action.minimum, gym_env.action_space.low)
    obs_spec = env.observation_spec()
    assert set(obs_spec) == set(gym_env.observation_space.spaces)
    assert type(obs_spec["agent_pos"]) is specs.Array  # unbounded Box -> plain Array
    env.close()


def test_truncation_and_seeds():
    env = HandDmEnv("lift-cube", "hb16", seed=7, max_episode_steps=2)
    first = env.reset()
    action = env.env.home_ctrl.astype(np.float32)
    env.step(action)
    last = env.step(action)
    assert last.step_type is dm_env.StepType.LAST and last.discount == 1.0  # truncation, not termination
    assert env.step(action).step_type is dm_env.StepType.FIRST  # auto-reset after LAST
    again = HandDmEnv("lift-cube", "hb16", seed=7).reset()
    np.testing.assert_array_equal(first.observation["environment_state"], again.observation["environment_state"])
    env.close()


def test_success_terminates_with_zero_discount(monkeypatch):
    env = HandDmEnv("lift-cube", "hb16", seed=0)
    env.reset()
    action = env.env.home_ctrl.astype(np.float32)
    assert env.step(action).mid()
    monkeypatch.setattr(env.env.task, "score", lambda data: StepScore(reward=5.0, success=True))
    step = env.step(action)
    assert step.last() and step.discount == 0.0 and step.reward == 5.0
    assert env.step(action).first()
    env.close()
