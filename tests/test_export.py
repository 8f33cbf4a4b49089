"""Exports read back and compared with the HDF5 they came from (LeRobot v3.0 and Diffusion Policy zarr)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handbench.cli import main
from handbench.dataset import DatasetHeader, DemoDataset, Episode, write_dataset
from handbench.errors import HandbenchError
from handbench.export import export_dataset

CAMERAS = ("overview", "side")
LENGTHS = (5, 7)


def _frames(length: int, offset: int) -> np.ndarray:
    """Smooth images (compress well, so the lossy video stays close to them)."""
    y, x = np.mgrid[0:32, 0:32]
    frames = [np.stack([(x * 6 + t * 9 + offset) % 256, (y * 6 + offset) % 256, np.full_like(x, 40 + t * 5)], -1)
              for t in range(length)]
    return np.asarray(frames, dtype=np.uint8)


def _episode(index: int, length: int, pixels: bool) -> Episode:
    rng = np.random.default_rng(index)
    observations = {
        "agent_pos": rng.normal(size=(length, 44)).astype(np.float32),
        "environment_state": rng.normal(size=(length, 14)).astype(np.float32),
        "tactile": rng.uniform(size=(length, 5)).astype(np.float32),
    }
    if pixels:
        observations.update({f"{cam}_image": _frames(length + 1, 50 * k + index) for k, cam in enumerate(CAMERAS)})
    final = {key: value[-1] for key, value in observations.items()}
    observations = {key: value[:length] if key.endswith("_image") else value for key, value in observations.items()}
    return Episode(seed=index, success=index == 0, strategy="default", action_noise=0.0, episode_params={},
                   actions=rng.normal(size=(length, 22)).astype(np.float32), observations=observations,
                   rewards=rng.normal(size=length).astype(np.float32), states=rng.normal(size=(length, 9)),
                   final_observation=final, final_state=rng.normal(size=9))


@pytest.fixture(params=["state", "pixels"])
def dataset_path(request, tmp_path):
    pixels = request.param == "pixels"
    header = DatasetHeader(
        task="lift-cube", task_version=0, hand="hb16", env_name="handbench/lift-cube-hb16-v0", expert_version=0,
        model_hash="0" * 16, obs_mode=request.param, cameras=list(CAMERAS) if pixels else [],
        image_size=[32, 32], frame_skip=25, control_dt=0.05, action_noise=0.0, protocol="hb-v1",
        handbench_version="0.1.0", mujoco_version="test", action_low=[-1.5] * 22, action_high=[1.5] * 22)
    path = tmp_path / "demos.hdf5"
    write_dataset(path, header, [_episode(i, n, pixels) for i, n in enumerate(LENGTHS)])
    return path


def test_lerobot_export_matches_hdf5(dataset_path, tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    from handbench.export.video import read_video

    out = tmp_path / "lerobot"
    assert main(["export", "--dataset", str(dataset_path), "--format", "lerobot", "--out", str(out)]) == 0
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == 20 and info["total_episodes"] == 2 and info["total_frames"] == sum(LENGTHS)
    assert info["splits"] == {"train": "0:2"}
    frames = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0)).to_pandas()
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pandas()
    tasks = pd.read_parquet(out / "meta/tasks.parquet")
    assert list(tasks["task_index"]) == [0] and "cube" in tasks.index[0]
    stats = json.loads((out / "meta/stats.json").read_text())
    with DemoDataset(dataset_path) as dataset:
        cameras = [k.removesuffix("_image") for k in dataset.obs_keys if k.endswith("_image")]
        for index, episode in enumerate(dataset.episodes()):
            row = episodes.iloc[index]
            rows = frames.iloc[row["dataset_from_index"]:row["dataset_to_index"]]
            assert row["length"] == len(rows) == episode.num_samples and row["seed"] == episode.seed
            assert (rows["episode_index"] == index).all()
            assert list(rows["frame_index"]) == list(range(episode.num_samples))
            np.testing.assert_allclose(rows["timestamp"], np.arange(episode.num_samples) / 20, atol=1e-6)
            np.testing.assert_array_equal(np.stack(rows["action"]), episode.actions)
            np.testing.assert_array_equal(np.stack(rows["observation.state"]), episode.observations["agent_pos"])
            np.testing.assert_array_equal(np.stack(rows["observation.environment_state"]),
                                          episode.observations["environment_state"])
            np.testing.assert_array_equal(rows["next.reward"], episode.rewards)
            np.testing.assert_array_equal(rows["next.done"], episode.dones.astype(bool))
            assert list(rows["next.success"]) == [False] * (episode.num_samples - 1) + [episode.success]
            for cam in cameras:
                key = f"observation.images.{cam}"
                video = read_video(out / info["video_path"].format(video_key=key, chunk_index=0, file_index=0))
                first = round(row[f"videos/{key}/from_timestamp"] * 20)
                last = round(row[f"videos/{key}/to_timestamp"] * 20)
                decoded = video[first:last].astype(float)
                assert decoded.shape == episode.pixels(cam).shape
                assert np.abs(decoded - episode.pixels(cam)).mean() < 4.0  # lossy h264, crf 18
        assert set(info["features"]) >= {"observation.state", "action", "next.reward", "next.done", "next.success",
                                         "episode_index", "frame_index", "timestamp", "index", "task_index"}
        for cam in cameras:
            feature = info["features"][f"observation.images.{cam}"]
            assert feature["dtype"] == "video" and feature["shape"] == [32, 32, 3]
            assert np.asarray(stats[f"observation.images.{cam}"]["mean"]).shape == (3, 1, 1)
    assert info["features"]["action"]["shape"] == [22] and len(info["features"]["action"]["names"]) == 22
    all_actions = np.stack(frames["action"])
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], all_actions.std(0), rtol=1e-5, atol=1e-6)
    assert stats["action"]["count"] == [sum(LENGTHS)]
    for name, q in {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}.items():
        np.testing.assert_allclose(stats["action"][name], np.quantile(all_actions, q, axis=0, method="inverted_cdf"),
                                   rtol=1e-6)
        np.testing.assert_allclose(stats["observation.state"][name],
                                   np.quantile(np.stack(frames["observation.state"]), q, axis=0,
                                               method="inverted_cdf"), rtol=1e-6)
    assert (out.stat().st_mode & 0o777) == (0o777 & ~_umask())


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("dataset_path", ["pixels"], indirect=True)
def test_lerobot_image_quantiles_are_exact_over_the_sampled_frames(dataset_path, tmp_path):
    from handbench.export.video import read_video

    out = tmp_path / "lerobot"
    summary = export_dataset(dataset_path, "lerobot", out)
    stats = json.loads((out / "meta/stats.json").read_text())
    with DemoDataset(dataset_path) as dataset:
        for cam in CAMERAS:
            video = read_video(out / f"videos/observation.images.{cam}/chunk-000/file-000.mp4").astype(int)
            diff = np.abs(video - np.concatenate([ep.pixels(cam) for ep in dataset.episodes()]).astype(int))
            assert summary["video_error"][cam] == pytest.approx({"mean": diff.mean(), "max": diff.max()})
            # every frame is used for the quantiles: episodes are shorter than the 100-frame sample
            pixels = np.concatenate([ep.pixels(cam) for ep in dataset.episodes()]).reshape(-1, 3) / 255.0
            for name, q in {"q01": 0.01, "q50": 0.50, "q99": 0.99}.items():
                expected = np.quantile(pixels, q, axis=0, method="inverted_cdf").reshape(3, 1, 1)
                np.testing.assert_allclose(stats[f"observation.images.{cam}"][name], expected, atol=1e-9)


def test_zarr_export_matches_hdf5(dataset_path, tmp_path):
    import zarr

    out = tmp_path / "demos.zarr"
    summary = export_dataset(dataset_path, "zarr", out)
    assert summary["episodes"] == 2
    assert (out / ".zgroup").exists() and (out / "data/action/.zarray").exists()  # zarr format v2
    root = zarr.open_group(str(out), mode="r")
    ends = root["meta/episode_ends"][:]
    np.testing.assert_array_equal(ends, np.cumsum(LENGTHS))
    with DemoDataset(dataset_path) as dataset:
        starts = np.concatenate([[0], ends[:-1]])
        for episode, start, end in zip(dataset.episodes(), starts, ends, strict=True):
            np.testing.assert_array_equal(root["data/action"][start:end], episode.actions)
            np.testing.assert_array_equal(root["data/state"][start:end], episode.observations["agent_pos"])
            np.testing.assert_array_equal(root["data/tactile"][start:end], episode.observations["tactile"])
            np.testing.assert_array_equal(root["data/reward"][start:end], episode.rewards)
            for key in episode.observations:
                if key.endswith("_image"):
                    np.testing.assert_array_equal(root[f"data/img_{key.removesuffix('_image')}"][start:end],
                                                  episode.observations[key])
        assert list(root["meta/episode_seeds"][:]) == dataset.seeds
    assert root.attrs["handbench"]["task"] == "lift-cube"


def test_export_refuses_bad_input(dataset_path, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(HandbenchError, match="not empty"):
        export_dataset(dataset_path, "zarr", out)
    assert (out / "keep.txt").read_text() == "user data"
    with pytest.raises(HandbenchError, match="unknown export format"):
        export_dataset(dataset_path, "tfrecord", tmp_path / "x")
    bogus = tmp_path / "bogus.hdf5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(HandbenchError):
        export_dataset(bogus, "lerobot", tmp_path / "y")
    assert not (tmp_path / "y").exists()
    with pytest.raises(HandbenchError, match="replaces only an earlier zarr export"):
        export_dataset(dataset_path, "zarr", out, overwrite=True)
    assert (out / "keep.txt").read_text() == "user data", "--overwrite never replaces a folder of other files"


def test_overwrite_replaces_only_an_earlier_export_of_its_kind(dataset_path, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "zarr"
    export_dataset(dataset_path, "zarr", out)
    export_dataset(dataset_path, "zarr", out, overwrite=True)  # an earlier zarr export: replaced
    assert (out / "meta/episode_ends").exists()
    with pytest.raises(HandbenchError, match="is a zarr export"):
        export_dataset(dataset_path, "lerobot", out, overwrite=True)
    # The input: --out the folder that holds the source (and another file).
    folder = tmp_path / "d"
    folder.mkdir()
    source = folder / "D.hdf5"
    shutil.copy(dataset_path, source)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(HandbenchError, match="holds the source dataset"):
        export_dataset(source, "zarr", folder, overwrite=True)
    monkeypatch.chdir(folder)
    for out_arg in (".", str(folder)):
        with pytest.raises(HandbenchError, match="current folder|holds the source"):
            export_dataset("D.hdf5", "zarr", out_arg, overwrite=True)
    assert source.exists() and (folder / "notes.txt").read_text() == "mine"


def test_minari_export_reads_back_equal_to_hdf5(dataset_path, tmp_path, monkeypatch):
    """A real read-back with minari (installed with handbench): observations, actions, rewards, ends."""
    import os

    if not os.environ.get("CI"):  # a handbench dependency, so CI always runs this; a stale dev venv may lack it
        pytest.importorskip("minari")
    import minari

    out = tmp_path / "minari"
    assert main(["export", "--dataset", str(dataset_path), "--format", "minari", "--out", str(out)]) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    with DemoDataset(dataset_path) as dataset:
        pixels = dataset.header.obs_mode == "pixels"
        dataset_id = "handbench/lift-cube-hb16/" + ("expert-pixels-v0" if pixels else "expert-v0")
        loaded = minari.load_dataset(dataset_id)
        assert loaded.total_episodes == 2 and loaded.total_steps == sum(LENGTHS)
        for episode, data in zip(dataset.episodes(), loaded.iterate_episodes(), strict=True):
            assert data.id is not None and len(data) == episode.num_samples
            np.testing.assert_array_equal(data.actions, episode.actions)
            np.testing.assert_array_equal(data.rewards, episode.rewards)
            assert list(data.terminations) == [False] * (len(data) - 1) + [episode.success]
            assert list(data.truncations) == [False] * (len(data) - 1) + [not episode.success]
            keys = ["agent_pos", "tactile"] + ([] if pixels else ["environment_state"])
            for key in keys:
                np.testing.assert_array_equal(data.observations[key], episode.all_observations(key))
            for cam in CAMERAS if pixels else ():
                np.testing.assert_array_equal(data.observations["pixels"][cam],
                                              episode.all_observations(f"{cam}_image"))
        assert loaded.spec.observation_space["agent_pos"].shape == (44,)
        assert loaded.spec.action_space.shape == (22,)
