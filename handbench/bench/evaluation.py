"""Evaluation: episodes/s in this process and with Ray workers, and the evaluator's own overhead.

The overhead is what an episode costs beyond ``env.step`` (physics) and the policy: reset, action checks,
result rows and the durable per-episode file, measured in-process so no Ray scheduling hides in it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from handbench.bench.report import WORKER_SPEEDUP_TARGET, BenchConfig, BenchReport, Figure, first_hand, first_task
from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome
from handbench.evaluation.policies import resolve_policy
from handbench.evaluation.results import EpisodeStore
from handbench.evaluation.workers import run_jobs
from handbench.parallel import ray_session
from handbench.protocol import load_protocol


@dataclass
class EvalThroughput:
    """Measured figures; rates are episodes per second of wall time."""

    task: str
    hand: str
    policy: str
    episodes: int
    in_process_episodes_per_s: float
    physics_ms_per_episode: float
    policy_ms_per_episode: float
    overhead_ms_per_episode: float  # evaluator's own time per episode, beyond physics and policy
    ray_start_s: float = 0.0
    ray_episodes_per_s: dict[int, float] = field(default_factory=dict)  # workers -> rate, actor start included
    ray_steady_episodes_per_s: dict[int, float] = field(default_factory=dict)  # after each worker's first episode

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jobs(task: str, hand: str, episodes: int) -> list[EpisodeJob]:
    entry = load_protocol().task(task)
    return [EpisodeJob(task, hand, seed, entry.episode_steps, entry.stop_on_success)
            for seed in list(entry.eval_seeds)[:episodes]]


def _arrival_times(jobs: list[EpisodeJob], source, workers: int, ray_address: str | None) -> list[float]:
    arrivals: list[float] = []
    run_jobs(jobs, source, "state", workers, lambda _: arrivals.append(time.perf_counter()), ray_address)
    return arrivals


def measure_eval_throughput(task: str = "lift-cube", hand: str = "hb16", episodes: int = 10,
                            worker_counts: Sequence[int] = (1, 2), policy: str = "expert",
                            checkpoint: str | None = None, ray_address: str | None = None) -> EvalThroughput:
    """Run ``episodes`` protocol episodes (state mode) in-process, then with each Ray worker count."""
    source = resolve_policy(policy, checkpoint)
    jobs = _jobs(task, hand, episodes)
    outcomes: list[EpisodeOutcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = EpisodeStore(tmp)

        def keep(outcome: EpisodeOutcome) -> None:
            store.add(outcome.row)
            outcomes.append(outcome)

        run_jobs(jobs[:1], source, "state", 0, lambda _: None)  # compile the model and build the policy once
        tic = time.perf_counter()
        run_jobs(jobs, source, "state", 0, keep)
        in_process = time.perf_counter() - tic
    physics = sum(o.row["physics_time"] for o in outcomes) / len(jobs)
    policy_time = sum(o.row["policy_time"] for o in outcomes) / len(jobs)
    result = EvalThroughput(task=task, hand=hand, policy=source.label, episodes=len(jobs),
                            in_process_episodes_per_s=len(jobs) / in_process,
                            physics_ms_per_episode=1000 * physics, policy_ms_per_episode=1000 * policy_time,
                            overhead_ms_per_episode=1000 * (in_process / len(jobs) - physics - policy_time))
    counts = [k for k in worker_counts if k > 0]
    if counts:
        tic = time.perf_counter()
        with ray_session(ray_address, max(counts)):
            result.ray_start_s = time.perf_counter() - tic
            for workers in counts:
                tic = time.perf_counter()
                arrivals = _arrival_times(jobs, source, workers, ray_address)
                result.ray_episodes_per_s[workers] = len(jobs) / (arrivals[-1] - tic)
                if len(jobs) > workers:  # steady state: from the workers-th arrival on, all actors are warm
                    span = arrivals[-1] - arrivals[workers - 1]
                    result.ray_steady_episodes_per_s[workers] = (len(jobs) - workers) / span
    return result


def eval_section(config: BenchConfig, report: BenchReport) -> None:
    task, hand = first_task(config), first_hand(config)
    result = measure_eval_throughput(task=task, hand=hand, episodes=config.episodes * 2, worker_counts=(1, 2))
    label = f"{task} / {hand}, {result.policy}"
    report.figures.append(Figure("eval", f"in-process: {label}", result.in_process_episodes_per_s, "episodes/s"))
    report.figures.append(Figure("eval", "evaluator overhead beyond physics and policy",
                                 result.overhead_ms_per_episode, "ms/episode", higher_is_better=False))
    steady = result.ray_steady_episodes_per_s or result.ray_episodes_per_s
    for workers in sorted(steady):
        report.figures.append(Figure("eval", f"{workers} Ray worker(s): {label}", steady[workers], "episodes/s",
                                     note="steady state (after each actor's first episode)"))
    if 1 in steady and 2 in steady:
        report.figures.append(Figure("eval", "speed-up, 2 workers over 1", steady[2] / steady[1], "x",
                                     limit=WORKER_SPEEDUP_TARGET, note=f"{os.cpu_count()} CPU cores on this machine"))
