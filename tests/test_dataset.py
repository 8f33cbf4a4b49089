"""The canonical HDF5 dataset: schema, round trip, validation of bad files, content hash, re-rendering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from handbench.dataset import (
    FORMAT_VERSION,
    DatasetHeader,
    Episode,
    dataset_hash,
    open_dataset,
    write_dataset,
)
from handbench.errors import HandbenchError
from handbench.generate import EnvConfig, GenerateConfig, generate_demos
from handbench.protocol import DEFAULT_PROTOCOL, load_protocol
from handbench.registry import make_env
from handbench.rerender import rerender_dataset, write_video
from handbench.seeding import is_demo_seed

TASK, HAND = "lift-cube", "hb16"
REQUIRED_DATA_ATTRS = {
    "format_version", "env_args", "total", "handbench_version", "task", "task_version", "hand", "expert_version",
    "mujoco_version", "model_hash", "protocol", "obs_mode", "cameras", "image_size", "frame_skip", "control_dt",
    "action_noise", "num_demos", "num_failed", "failed_seeds", "seeds", "created",
}


@pytest.fixture(scope="module")
def state_dataset(lift_cube_demos) -> Path:
    return lift_cube_demos  # two demos of TASK with HAND (conftest.py)


@pytest.fixture(scope="module")
def pixels_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pixels") / "demos.hdf5"
    env = EnvConfig(TASK, HAND, obs_mode="pixels", cameras=("top",), image_size=(24, 32))
    generate_demos(GenerateConfig(env, num_demos=1, out=out, progress=False))
    return out


def test_schema(state_dataset: Path) -> None:
    with h5py.File(state_dataset, "r") as file:
        data = file["data"]
        assert REQUIRED_DATA_ATTRS <= set(data.attrs)
        assert data.attrs["format_version"] == FORMAT_VERSION and data.attrs["protocol"] == DEFAULT_PROTOCOL
        env_args = json.loads(data.attrs["env_args"])
        version = load_protocol(DEFAULT_PROTOCOL).task(TASK).task_version  # the version the protocol pins
        assert env_args["env_name"] == f"handbench/{TASK}-{HAND}-v{version}" and env_args["type"] == "handbench"
        assert set(env_args["env_kwargs"]) == {"task", "hand", "obs_mode", "cameras", "image_size"}
        seeds = json.loads(data.attrs["seeds"])
        assert seeds == sorted(seeds) and all(is_demo_seed(s) for s in seeds)
        assert data.attrs["num_failed"] == len(json.loads(data.attrs["failed_seeds"]))
        assert sorted(data) == ["demo_0", "demo_1"]
        env = make_env(TASK, HAND)
        total = 0
        for index, name in enumerate(["demo_0", "demo_1"]):
            demo = data[name]
            steps = int(demo.attrs["num_samples"])
            total += steps
            assert demo.attrs["seed"] == seeds[index] and bool(demo.attrs["success"])
            assert demo.attrs["strategy"] in env.task.expert.strategies
            json.loads(demo.attrs["episode_params"])
            assert demo["actions"].dtype == np.float32 and demo["actions"].shape == (steps, env.action_space.shape[0])
            assert demo["states"].dtype == np.float64 and demo["states"].shape == (steps, env.full_state().size)
            assert demo["rewards"].shape == (steps,) and demo["dones"].dtype == np.uint8
            assert list(demo["dones"][()]) == [0] * (steps - 1) + [1]
            for key, space in env.observation_space.spaces.items():
                assert demo[f"obs/{key}"].shape == (steps, *space.shape)
            assert env.action_space.contains(demo["actions"][0])
        assert data.attrs["total"] == total


def test_states_are_taken_with_their_observations(state_dataset: Path) -> None:
    """states[t] is the sim state at which obs[t] was recorded (before actions[t])."""
    env = make_env(TASK, HAND)
    with open_dataset(state_dataset) as dataset:
        episode = dataset.episode(1)
    env.reset(seed=episode.seed)
    np.testing.assert_array_equal(env.full_state(), episode.states[0])
    for t in (0, episode.num_samples // 2, episode.num_samples - 1):
        env.set_full_state(episode.states[t])
        for key, value in env.state_observation().items():
            np.testing.assert_array_equal(value, episode.observations[key][t], err_msg=f"{key}[{t}]")


def _episode(seed: int, steps: int, rng: np.random.Generator) -> Episode:
    return Episode(seed=seed, success=True, strategy="s", action_noise=0.1, episode_params={"x": [1.0, 2.0]},
                   actions=rng.random((steps, 3), dtype=np.float32),
                   observations={"agent_pos": rng.random((steps, 4), dtype=np.float32),
                                 "environment_state": rng.random((steps, 2), dtype=np.float32),
                                 "tactile": rng.random((steps, 5), dtype=np.float32),
                                 "top_image": rng.integers(0, 255, (steps, 6, 8, 3), dtype=np.uint8)},
                   rewards=rng.random(steps, dtype=np.float32), states=rng.random((steps, 7)),
                   final_observation={"agent_pos": rng.random(4, dtype=np.float32),
                                      "environment_state": rng.random(2, dtype=np.float32),
                                      "tactile": rng.random(5, dtype=np.float32),
                                      "top_image": rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)},
                   final_state=rng.random(7))


def _header() -> DatasetHeader:
    return DatasetHeader(task=TASK, task_version=0, hand=HAND, env_name="handbench/x", expert_version=0,
                         model_hash="abc", obs_mode="pixels", cameras=["top"], image_size=[6, 8], frame_skip=25,
                         control_dt=0.05, action_noise=0.1, protocol=DEFAULT_PROTOCOL, handbench_version="0",
                         mujoco_version="0", failed_seeds=[3], action_low=[-1.0] * 3, action_high=[2.0] * 3)


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    episodes = [_episode(2, 5, rng), _episode(4, 3, rng)]
    path = tmp_path / "d.hdf5"
    assert write_dataset(path, _header(), episodes) == 2
    with open_dataset(path) as dataset:
        assert len(dataset) == 2 and dataset.total == 8 and dataset.seeds == [2, 4]
        assert dataset.header.failed_seeds == [3] and dataset.header.cameras == ["top"]
        for original, loaded in zip(episodes, dataset, strict=True):
            assert (loaded.seed, loaded.strategy, loaded.episode_params) == (original.seed, "s", {"x": [1.0, 2.0]})
            for name in ("actions", "rewards", "states", "dones"):
                np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
            assert loaded.observations.keys() == original.observations.keys()
            for key, value in original.observations.items():
                np.testing.assert_array_equal(loaded.observations[key], value)
    assert not list(tmp_path.glob(".*tmp")), "no temporary files left behind"


@pytest.mark.parametrize("edit", [
    lambda f: f["data"].attrs.__setitem__("created", "1999-01-01T00:00:00+00:00"),
    lambda f: f["data"].attrs.__setitem__("handbench_version", "9.9.9"),
    lambda f: f["data"].attrs.__setitem__("mujoco_version", "0.0.1"),
    lambda f: f["data"].attrs.__setitem__("model_hash", "feedfeedfeedfeed"),
    lambda f: f["data"].attrs.__setitem__("expert_version", 7),
    lambda f: f["data/demo_0"].attrs.__setitem__("strategy", "another-name"),
    lambda f: f["data/demo_0"].attrs.__setitem__("episode_params", "{}"),
    lambda f: f["data/demo_0/states"].__setitem__((0, 0), 123.0),
], ids=["created", "handbench_version", "mujoco_version", "model_hash", "expert_version", "strategy",
        "episode_params", "states"])
def test_content_hash_ignores_provenance(tmp_path: Path, state_dataset: Path, edit) -> None:
    """Attributes that say where demonstrations came from (and sim states) leave the hash alone."""
    assert dataset_hash(_corrupt(state_dataset, tmp_path, edit)) == dataset_hash(state_dataset)


@pytest.mark.parametrize("edit", [
    lambda f: f["data/demo_0/actions"].__setitem__((0, 0), f["data/demo_0/actions"][0, 0] + 1e-3),
    lambda f: f["data/demo_1/obs/agent_pos"].__setitem__((2, 1), 0.5),
    lambda f: f["data/demo_1/next_obs/tactile"].__setitem__((0, 0), 0.5),
    lambda f: f["data/demo_0/rewards"].__setitem__(0, 9.0),
    lambda f: f["data"].attrs.__setitem__("task_version", 5),
], ids=["actions", "obs", "next_obs", "rewards", "task_version"])
def test_content_hash_covers_what_training_reads(tmp_path: Path, state_dataset: Path, edit) -> None:
    assert dataset_hash(_corrupt(state_dataset, tmp_path, edit)) != dataset_hash(state_dataset)


def test_reader_layout_state(state_dataset: Path) -> None:
    """The rules robomimic, srl_il and Diffusion Policy's converter rely on, for a state dataset."""
    env = make_env(TASK, HAND)
    with h5py.File(state_dataset, "r") as file:
        data = file["data"]
        env_args = json.loads(data.attrs["env_args"])
        space = env_args["action_space"]
        np.testing.assert_array_equal(np.asarray(space["low"], np.float32), env.action_space.low)
        np.testing.assert_array_equal(np.asarray(space["high"], np.float32), env.action_space.high)
        assert "not normalized to [-1, 1]" in space["meaning"]
        for name in data:
            demo = data[name]
            steps = int(demo.attrs["num_samples"])
            assert sorted(demo["obs"]) == sorted(demo["next_obs"]) == sorted(env.observation_space.spaces)
            for key in demo["obs"]:
                for part in ("obs", "next_obs"):
                    item = demo[f"{part}/{key}"]
                    assert isinstance(item, h5py.Dataset), "every observation key is one flat dataset"
                    assert item.dtype == np.float32 and item.shape == (steps, *env.observation_space[key].shape)
                np.testing.assert_array_equal(demo[f"next_obs/{key}"][:-1], demo[f"obs/{key}"][1:])
            assert demo["final_state"].shape == demo["states"].shape[1:]
            # next_obs[T-1] is the observation after the last action, not a copy of obs[T-1]
            env.reset(seed=int(demo.attrs["seed"]))
            env.set_full_state(demo["final_state"][()])
            for key, value in env.state_observation().items():
                np.testing.assert_array_equal(demo[f"next_obs/{key}"][-1], value)
            assert not np.array_equal(demo["next_obs/agent_pos"][-1], demo["obs/agent_pos"][-1])
    env.close()


def test_reader_layout_pixels(pixels_dataset: Path) -> None:
    """Cameras are flat uint8 obs/<cam>_image datasets (T, H, W, 3), next_obs aligned, in a pixels file."""
    with h5py.File(pixels_dataset, "r") as file:
        demo = file["data/demo_0"]
        steps = int(demo.attrs["num_samples"])
        assert "pixels" not in demo["obs"]
        assert sorted(demo["obs"]) == sorted(demo["next_obs"]) == ["agent_pos", "environment_state", "tactile",
                                                                   "top_image"]
        for part in ("obs", "next_obs"):
            images = demo[f"{part}/top_image"]
            assert isinstance(images, h5py.Dataset) and images.dtype == np.uint8 and images.shape == (steps, 24, 32, 3)
        np.testing.assert_array_equal(demo["next_obs/top_image"][:-1], demo["obs/top_image"][1:])
        env = make_env(TASK, HAND, obs_mode="pixels", cameras=["top"], image_size=(24, 32))
        env.reset(seed=int(demo.attrs["seed"]))
        env.set_full_state(demo["final_state"][()])
        np.testing.assert_array_equal(demo["next_obs/top_image"][-1], env.render_camera("top"))
        env.close()


def test_version_1_files_are_refused_with_the_command_that_regenerates_them(state_dataset: Path,
                                                                            tmp_path: Path) -> None:
    path = _corrupt(state_dataset, tmp_path, lambda f: f["data"].attrs.__setitem__("format_version", 1))
    with pytest.raises(HandbenchError) as info:
        open_dataset(path)
    text = str(info.value)
    assert "\n" not in text and "version-1" in text
    assert f"handbench generate-demos --task {TASK} --hand {HAND} --num-demos 2 --obs state --out {path}" in text


def _corrupt(source: Path, tmp_path: Path, edit) -> Path:
    path = tmp_path / "bad.hdf5"
    shutil.copy(source, path)
    with h5py.File(path, "a") as file:
        edit(file)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f["data"].attrs.__setitem__("format_version", 99), "format_version 99"),
    (lambda f: f["data"].attrs.__delitem__("env_args"), "data.env_args"),
    (lambda f: f["data/demo_1/obs"].__delitem__("tactile"), "demo_1 lacks dataset obs/tactile"),
    (lambda f: f["data"].__delitem__("demo_1"), "missing: demo_1"),
    (lambda f: (f["data/demo_0"].__delitem__("actions"),
                f["data/demo_0"].create_dataset("actions", data=np.zeros((3, 2), np.float32))), "demo_0/actions"),
    (lambda f: f["data"].attrs.__setitem__("total", 1), "data.total"),
    (lambda f: f.__delitem__("data"), "missing group 'data'"),
])
def test_invalid_files_are_refused_with_one_line(state_dataset: Path, tmp_path: Path, edit, message: str) -> None:
    path = _corrupt(state_dataset, tmp_path, edit)
    with pytest.raises(HandbenchError) as info:
        open_dataset(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_non_hdf5_and_truncated_files_are_refused(state_dataset: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(state_dataset.read_bytes()[:5000])
    for path in (garbage, truncated, tmp_path / "missing.hdf5"):
        with pytest.raises(HandbenchError, match=str(path)):
            open_dataset(path)


def test_rerendered_images_equal_collected_ones(pixels_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "rerendered.hdf5"
    assert rerender_dataset(pixels_dataset, out, ["top"], (24, 32)) == 1
    with open_dataset(pixels_dataset) as collected, open_dataset(out) as rendered:
        original, again = collected.episode(0), rendered.episode(0)
        assert original.pixels("top").shape == (original.num_samples, 24, 32, 3)
        assert original.pixels("top").std() > 0, "images should not be blank"
        np.testing.assert_array_equal(again.pixels("top"), original.pixels("top"))
        np.testing.assert_array_equal(again.final_observation["top_image"], original.final_observation["top_image"])
        np.testing.assert_array_equal(again.states, original.states)


def test_rerender_adds_a_camera_and_keeps_existing_ones(pixels_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "more.hdf5"
    rerender_dataset(pixels_dataset, out, ["overview"], (24, 32))
    with open_dataset(out) as dataset, open_dataset(pixels_dataset) as source:
        assert dataset.header.cameras == ["top", "overview"] and dataset.header.obs_mode == "pixels"
        np.testing.assert_array_equal(dataset.episode(0).pixels("top"), source.episode(0).pixels("top"))
        assert dataset.episode(0).pixels("overview").shape == source.episode(0).pixels("top").shape
    with pytest.raises(HandbenchError, match="already exists"):
        rerender_dataset(pixels_dataset, out, ["overview"], (24, 32))


def test_rerender_state_dataset_to_pixels_and_video(state_dataset: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    out = tmp_path / "pixels.hdf5"
    assert rerender_dataset(state_dataset, out, ["top"], (16, 16), episodes=[1]) == 1
    with open_dataset(out) as dataset, open_dataset(state_dataset) as source:
        assert dataset.seeds == [source.seeds[1]]
        assert dataset.episode(0).pixels("top").shape == (source.episode(1).num_samples, 16, 16, 3)
    video = tmp_path / "demo.mp4"
    frames = write_video(state_dataset, video, ["top", "overview"], (16, 16), episodes=[0])
    with open_dataset(state_dataset) as source:
        assert frames == source.episode(0).num_samples
    assert iio.imread(video).shape == (frames, 16, 32, 3)


def test_rerender_refuses_a_dataset_from_another_model(state_dataset: Path, tmp_path: Path) -> None:
    path = _corrupt(state_dataset, tmp_path, lambda f: f["data"].attrs.__setitem__("model_hash", "0123"))
    with pytest.raises(HandbenchError, match="cannot be re-rendered"):
        rerender_dataset(path, tmp_path / "out.hdf5", ["top"], (16, 16))
