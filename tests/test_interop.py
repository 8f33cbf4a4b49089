"""Interoperability: envs that pickle and deep-copy after rendering, and gymnasium's async vector envs."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest

import handbench
from handbench.env import HandEnv
from handbench.registry import make_env

PIXELS = {"obs_mode": "pixels", "cameras": ["top"], "image_size": (24, 32)}


def _steps(env: HandEnv, count: int) -> list[dict]:
    return [env.step(env.home_ctrl + 0.05 * np.sin(np.arange(env.action_space.shape[0]) + t))[0]
            for t in range(count)]


@pytest.mark.parametrize("clone", [lambda env: pickle.loads(pickle.dumps(env)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_env_copies_after_rendering_continue_identically(clone) -> None:
    env = make_env("lift-cube", "hb16", **PIXELS)
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
    """Workers are spawned: forking a process that has rendered (GL driver threads) can deadlock the child."""
    handbench.registry.register_envs()
    env_id = handbench.registry.env_id("lift-cube", "hb16")
    vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", vector_kwargs={"context": "spawn"},
                          **PIXELS)
    try:
        observations, _ = vector.reset(seed=[11, 12])
        assert observations["pixels"]["top"].shape == (2, 24, 32, 3)
        actions = np.stack([make_env("lift-cube", "hb16").home_ctrl] * 2).astype(np.float32)
        stepped = vector.step(actions)[0]
    finally:
        vector.close()
    for lane, seed in enumerate([11, 12]):
        single = make_env("lift-cube", "hb16", **PIXELS)
        first = single.reset(seed=seed)[0]
        np.testing.assert_array_equal(observations["pixels"]["top"][lane], first["pixels"]["top"])
        second = single.step(actions[lane])[0]
        np.testing.assert_array_equal(stepped["pixels"]["top"][lane], second["pixels"]["top"])
        np.testing.assert_array_equal(stepped["agent_pos"][lane], second["agent_pos"])
        single.close()


@pytest.fixture(scope="module")
def pixel_checkpoint(tmp_path_factory):
    """A BC checkpoint trained (a few steps) on one top-camera 32x40 demo: not the evaluator's default view."""
    from handbench.cli import main

    folder = tmp_path_factory.mktemp("pixels-ckpt")
    demos = folder / "d.hdf5"
    assert main(["generate-demos", "--task", "lift-cube", "--num-demos", "1", "--obs", "pixels", "--cameras", "top",
                 "--image-size", "32", "40", "--workers", "0", "--out", str(demos)]) == 0
    assert main(["train", "--policy", "bc", "--dataset", str(demos), "--steps", "3", "--out", str(folder / "run"),
                 "--no-progress"]) == 0
    return folder / "run" / "policy.pt"


def test_eval_builds_envs_with_the_checkpoint_cameras_and_image_size(pixel_checkpoint, tmp_path):
    import pandas as pd

    from handbench.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--policy", "bc", "--checkpoint", str(pixel_checkpoint), "--episodes", "1", "--workers", "0",
                 "--out", str(out), "--no-progress"]) == 0
    rows = pd.read_csv(out / "episodes.csv")
    assert len(rows) == 1 and rows["error"].isna().all(), "the episode ran on top-camera 32x40 images"
    assert rows["steps"].iloc[0] > 1


def test_eval_refuses_a_checkpoint_view_it_cannot_render_in_one_line(pixel_checkpoint):
    from dataclasses import replace

    from handbench.errors import HandbenchError
    from handbench.evaluation.policies import CheckpointSource

    source = CheckpointSource("bc", str(pixel_checkpoint))
    version = int(source.provenance()["task_version"])  # the version the default protocol pinned for its demos
    assert source.env_options("pixels") == {"cameras": ("top",), "image_size": (32, 40)}
    source._obs_spec = replace(source._obs_spec, cameras=("wrist-cam",))
    with pytest.raises(HandbenchError, match=r"needs camera\(s\) wrist-cam, which lift-cube with hb16 does not have"):
        source.validate("lift-cube", version, "hb16", "pixels")
    source._obs_spec = replace(source._obs_spec, cameras=("top",), image_size=(4096, 40))
    with pytest.raises(HandbenchError, match="needs 4096x40 images"):
        source.validate("lift-cube", version, "hb16", "pixels")
