"""stack: the expert stacks for both hands; success needs the cube on the base AND released."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from handbench.tasks.stack import HOLD_STEPS, MIN_SEPARATION, Stack

from handbench.env import HandEnv
from handbench.generate import run_expert_episode
from handbench.protocol import eval_seeds
from handbench.registry import make_env


def run_expert(env: HandEnv, seed: int) -> bool:
    return run_expert_episode(env, seed, record=False).success


@pytest.mark.slow
def test_expert_stacks_with_hb16():
    env = make_env("stack", "hb16")
    assert all(run_expert(env, seed) for seed in eval_seeds("stack")[:3])


@pytest.mark.slow
def test_expert_stacks_with_shadow_most_of_the_time():
    # shadow reaches 42/50 on the eval seeds (below the 95% bar, see the task notes): demand half here.
    env = make_env("stack", "shadow")
    assert sum(run_expert(env, seed) for seed in eval_seeds("stack")[:4]) >= 2


def test_cubes_start_apart_and_success_cannot_trigger_by_waiting():
    env = make_env("stack", "hb16")
    for seed in eval_seeds("stack")[:5]:
        env.reset(seed=seed)
        params = env.episode.params
        assert np.linalg.norm(params.cube_xy - params.base_xy) >= MIN_SEPARATION
        assert not env.task.is_stacked(env.data)
    for _ in range(HOLD_STEPS + 3):
        _, _, terminated, _, info = env.step(env.home_ctrl)
        assert not terminated and not info["is_success"]


def test_a_released_stack_succeeds_after_hold_steps():
    """The rule is reachable: a cube put on the base, away from the hand, counts after HOLD_STEPS."""
    env = make_env("stack", "hb16", version=0)  # v0's rule; v1 also asks that the hand carried the cube there
    env.reset(seed=eval_seeds("stack")[0])
    task: Stack = env.task
    qpos = env.data.qpos[task.cube_qpos]
    qpos[:3] = task.place_target(env.data) + [0, 0, 0.001]
    qpos[3:] = env.data.qpos[task.base_qpos][3:]
    mujoco.mj_forward(env.model, env.data)
    results = [env.step(env.home_ctrl)[4]["is_success"] for _ in range(HOLD_STEPS)]
    assert results[-1] and not any(results[:-1])


def test_sample_is_seeded():
    a, b = Stack().sample(np.random.default_rng(3)), Stack().sample(np.random.default_rng(3))
    assert a.to_attrs() == b.to_attrs()
