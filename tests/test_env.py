"""Every (task, hand) env passes gymnasium's checker and is deterministic per seed (the per-version task contract,
expert included, is tests/test_task_contract.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import handbench
from handbench.errors import HandbenchError
from handbench.generate import run_expert_episode
from handbench.hands import HANDS
from handbench.protocol import eval_seeds
from handbench.registry import make_env
from handbench.seeding import EVAL_SEED_BASE, demo_seeds, is_demo_seed

TASKS = handbench.task_names()
PAIRS = list(itertools.product(TASKS, HANDS))


@pytest.mark.parametrize(("task", "hand"), PAIRS)
def test_gymnasium_env_checker_state_mode(task: str, hand: str) -> None:
    env = handbench.make(task, hand)
    check_env(env.unwrapped, skip_render_check=True)
    assert set(env.observation_space.spaces) == {"agent_pos", "environment_state", "tactile"}
    env.close()


def test_gymnasium_env_checker_pixels_mode() -> None:
    env = make_env(TASKS[0], "hb16", obs_mode="pixels", cameras=["top"], image_size=(16, 16))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"]["top"].shape == (16, 16, 3) and obs["pixels"]["top"].dtype == np.uint8
    assert "environment_state" not in obs
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_initial_state_and_expert_rollout(task: str) -> None:
    first, second = make_env(task, "hb16"), make_env(task, "hb16")
    run_expert_episode(second, seed=EVAL_SEED_BASE)  # an earlier episode must not leak into the next one
    a = run_expert_episode(first, seed=7)
    b = run_expert_episode(second, seed=7)
    np.testing.assert_array_equal(a.states[0], b.states[0])
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert a.episode_params == b.episode_params and a.strategy == b.strategy
    other = run_expert_episode(first, seed=8)
    assert not np.array_equal(other.states[0], a.states[0]), "different seeds should give different episodes"


@pytest.mark.parametrize("task", TASKS)
def test_demo_seeds_and_eval_seeds_are_disjoint(task: str) -> None:
    seeds = eval_seeds(task)
    assert len(seeds) >= 50 and len(set(seeds)) == len(seeds)
    assert not any(is_demo_seed(seed) for seed in seeds)
    assert set(seeds).isdisjoint(itertools.islice(demo_seeds(), 10_000))
    with pytest.raises(HandbenchError):  # the demo split ends below the eval seeds
        list(demo_seeds(EVAL_SEED_BASE - 3))
