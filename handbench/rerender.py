"""Images from stored simulator states: new cameras or sizes for a dataset, and videos of its episodes.

Datasets store ``env.full_state()`` of every step, and ``HandEnv.step`` leaves derived quantities
consistent with the state, so an image rendered here is byte-identical to one rendered during
collection with the same camera and size. Per-episode model changes (object size, mass ...) come
from the episode's seed, so each episode is first reset with its seed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from handbench.atomic import atomic_path
from handbench.dataset import DatasetHeader, DemoDataset, Episode, camera_of, image_key, write_dataset
from handbench.env import HandEnv
from handbench.errors import HandbenchError
from handbench.registry import compiled_model, make_env
from handbench.scene import MAX_RENDER_SIZE


def make_render_env(header: DatasetHeader, path: Path) -> HandEnv:
    """A state-mode env of the dataset's task and hand; refuses a dataset made from another model."""
    _, current_hash = compiled_model(header.task, header.hand, header.task_version, header.hand_version)
    if current_hash != header.model_hash:
        raise HandbenchError(
            f"{path} was recorded with model {header.model_hash} ({header.task} v{header.task_version}, "
            f"MuJoCo {header.mujoco_version}) but this install builds {current_hash}; its states cannot be "
            f"re-rendered faithfully")
    return make_env(header.task, header.hand, header.task_version, header.hand_version, obs_mode="state")


def render_states(env: HandEnv, seed: int, states: np.ndarray, cameras: Sequence[str],
                  size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Frames (T,H,W,3) per camera for one episode's stored states."""
    env.reset(seed=seed)
    if len(states) and not np.array_equal(env.full_state(), states[0]):
        raise HandbenchError(f"episode with seed {seed}: the stored initial state differs from the one this "
                             f"install builds from the seed (different task version?)")
    frames: dict[str, list[np.ndarray]] = {camera: [] for camera in cameras}
    for state in states:
        env.set_full_state(state)
        for camera in cameras:
            frames[camera].append(env.render_camera(camera, size))
    return {camera: np.stack(images) if images else np.zeros((0, *size, 3), np.uint8)
            for camera, images in frames.items()}


def _select(dataset: DemoDataset, episodes: Sequence[int] | None) -> list[int]:
    indices = list(range(dataset.num_demos)) if episodes is None else list(episodes)
    if len(set(indices)) != len(indices):
        raise HandbenchError(f"episodes {indices} list an episode more than once; give each once")
    for index in indices:
        dataset.group(index)  # one-line error for an index out of range
    return indices


def rerender_dataset(source: str | os.PathLike, out: str | os.PathLike, cameras: Sequence[str],
                     image_size: tuple[int, int], episodes: Sequence[int] | None = None,
                     overwrite: bool = False) -> int:
    """Write ``out``: the chosen episodes of ``source`` with ``cameras`` rendered at ``image_size``.

    Existing images of other cameras are kept when their size matches (so cameras can be added one at a
    time); ``out`` may be ``source`` itself (replaced atomically). Returns the number of episodes written.
    """
    source, out = Path(source), Path(out)
    if out.exists() and not overwrite:
        raise HandbenchError(f"{out} already exists; pass --overwrite to replace it")
    size = check_image_size(image_size)
    with DemoDataset(source) as dataset:
        header = dataset.header
        env = make_render_env(header, source)
        _check_cameras(env, cameras)
        indices = _select(dataset, episodes)
        same_size = header.obs_mode == "pixels" and tuple(header.image_size) == size
        kept = [cam for cam in header.cameras if same_size and cam not in cameras]
        new_header = DatasetHeader(**{**vars(header), "obs_mode": "pixels", "cameras": [*kept, *cameras],
                                      "image_size": list(size), "created": ""})
        obs_keys = [key for key in dataset.obs_keys if camera_of(key) is None or camera_of(key) in kept]

        def episodes_with_images() -> Iterator[Episode]:
            for episode in dataset.episodes(indices, obs_keys):
                states = np.concatenate([episode.states, episode.final_state[None]])
                images = render_states(env, episode.seed, states, cameras, size)
                for cam, frames in images.items():
                    episode.observations[image_key(cam)] = frames[:-1]
                    episode.final_observation[image_key(cam)] = frames[-1]
                yield episode

        try:
            return write_dataset(out, new_header, episodes_with_images())
        finally:
            env.close()


def write_video(source: str | os.PathLike, video: str | os.PathLike, cameras: Sequence[str],
                image_size: tuple[int, int], episodes: Sequence[int] | None = None) -> int:
    """An mp4 of the chosen episodes, cameras side by side, at the control rate. Returns the frame count."""
    import imageio

    source = Path(source)
    size = check_image_size(image_size)
    with DemoDataset(source) as dataset:
        env = make_render_env(dataset.header, source)
        _check_cameras(env, cameras)
        indices = _select(dataset, episodes)
        fps = max(1, round(1.0 / dataset.header.control_dt))
        count = 0
        try:
            with atomic_path(video) as tmp:
                mp4 = tmp.with_name(tmp.name + ".mp4")  # ffmpeg picks the container from the extension
                try:
                    writer = imageio.get_writer(mp4, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                                quality=8, macro_block_size=2, ffmpeg_log_level="error")
                    try:
                        for index in indices:
                            group = dataset.group(index)
                            images = render_states(env, int(group.attrs["seed"]), group["states"][()], cameras,
                                                   size)
                            for frame in np.concatenate([images[cam] for cam in cameras], axis=2):
                                writer.append_data(frame)
                                count += 1
                    finally:
                        writer.close()
                    os.replace(mp4, tmp)
                finally:
                    mp4.unlink(missing_ok=True)
        finally:
            env.close()
    return count


def check_image_size(size: Sequence[int]) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if not (0 < height <= MAX_RENDER_SIZE[0] and 0 < width <= MAX_RENDER_SIZE[1]):
        raise HandbenchError(f"image size {height} {width} out of range; height 1..{MAX_RENDER_SIZE[0]}, "
                             f"width 1..{MAX_RENDER_SIZE[1]}")
    return height, width


def _check_cameras(env: HandEnv, cameras: Sequence[str]) -> None:
    if not cameras:
        raise HandbenchError("name at least one camera (--cameras)")
    valid = [env.model.camera(i).name for i in range(env.model.ncam)]
    for camera in cameras:
        if camera not in valid:
            raise HandbenchError(f"unknown camera {camera!r}; valid: {', '.join(valid)}")
