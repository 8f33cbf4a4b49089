"""Interoperability: envs that pickle and deep-copy after rendering, and gymnasium's async vector envs."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest

import handbench
from handbench.env import HandEnv

PIXELS = {"obs_mode": "pixels", "cameras": ["top"], "image_size": (24, 32)}


def _steps(env: HandEnv, count: int) -> list[dict]:
    return [env.step(env.home_ctrl + 0.05 * np.sin(np.arange(env.action_space.shape[0]) + t))[0]
            for t in range(count)]


@pytest.mark.parametrize("clone", [lambda env: pickle.loads(pickle.dumps(env)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_env_copies_after_rendering_continue_identically(clone) -> None:
    env = HandEnv("lift-cube", "hb16", **PIXELS)
    env.reset(seed=3)
    _steps(env, 2)  # rendered: the env holds a GL renderer now
    assert env._renderers
    twin = clone(env)
    assert twin._renderers == {} and twin.model is twin.task.model, "the copy shares its model with its task"
    for ours, theirs in zip(_steps(env, 3), _steps(twin, 3), strict=True):
        np.testing.assert_array_equal(ours["agent_pos"], theirs["agent_pos"])
        np.testing.assert_array_equal(ours["pixels"]["top"], theirs["pixels"]["top"])
    assert ours["pixels"]["top"].std() > 0, "images should not be blank"
    # A reset of the copy gives the same episode as a reset of the original.
    np.testing.assert_array_equal(env.reset(seed=5)[0]["pixels"]["top"], twin.reset(seed=5)[0]["pixels"]["top"])
    env.close()
    twin.close()


def test_wrapped_env_from_make_pickles_after_rendering() -> None:
    env = handbench.make("lift-cube", **PIXELS)
    env.reset(seed=0)
    again = pickle.loads(pickle.dumps(env))
    first = again.reset(seed=0)[0]
    np.testing.assert_array_equal(first["pixels"]["top"], env.reset(seed=0)[0]["pixels"]["top"])
    env.close()
    again.close()


def test_async_vector_env_with_pixels_matches_single_envs() -> None:
    handbench.registry.register_envs()
    env_id = handbench.registry.env_id("lift-cube", "hb16")
    vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", **PIXELS)
    try:
        observations, _ = vector.reset(seed=[11, 12])
        assert observations["pixels"]["top"].shape == (2, 24, 32, 3)
        actions = np.stack([HandEnv("lift-cube", "hb16").home_ctrl] * 2).astype(np.float32)
        stepped = vector.step(actions)[0]
    finally:
        vector.close()
    for lane, seed in enumerate([11, 12]):
        single = HandEnv("lift-cube", "hb16", **PIXELS)
        first = single.reset(seed=seed)[0]
        np.testing.assert_array_equal(observations["pixels"]["top"][lane], first["pixels"]["top"])
        second = single.step(actions[lane])[0]
        np.testing.assert_array_equal(stepped["pixels"]["top"][lane], second["pixels"]["top"])
        np.testing.assert_array_equal(stepped["agent_pos"][lane], second["agent_pos"])
        single.close()
