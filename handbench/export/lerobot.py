"""Export to LeRobotDataset v3.0: parquet frames, one mp4 per camera, and ``meta/``.

Layout written (the paths are the templates LeRobot v3.0 records in ``meta/info.json``)::

    data/chunk-000/file-000.parquet                       one row per frame, episodes back to back
    videos/observation.images.<cam>/chunk-000/file-000.mp4 all episodes of one camera, back to back
    meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet

Row ``t`` holds the observation before action ``t``, the action, and ``next.reward`` / ``next.done`` /
``next.success`` after it (the HDF5's ``rewards[t]``, ``dones[t]``; success on the last frame of a
successful episode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handbench.dataset import DemoDataset, Episode
from handbench.errors import HandbenchError
from handbench.export.common import dataset_cameras, dataset_fps, provenance, state_arrays
from handbench.export.feature_stats import (
    array_stats,
    channel_histogram,
    histogram_quantiles,
    image_stats,
    pool_stats,
    quantile_stats,
    sampled_frames,
    stats_to_json,
)
from handbench.export.video import VideoConfig, VideoWriter, read_video

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILE_SIZE_MB = 100
VIDEO_FILE_SIZE_MB = 500
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
STATE_FEATURES = {
    "agent_pos": "observation.state",
    "environment_state": "observation.environment_state",
    "tactile": "observation.tactile",
}
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def image_feature(camera: str) -> str:
    return f"observation.images.{camera}"


@dataclass(frozen=True)
class LeRobotExportConfig:
    video: VideoConfig = field(default_factory=VideoConfig)
    data_file_size_mb: int = DATA_FILE_SIZE_MB
    image_stats_frames: int = 100


def _dimension_names(hand: str) -> dict[str, list[str] | None]:
    """Per-dimension names from the hand's joints and sensors, when the hand is known."""
    from handbench.hands import HANDS

    spec = HANDS.get(hand)
    if spec is None:
        return {}
    joints = list(spec.wrist_joints + spec.finger_joints)
    return {
        "observation.state": [f"{j}.pos" for j in joints] + [f"{j}.vel" for j in joints],
        "action": joints,
        "observation.tactile": list(spec.touch_sensors),
    }


def _task_description(task: str) -> str:
    try:
        from handbench.registry import get_task_class

        return get_task_class(task).description
    except HandbenchError:
        return task


def _frame_columns(episode: Episode, episode_index: int, first_index: int, fps: float) -> dict[str, np.ndarray]:
    """The numeric columns of one episode, keyed by LeRobot feature name."""
    length = episode.num_samples
    frame_index = np.arange(length, dtype=np.int64)
    success = np.zeros(length, dtype=bool)
    success[-1] = episode.success
    columns: dict[str, np.ndarray] = {
        STATE_FEATURES[key]: value.astype(np.float32) for key, value in state_arrays(episode).items()
    }
    columns.update({
        "action": episode.actions.astype(np.float32),
        "next.reward": episode.rewards.astype(np.float32).reshape(length),
        "next.done": episode.dones.astype(bool).reshape(length),
        "next.success": success,
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(length, episode_index, dtype=np.int64),
        "index": first_index + frame_index,
        "task_index": np.zeros(length, dtype=np.int64),
    })
    return columns


def _arrow_column(values: np.ndarray):
    import pyarrow as pa

    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _feature_entry(values: np.ndarray, names: list[str] | None) -> dict[str, Any]:
    shape = [1] if values.ndim == 1 else [int(values.shape[1])]
    if names is not None and len(names) != shape[0]:
        names = None
    return {"dtype": str(values.dtype), "shape": shape, "names": names}


def _video_feature(frames: np.ndarray, fps: float, config: VideoConfig) -> dict[str, Any]:
    height, width, channels = (int(n) for n in frames.shape[1:])
    return {
        "dtype": "video",
        "shape": [height, width, channels],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height, "video.width": width, "video.codec": config.codec_name,
            "video.pix_fmt": config.pix_fmt, "video.is_depth_map": False, "video.fps": fps,
            "video.channels": channels, "has_audio": False,
        },
    }


def _plain_fps(fps: float) -> int | float:
    return int(fps) if float(fps).is_integer() else fps


class _ParquetShards:
    """Writes row groups into data/chunk-XXX/file-YYY.parquet, starting a new file past the size limit."""

    def __init__(self, root: Path, max_mb: int) -> None:
        self.root = root
        self.max_bytes = max_mb * 1024 * 1024
        self.chunk_index = 0
        self.file_index = 0
        self._writer = None
        self._bytes = 0

    def write(self, table) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._writer is not None and self._bytes + table.nbytes > self.max_bytes:
            self.close()
            self.file_index += 1
            if self.file_index == CHUNKS_SIZE:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
        if self._writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk_index, file_index=self.file_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, table.schema)
            self._bytes = 0
        self._writer.write_table(table)
        self._bytes += table.nbytes
        return self.chunk_index, self.file_index

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def export_lerobot(dataset: DemoDataset, out_dir: Path,
                   config: LeRobotExportConfig | None = None) -> dict[str, Any]:
    """Write ``dataset`` as a LeRobotDataset v3.0 into the (empty) directory ``out_dir``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = config or LeRobotExportConfig()
    header = dataset.header
    fps = dataset_fps(dataset)
    cameras = dataset_cameras(dataset)
    task = _task_description(header.task)
    names = _dimension_names(header.hand)
    shards = _ParquetShards(out_dir, config.data_file_size_mb)
    videos = {cam: VideoWriter(out_dir / VIDEO_PATH.format(video_key=image_feature(cam), chunk_index=0,
                                                          file_index=0), fps, config.video)
              for cam in cameras}
    features: dict[str, Any] = {}
    episode_rows: list[dict[str, Any]] = []
    episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
    all_values: dict[str, list[np.ndarray]] = {}  # numeric columns, for the dataset's quantiles
    histograms: dict[str, np.ndarray] = {}  # image feature -> (3, 256) level counts of the sampled frames
    total_frames = 0
    try:
        for episode_index, episode in enumerate(dataset.episodes()):
            length = episode.num_samples
            if length == 0:
                raise HandbenchError(f"{dataset.path}: demo_{episode_index} has no steps; cannot export it")
            columns = _frame_columns(episode, episode_index, total_frames, fps)
            table = pa.table({key: _arrow_column(value) for key, value in columns.items()})
            chunk_index, file_index = shards.write(table)
            stats = {key: array_stats(value) for key, value in columns.items()}
            for key, value in columns.items():
                all_values.setdefault(key, []).append(value)
            row: dict[str, Any] = {
                "episode_index": episode_index,
                "tasks": [task],
                "length": length,
                "data/chunk_index": chunk_index,
                "data/file_index": file_index,
                "dataset_from_index": total_frames,
                "dataset_to_index": total_frames + length,
            }
            for cam in cameras:
                key, frames = image_feature(cam), episode.pixels(cam)
                start = videos[cam].frames_written
                videos[cam].append(frames)
                row.update({
                    f"videos/{key}/chunk_index": 0,
                    f"videos/{key}/file_index": 0,
                    f"videos/{key}/from_timestamp": start / fps,
                    f"videos/{key}/to_timestamp": (start + length) / fps,
                })
                stats[key] = image_stats(frames, config.image_stats_frames)
                counts = channel_histogram(sampled_frames(frames, config.image_stats_frames))
                histograms[key] = histograms.get(key, 0) + counts
                features.setdefault(key, _video_feature(frames, fps, config.video))
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                        "seed": episode.seed, "success": episode.success})
            for feature, values in stats.items():
                for stat_name, value in values.items():
                    row[f"stats/{feature}/{stat_name}"] = np.asarray(value).tolist()
            if episode_index == 0:
                for key, value in columns.items():
                    features[key] = _feature_entry(value, names.get(key))
            episode_rows.append(row)
            episode_stats.append(stats)
            total_frames += length
    finally:
        shards.close()
        for writer in videos.values():
            writer.close()
    if not episode_rows:
        raise HandbenchError(f"{dataset.path} holds no episodes; nothing to export")

    meta = out_dir / "meta"
    episodes_path = out_dir / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), episodes_path)
    pd.DataFrame({"task_index": [0]}, index=pd.Index([task], name="task")).to_parquet(meta / "tasks.parquet")
    stats = {feature: pool_stats([ep[feature] for ep in episode_stats]) for feature in episode_stats[0]}
    for feature, values in all_values.items():
        stats[feature].update(quantile_stats(np.concatenate(values)))
    for feature, histogram in histograms.items():
        stats[feature].update(histogram_quantiles(histogram))
    (meta / "stats.json").write_text(json.dumps(stats_to_json(stats), indent=2))
    video_keys = [image_feature(cam) for cam in cameras]
    ordered = {key: features[key] for key in features if key not in INDEX_FEATURES and key not in video_keys}
    ordered.update({key: features[key] for key in [*video_keys, *INDEX_FEATURES]})
    info_json = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": header.hand,
        "total_episodes": len(episode_rows),
        "total_frames": total_frames,
        "total_tasks": 1,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": config.data_file_size_mb,
        "video_files_size_in_mb": VIDEO_FILE_SIZE_MB,
        "fps": _plain_fps(fps),
        "splits": {"train": f"0:{len(episode_rows)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cameras else None,
        "features": ordered,
        "handbench": provenance(dataset),
    }
    (meta / "info.json").write_text(json.dumps(info_json, indent=4))
    summary: dict[str, Any] = {"episodes": len(episode_rows), "frames": total_frames, "cameras": cameras}
    if cameras:
        summary["video_error"] = video_error(dataset, out_dir, cameras)
    return summary


def video_error(dataset: DemoDataset, out_dir: Path, cameras: list[str]) -> dict[str, dict[str, float]]:
    """How far the lossy mp4 frames are from the HDF5's images, per camera, in uint8 levels (out of 255):
    ``mean`` absolute error over every pixel and channel, and ``max`` over single pixels."""
    errors = {}
    for cam in cameras:
        decoded = read_video(out_dir / VIDEO_PATH.format(video_key=image_feature(cam), chunk_index=0, file_index=0))
        total, count, worst, start = 0.0, 0, 0, 0
        for episode in dataset.episodes(obs_keys=[f"{cam}_image"]):
            frames = episode.pixels(cam).astype(np.int16)
            diff = np.abs(decoded[start:start + len(frames)].astype(np.int16) - frames)
            total, count, worst = total + float(diff.sum()), count + diff.size, max(worst, int(diff.max()))
            start += len(frames)
        errors[cam] = {"mean": total / max(count, 1), "max": float(worst)}
    return errors
