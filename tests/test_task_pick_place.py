"""pick-place: the expert carries the cube to the goal on both hands; success never comes for free."""

from __future__ import annotations

import numpy as np
from handbench.tasks.pick_place import GOAL_TOLERANCE, HOLD_STEPS, MIN_GOAL_DISTANCE, PickPlace

from handbench.env import HandEnv
from handbench.generate import run_expert_episode

SEEDS = (1, 4, 6)  # front-back-arc, left-right-arc, left-right-direct


TASK = "pick-place"  # the shared `env` fixture (conftest.py) builds it with each hand


def test_expert_places_the_cube(env: HandEnv) -> None:
    strategies = set()
    for seed in SEEDS:
        episode = run_expert_episode(env, seed, record=False)
        assert episode.success, f"{env.hand_spec.name}: expert failed on seed {seed}"
        assert np.linalg.norm(env.task.cube_position(env.data) - env.task.goal) <= GOAL_TOLERANCE
        strategies.add(episode.strategy)
    assert len(strategies) == len(SEEDS)


def test_same_seed_gives_the_same_rollout(env: HandEnv) -> None:
    first = run_expert_episode(env, SEEDS[0])
    second = run_expert_episode(env, SEEDS[0])
    assert np.array_equal(first.actions, second.actions)
    assert np.array_equal(first.states, second.states)


def test_success_cannot_trigger_at_reset_or_by_waiting(env: HandEnv) -> None:
    _, info = env.reset(seed=SEEDS[0])
    assert not info["is_success"]
    for _ in range(HOLD_STEPS + 5):
        _, reward, terminated, _, info = env.step(env.home_ctrl)
        assert not terminated and not info["is_success"]
    assert reward < 5.0


def test_goal_mocap_shows_the_sampled_goal(env: HandEnv) -> None:
    env.reset(seed=SEEDS[1])
    state = env.task.environment_state(env.data)
    assert np.allclose(state[14:17], env.episode.params.goal)


def test_sample_is_seeded_and_keeps_the_goal_away_from_the_start() -> None:
    task = PickPlace()
    a, b = task.sample(np.random.default_rng(7)), task.sample(np.random.default_rng(7))
    assert a.to_attrs() == b.to_attrs()
    for seed in range(200):
        params = task.sample(np.random.default_rng(seed))
        start = np.array([*params.cube_xy, params.cube_half_size])
        assert np.linalg.norm(params.goal - start) >= MIN_GOAL_DISTANCE > GOAL_TOLERANCE
