"""Batched rollouts: the rollout engine's lanes against the one-episode path and a gymnasium vector-env loop.

Each figure runs protocol episodes of one task with an untrained preset model of a baseline (inference
costs the same whatever the weights; every episode runs its full length since an untrained policy never
succeeds, so both sides of a ratio step the same number of times), in this process, with one torch thread:

- ``lanes L``: the rollout engine, ``L`` episodes in lockstep, one policy query of width ``L`` per step;
  ``lanes 1`` is the one-episode-per-query path (protocol hb-v1's);
- ``AsyncVectorEnv``: the loop lerobot-eval runs, a gymnasium ``AsyncVectorEnv`` of ``L`` subprocess envs
  stepped until all its episodes end, one batched query per step, then the next ``L`` seeds;
- ``protocol`` (asked for with ``--only protocol``): the wall time of a full protocol evaluation of Diffusion
  Policy, every task and hand, three checkpoints, with the protocol's lanes and 2 workers.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from handbench.bench.report import BenchConfig, BenchReport, Figure, first_hand, first_task

BATCHED_SPEEDUP_TARGET = {"diffusion": 8.0}  # batched evaluation over the one-episode path, this 2-core CPU
VECTOR_ENV_TARGET = 1.0  # the rollout engine against an AsyncVectorEnv loop, same policy and seeds
ROLLOUT_POLICIES = ("diffusion", "act", "ibc")
PROTOCOL_CHECKPOINTS = 3
ROUNDS = 2  # alternating rounds per measure, best of


def protocol_seeds(task: str, count: int) -> tuple[list[int], int, bool]:
    """The first ``count`` eval seeds of ``task`` in the default protocol, its episode length and stop rule."""
    from handbench.protocol import load_protocol

    entry = load_protocol().task(task)
    return list(entry.eval_seeds)[:count], entry.episode_steps, entry.stop_on_success


def bench_policy(name: str, task: str, hand: str, device: str = "cpu") -> Any:
    """An untrained cpu-small ``name`` for (task, hand), state observations (a tiny expert dataset gives its shapes)."""
    from handbench.bench.policies import timing_dataset, untrained_policy

    return untrained_policy(name, timing_dataset(task=task, hand=hand), device=device)


def time_lanes(policy: Any, task: str, hand: str, seeds: Sequence[int], lanes: int, steps: int,
               stop_on_success: bool) -> tuple[float, dict[int, float]]:
    """Seconds to run ``seeds`` through the rollout engine at width ``lanes`` (envs built beforehand), and returns."""
    from handbench.env import HandEnv
    from handbench.rollout import BatchDriver, EpisodeRequest, run_lanes

    envs = [HandEnv(task, hand) for _ in range(lanes)]
    requests = [EpisodeRequest(seed, steps, stop_on_success) for seed in seeds]
    tic = time.perf_counter()
    traces = list(run_lanes(envs, BatchDriver(policy, lanes, "episode"), requests))
    seconds = time.perf_counter() - tic
    for env in envs:
        env.close()
    return seconds, {trace.seed: trace.total_return for trace in traces}


def time_vector_env(policy: Any, task: str, hand: str, seeds: Sequence[int], width: int, steps: int,
                    stop_on_success: bool) -> float:
    """Seconds to run ``seeds`` the way lerobot-eval does: an ``AsyncVectorEnv`` of ``width`` envs, stepped in
    batches of ``width`` seeds until every episode of the batch has ended, one batched query per step."""
    from gymnasium.vector import AsyncVectorEnv

    from handbench.env import HandEnv
    from handbench.seeding import policy_noise_seed

    vector = AsyncVectorEnv([functools.partial(HandEnv, task, hand) for _ in range(width)])
    try:
        vector.reset(seed=0)  # start the subprocesses before the clock
        tic = time.perf_counter()
        for start in range(0, len(seeds), width):
            batch = list(seeds[start:start + width])
            batch += [batch[-1]] * (width - len(batch))  # a short last batch fills the vector env
            observations, _ = vector.reset(seed=batch)
            for lane, seed in enumerate(batch):
                policy.reset_lane(lane, policy_noise_seed(seed, "episode"))
            done = np.zeros(width, dtype=bool)
            for _ in range(steps):
                rows = [{key: value[lane] for key, value in observations.items()} for lane in range(width)]
                observations, _, terminated, truncated, _ = vector.step(policy.act_batch(rows))
                done |= truncated | (terminated & stop_on_success)
                if done.all():
                    break
        return time.perf_counter() - tic
    finally:
        vector.close()


def rollout_section(config: BenchConfig, report: BenchReport) -> None:
    """Per baseline: every lane width (and, for Diffusion Policy, the vector-env loop) timed in alternating rounds,
    best of ``ROUNDS``, so a load spike on a shared machine hits both sides of a ratio alike."""
    import torch

    torch.set_num_threads(1)
    task, hand = first_task(config), first_hand(config)
    seeds, steps, stop = protocol_seeds(task, 8 if config.quick else 50)
    batched = config.lanes[0]
    note = f"{len(seeds)} seeds, {steps} steps, untrained cpu-small, 1 torch thread, {config.device}, best of {ROUNDS}"
    for name in config.policies or ROLLOUT_POLICIES:
        policy = bench_policy(name, task, hand, config.device)
        time_lanes(policy, task, hand, seeds[:1], 1, 2, stop)  # warm-up: first-call allocations
        seconds: dict[Any, float] = {}
        for _ in range(ROUNDS):
            for lanes in config.lanes:
                elapsed, _ = time_lanes(policy, task, hand, seeds, lanes, steps, stop)
                seconds[lanes] = min(seconds.get(lanes, float("inf")), elapsed)
            if name == "diffusion":
                elapsed = time_vector_env(policy, task, hand, seeds, batched, steps, stop)
                seconds["vector"] = min(seconds.get("vector", float("inf")), elapsed)
        for lanes in config.lanes:
            report.figures.append(Figure("rollout", f"{name}, lanes {lanes}: {task} / {hand}",
                                         len(seeds) / seconds[lanes], "episodes/s", note=note))
        for lanes in config.lanes[1:]:
            report.figures.append(Figure("rollout", f"{name}: lanes {batched} over lanes {lanes}",
                                         seconds[lanes] / seconds[batched], "x",
                                         limit=BATCHED_SPEEDUP_TARGET.get(name) if lanes == 1 else None))
        if "vector" in seconds:
            report.figures.append(Figure("rollout", f"{name}, AsyncVectorEnv({batched}) loop: {task} / {hand}",
                                         len(seeds) / seconds["vector"], "episodes/s", note="lerobot-eval's loop"))
            report.figures.append(Figure("rollout", f"{name}: lanes {batched} over AsyncVectorEnv({batched})",
                                         seconds["vector"] / seconds[batched], "x", limit=VECTOR_ENV_TARGET,
                                         note=f"{os.cpu_count()} CPU cores; the vector env's subprocesses share them"))


def protocol_section(config: BenchConfig, report: BenchReport) -> None:
    """Wall time of a full protocol evaluation of Diffusion Policy: every task and hand, three checkpoints."""
    from handbench.evaluation import EvalConfig, run_evaluation
    from handbench.hands import HANDS
    from handbench.registry import task_names

    tasks = list(config.tasks or task_names())
    hands = list(config.hands or HANDS)
    episodes = 4 if config.quick else None
    total, count = 0.0, 0
    for task in tasks:
        for hand in hands:
            policy = bench_policy("diffusion", task, hand, config.device)
            for _ in range(PROTOCOL_CHECKPOINTS):
                tic = time.perf_counter()
                result = run_evaluation(EvalConfig(policy=policy, task=task, hand=hand, workers=2, episodes=episodes,
                                                   progress=False))
                total += time.perf_counter() - tic
                count += len(result.episodes)
    scope = f"{len(tasks)} task(s) x {len(hands)} hand(s) x {PROTOCOL_CHECKPOINTS} checkpoints, {count} episodes"
    report.figures.append(Figure("protocol", f"diffusion: full protocol, {scope}", total / 60, "minutes",
                                 higher_is_better=False, note="untrained cpu-small, 2 workers, protocol lanes"))
