"""lift-cube: the scripted expert succeeds for both hands; success never comes for free."""

from __future__ import annotations

import numpy as np
import pytest
from handbench.tasks.lift_cube import HOLD_STEPS, LiftCube

from handbench.env import HandEnv
from handbench.generate import run_expert_episode
from handbench.hands import HANDS
from handbench.protocol import eval_seeds
from handbench.registry import make_env


def run_expert(env: HandEnv, seed: int) -> bool:
    return run_expert_episode(env, seed, record=False).success


@pytest.mark.parametrize("hand", sorted(HANDS))
def test_expert_lifts_the_cube(hand):
    env = make_env("lift-cube", hand)
    seeds = eval_seeds("lift-cube")[:3]
    assert [run_expert(env, seed) for seed in seeds] == [True] * len(seeds)


@pytest.mark.parametrize("hand", sorted(HANDS))
def test_success_cannot_trigger_at_reset_or_by_waiting(hand):
    env = make_env("lift-cube", hand)
    _, info = env.reset(seed=eval_seeds("lift-cube")[0])
    assert not info["is_success"]
    for _ in range(HOLD_STEPS + 5):
        _, reward, terminated, _, info = env.step(env.home_ctrl)
        assert not terminated and not info["is_success"]
    assert reward < 5.0


def test_sample_is_seeded_and_in_range():
    task = LiftCube()
    a, b = task.sample(np.random.default_rng(7)), task.sample(np.random.default_rng(7))
    assert a.to_attrs() == b.to_attrs()
    assert 0.022 <= a.cube_half_size <= 0.028 and 0.05 <= a.cube_mass <= 0.2
