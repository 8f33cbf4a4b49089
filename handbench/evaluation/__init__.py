"""Evaluation on the protocol's seeds: Ray-parallel, resumable, with CSVs, summaries, videos and a plot.

``evaluate`` mirrors ``handbench eval``; see :mod:`handbench.evaluation.runner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from handbench.evaluation.runner import EvalConfig, EvalResult, run_evaluation
from handbench.protocol import DEFAULT_PROTOCOL


def evaluate(
    policy: Any = "expert",
    checkpoint: str | None = None,
    task: str | Sequence[str] | None = None,
    hand: str | None = None,
    obs_mode: str | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    videos: int = 0,
    out: str | Path | None = None,
    episodes: int | None = None,
    seeds: Sequence[int] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    progress: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Evaluate ``policy`` on the protocol's seeds; one row per episode, sorted by (task, hand, seed).

    ``policy`` is a name (``act``, ``diffusion``, ``ibc``, ``bc`` with ``checkpoint``; ``expert``;
    ``module:Class``), a Policy instance, or a callable ``(env, seed) -> Policy``. Unset task, hand and
    obs mode come from the checkpoint, else all tasks, hb16 and state. ``seeds`` limits the run to those of the
    protocol's eval seeds (each task); an unknown seed raises ``HandbenchError``. With ``out`` the run is
    resumable and writes episodes.csv, summary.csv, meta.json, success.png and videos/.
    """
    config = EvalConfig(policy=policy, checkpoint=checkpoint, task=task, hand=hand, obs_mode=obs_mode,
                        workers=workers, ray_address=ray_address, videos=videos, out=out, episodes=episodes,
                        seeds=None if seeds is None else tuple(int(seed) for seed in seeds), protocol=protocol,
                        progress=progress, device=device)
    return run_evaluation(config).episodes


__all__ = ["EvalConfig", "EvalResult", "evaluate", "run_evaluation"]
