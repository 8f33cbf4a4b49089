"""press-button: the expert presses with the named finger on both hands; the rule needs that finger."""

from __future__ import annotations

import numpy as np
from handbench.tasks.press_button import PRESS_DEPTH, PRESS_FINGERS

from handbench.env import HandEnv
from handbench.generate import run_expert_episode
from handbench.registry import make_env

SEEDS = (0, 1, 4)  # middle, ring and index finger; both approach sides


TASK = "press-button"  # the shared `env` fixture (conftest.py) builds it with each hand


def test_expert_presses_with_the_named_finger(env: HandEnv) -> None:
    fingers, strategies = set(), set()
    for seed in SEEDS:
        episode = run_expert_episode(env, seed, record=False)
        assert episode.success, f"{env.hand_spec.name}: expert failed on seed {seed}"
        assert env.task.travel(env.data) >= PRESS_DEPTH
        fingers.add(episode.episode_params["finger"])
        strategies.add(episode.strategy)
    assert fingers == set(PRESS_FINGERS) and strategies == {"approach-left", "approach-right"}


def test_success_cannot_trigger_at_reset_or_while_idle(env: HandEnv) -> None:
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        assert not info["is_success"] and not env.task.score(env.data).success
        one_hot = obs["environment_state"][-3:]
        assert one_hot.tolist() == [float(f == env.episode.params.finger) for f in PRESS_FINGERS]
    for _ in range(10):
        _, _, terminated, _, info = env.step(env.home_ctrl.astype(np.float32))
        assert not terminated and not info["is_success"]
    assert env.task.travel(env.data) < 1e-3


def test_pressing_with_another_finger_does_not_count(env: HandEnv) -> None:
    seed = SEEDS[0]
    env.reset(seed=seed)
    expert = env.make_expert(seed)
    expert.reset()
    named = env.episode.params.finger
    expert.finger = next(f for f in PRESS_FINGERS if f != named)  # the expert uses the wrong finger
    deepest = 0.0
    for _ in range(env.task.max_episode_steps):
        _, _, terminated, _, info = env.step(expert.act())
        deepest = max(deepest, env.task.travel(env.data))
        assert not info["is_success"]
    assert deepest >= PRESS_DEPTH, "the wrong finger did press the button, yet it must not count"


def test_same_seed_same_rollout() -> None:
    first, second = make_env("press-button", "hb16"), make_env("press-button", "hb16")
    run_expert_episode(second, seed=9)
    a, b = run_expert_episode(first, seed=3), run_expert_episode(second, seed=3)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
