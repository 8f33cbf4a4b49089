"""Result files of an evaluation run, and resuming one.

Every finished episode is written at once, atomically, as one small JSON file under
``<out>/episodes/``: an interruption loses nothing finished and a rerun skips it. The final tables
(``episodes.csv``, ``summary.csv``, ``meta.json``) are rebuilt from those files and written
atomically. ``run.json`` pins what a directory holds (policy, checkpoint hash, hand, obs mode,
protocol), so results of two different runs are never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from handbench.atomic import atomic_path, atomic_write_text, ensure_writable_dir
from handbench.errors import HandbenchError
from handbench.stats import wilson_interval

EPISODE_COLUMNS = (
    "task", "hand", "seed", "success", "success_at_end", "steps", "return", "time_to_success",
    "wall_time", "physics_time", "policy_time", "policy", "checkpoint", "checkpoint_hash", "obs_mode",
    "protocol", "task_version", "model_hash", "expert_version", "handbench_version", "mujoco_version", "error",
    "lanes",
)
SUMMARY_COLUMNS = (
    "task", "hand", "policy", "n", "successes", "success_rate", "ci_low", "ci_high", "mean_return",
    "mean_steps", "errors", "protocol_seeds", "complete", "checkpoint_hash", "protocol",
)
TIMING_COLUMNS = ("wall_time", "physics_time", "policy_time")  # the only columns that vary between runs


def episode_key(task: str, hand: str, seed: int) -> str:
    return f"{task}__{hand}__{seed}"


class EpisodeStore:
    """One JSON file per finished episode: durable, append-only, safe to resume from."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = ensure_writable_dir(out_dir)
        self.episode_dir = ensure_writable_dir(self.out_dir / "episodes")
        self.video_dir = self.out_dir / "videos"

    def claim(self, signature: dict[str, Any]) -> None:
        """Record what this directory holds; refuse a directory holding results of another run."""
        path = self.out_dir / "run.json"
        if path.is_file():
            try:
                previous = json.loads(path.read_text())
            except ValueError as exc:
                raise HandbenchError(f"{path} is corrupt; remove it or use another --out") from exc
            differing = sorted(k for k in signature if previous.get(k) != signature[k])
            if differing:
                what = ", ".join(f"{k}={previous.get(k)!r} (now {signature[k]!r})" for k in differing)
                raise HandbenchError(f"{self.out_dir} holds results of another run ({what}); use another --out")
        else:
            atomic_write_text(path, json.dumps(signature, indent=1) + "\n")

    def finished(self) -> dict[str, dict[str, Any]]:
        """Rows of the episodes already done (corrupt files are ignored: that episode is rerun)."""
        rows = {}
        for path in sorted(self.episode_dir.glob("*.json")):
            try:
                row = json.loads(path.read_text())
                rows[episode_key(row["task"], row["hand"], int(row["seed"]))] = row
            except (ValueError, KeyError, TypeError):
                continue
        return rows

    def add(self, row: dict[str, Any]) -> None:
        key = episode_key(row["task"], row["hand"], int(row["seed"]))
        atomic_write_text(self.episode_dir / f"{key}.json", json.dumps(row) + "\n")

    def video_path(self, task: str, hand: str, seed: int, success: bool) -> Path:
        return self.video_dir / f"{task}-{hand}-seed{seed}-{'success' if success else 'failure'}.mp4"

    def has_video(self, task: str, hand: str, seed: int) -> bool:
        return any(self.video_dir.glob(f"{task}-{hand}-seed{seed}-*.mp4"))

    def add_video(self, task: str, hand: str, seed: int, success: bool, data: bytes) -> Path:
        ensure_writable_dir(self.video_dir)
        path = self.video_path(task, hand, seed, success)
        with atomic_path(path, suffix=".mp4") as tmp:
            tmp.write_bytes(data)
        return path


def episodes_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with the fixed column order, sorted by (task, hand, seed)."""
    frame = pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
    if frame.empty:
        return frame
    frame["time_to_success"] = frame["time_to_success"].astype("Int64")
    for column in ("error", "expert_version"):  # rows resumed from older runs may lack the expert version
        frame[column] = ["" if pd.isna(value) else str(value) for value in frame[column]]
    frame["lanes"] = [1 if pd.isna(value) else int(value) for value in frame["lanes"]]  # older rows: width 1
    return frame.sort_values(["task", "hand", "seed"], kind="stable").reset_index(drop=True)


def summarize(episodes: pd.DataFrame, protocol_seeds: dict[str, int]) -> pd.DataFrame:
    """Per (task, hand): success rate with its Wilson 95% interval, mean return and steps."""
    records = []
    for (task, hand), group in episodes.groupby(["task", "hand"], sort=True):
        successes, n = int(group["success"].sum()), len(group)
        low, high = wilson_interval(successes, n)
        records.append({
            "task": task, "hand": hand, "policy": group["policy"].iloc[0], "n": n, "successes": successes,
            "success_rate": successes / n, "ci_low": low, "ci_high": high,
            "mean_return": float(group["return"].mean()), "mean_steps": float(group["steps"].mean()),
            "errors": int((group["error"] != "").sum()), "protocol_seeds": protocol_seeds.get(task, 0),
            "complete": n == protocol_seeds.get(task, -1), "checkpoint_hash": group["checkpoint_hash"].iloc[0],
            "protocol": group["protocol"].iloc[0],
        })
    return pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)


def read_episodes(path: str | Path) -> pd.DataFrame:
    """Read an ``episodes.csv`` back with the right dtypes (error stays a string)."""
    frame = pd.read_csv(path, dtype={"error": str, "checkpoint": str, "checkpoint_hash": str, "expert_version": str},
                        keep_default_na=False, na_values={"time_to_success": [""]})
    if "expert_version" not in frame.columns:  # written before handbench recorded it
        frame.insert(list(EPISODE_COLUMNS).index("expert_version"), "expert_version", "")
    if "lanes" not in frame.columns:  # written before handbench batched queries: one episode per query
        frame["lanes"] = 1
    frame["time_to_success"] = frame["time_to_success"].astype("Int64")
    return frame
