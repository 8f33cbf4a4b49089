"""Batched rollouts: the rollout engine's lanes against the one-episode path and a gymnasium vector-env loop.

Each figure runs protocol episodes of one task with an untrained preset model of a baseline (inference
costs the same whatever the weights; every episode runs its full length since an untrained policy never
succeeds, so both sides of a ratio step the same number of times), in this process, with one torch thread:

- ``lanes L``: the rollout engine, ``L`` episodes in lockstep, one policy query of width ``L`` per step;
  ``lanes 1`` is the one-episode-per-query path (protocol hb-v1's);
- ``AsyncVectorEnv``: the loop lerobot-eval runs, a gymnasium ``AsyncVectorEnv`` of ``L`` subprocess envs
  stepped until all its episodes end, one batched query per step, then the next ``L`` seeds. Like for like with
  ``lanes L``: the same checkpoint and seeds, the same number of queries (a short last round padded on both
  sides) of the same width, the policy in the main process with one torch thread on both sides; the difference
  is where the envs step: in this process one after the other (engine), or in ``L`` subprocesses that share
  the machine's cores (vector env), which can overlap env steps with each other but not with the query;
- rows whose action depends on their lane, at each width above 1 (:func:`handbench.rollout.lane_dependent_rows`):
  a width a protocol can use has none on this machine;
- ``protocol`` (asked for with ``--only protocol``): the wall time of a full protocol evaluation of Diffusion
  Policy, every task and hand, three checkpoints, with the protocol's lanes and 2 workers.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from handbench.bench.report import BenchConfig, BenchReport, Figure, first_hand, first_task
from handbench.bench.timing import TimedDriver

BATCHED_SPEEDUP_TARGET = {"diffusion": 8.0}  # batched evaluation over the one-episode path, this 2-core CPU
VECTOR_ENV_TARGET = 1.0  # the rollout engine against an AsyncVectorEnv loop, same policy and seeds
ROLLOUT_POLICIES = ("diffusion", "act", "ibc")
ENV_THREADS = 2  # threads the engine's env steps are spread over in the threaded measure (this machine's cores)


def protocol_seeds(task: str, count: int) -> tuple[list[int], int, bool]:
    """The first ``count`` eval seeds of ``task`` in the default protocol, its episode length and stop rule."""
    from handbench.protocol import load_protocol

    entry = load_protocol().task(task)
    return list(entry.eval_seeds)[:count], entry.episode_steps, entry.stop_on_success


def bench_policy(name: str, task: str, hand: str, device: str = "cpu") -> Any:
    """An untrained cpu-small ``name`` for (task, hand), state observations (a tiny expert dataset gives its shapes)."""
    from handbench.bench.policies import timing_dataset, untrained_policy

    return untrained_policy(name, timing_dataset(task=task, hand=hand), device=device)


@dataclass
class LaneTiming:
    """Where the time of one engine run went (seconds), and each episode's return."""

    wall: float
    steps: int  # lockstep steps: one policy call each
    policy: float  # inside the policy's act_batch/act calls
    model: float  # of which inside the model's forward passes (predict_action)
    physics: float  # inside env.step
    returns: dict[int, float]

    @property
    def step_ms(self) -> float:
        return 1000 * self.wall / self.steps

    def shares(self) -> dict[str, float]:
        """Percent of the wall time: model forward, rest of the policy, env.step, engine (resets, checks, traces)."""
        parts = {"model forward": self.model, "rest of the policy": self.policy - self.model, "env.step": self.physics}
        parts["engine"] = self.wall - sum(parts.values())
        return {name: 100 * seconds / self.wall for name, seconds in parts.items()}


def time_lanes(policy: Any, task: str, hand: str, seeds: Sequence[int], lanes: int, steps: int,
               stop_on_success: bool, policy_noise: str = "episode", env_threads: int = 1) -> LaneTiming:
    """Run ``seeds`` through the rollout engine at width ``lanes`` (envs built beforehand; their steps spread over
    ``env_threads`` threads) and time its parts."""
    from handbench.registry import make_env
    from handbench.rollout import BatchDriver, EpisodeRequest, run_lanes

    envs = [make_env(task, hand) for _ in range(lanes)]
    requests = [EpisodeRequest(seed, steps, stop_on_success) for seed in seeds]
    with TimedDriver(BatchDriver(policy, lanes, policy_noise)) as driver:
        tic = time.perf_counter()
        traces = list(run_lanes(envs, driver, requests, env_threads=env_threads))
        seconds = time.perf_counter() - tic
    for env in envs:
        env.close()
    return LaneTiming(seconds, len(driver.call_seconds), sum(driver.call_seconds), driver.model_seconds,
                      sum(trace.physics_time for trace in traces),
                      {trace.seed: trace.total_return for trace in traces})


def time_vector_env(policy: Any, task: str, hand: str, seeds: Sequence[int], width: int, steps: int,
                    stop_on_success: bool) -> tuple[float, float]:
    """Seconds to run ``seeds`` the way lerobot-eval does: an ``AsyncVectorEnv`` of ``width`` envs, stepped in
    batches of ``width`` seeds until every episode of the batch has ended, one batched query per step; and of
    them, the seconds spent waiting for the vector env (reset and step)."""
    from gymnasium.vector import AsyncVectorEnv

    from handbench.registry import make_env
    from handbench.seeding import policy_noise_seed

    vector = AsyncVectorEnv([functools.partial(make_env, task, hand) for _ in range(width)])
    try:
        vector.reset(seed=0)  # start the subprocesses before the clock
        tic, waiting = time.perf_counter(), 0.0
        for start in range(0, len(seeds), width):
            batch = list(seeds[start:start + width])
            batch += [batch[-1]] * (width - len(batch))  # a short last batch fills the vector env
            began = time.perf_counter()
            observations, _ = vector.reset(seed=batch)
            waiting += time.perf_counter() - began
            for lane, seed in enumerate(batch):
                policy.reset_lane(lane, policy_noise_seed(seed, "episode"))
            done = np.zeros(width, dtype=bool)
            for _ in range(steps):
                rows = [{key: value[lane] for key, value in observations.items()} for lane in range(width)]
                actions = policy.act_batch(rows)
                began = time.perf_counter()
                observations, _, terminated, truncated, _ = vector.step(actions)
                waiting += time.perf_counter() - began
                done |= truncated | (terminated & stop_on_success)
                if done.all():
                    break
        return time.perf_counter() - tic, waiting
    finally:
        vector.close()


def lane_dependence(policy: Any, task: str, hand: str, seeds: Sequence[int], lanes: int) -> list[int]:
    """:func:`handbench.rollout.lane_dependent_rows` at width ``lanes``, on the initial observations of ``seeds``
    (repeated as needed), each row with its own noise stream."""
    from handbench.registry import make_env
    from handbench.rollout import lane_dependent_rows
    from handbench.seeding import policy_noise_seed

    env = make_env(task, hand)
    try:
        episode_seeds = [seeds[index % len(seeds)] for index in range(lanes)]
        observations = [env.reset(seed=seed)[0] for seed in episode_seeds]
    finally:
        env.close()
    noise = [policy_noise_seed(seed + index, "episode") for index, seed in enumerate(episode_seeds)]
    return lane_dependent_rows(policy, observations, noise)


def rollout_section(config: BenchConfig, report: BenchReport) -> None:
    """Per baseline: every lane width and the vector-env loop timed in alternating rounds, best of
    ``config.rounds``, so a load spike on a shared machine hits both sides of a ratio alike; then where a lockstep
    step's time goes. Lanes L over lanes 1 is (steps at 1 / steps at L) x (step of 1) / (step of L): the first
    factor is L, less the padded lanes of a short last round (50 seeds in 8 lanes: 5000 / 700 = 7.14; in 25 lanes
    none: 5000 / 200 = 25; in 32 lanes 5000 / 200 = 25 again, 14 lanes idle in the second round), so the
    speed-up reaches L only if a step of L lanes costs no more than a step of one and no lane is ever idle."""
    import torch

    torch.set_num_threads(1)
    task, hand = first_task(config), first_hand(config)
    seeds, steps, stop = protocol_seeds(task, 8 if config.quick else 50)
    batched = config.lanes[0]
    note = (f"{len(seeds)} seeds, {steps} steps, untrained cpu-small, 1 torch thread, {config.device}, "
            f"best of {config.rounds}")
    for name in config.policies or ROLLOUT_POLICIES:
        policy = bench_policy(name, task, hand, config.device)
        time_lanes(policy, task, hand, seeds[:1], 1, 2, stop)  # warm-up: first-call allocations
        best: dict[int, LaneTiming] = {}
        threaded = float("inf")  # the batched width with its envs stepped in ENV_THREADS threads
        vector: tuple[float, float] = (float("inf"), 0.0)
        for _ in range(config.rounds):
            for lanes in config.lanes:
                timing = time_lanes(policy, task, hand, seeds, lanes, steps, stop)
                if lanes not in best or timing.wall < best[lanes].wall:
                    best[lanes] = timing
            if batched > 1:
                threaded = min(threaded, time_lanes(policy, task, hand, seeds, batched, steps, stop,
                                                    env_threads=ENV_THREADS).wall)
            vector = min(vector, time_vector_env(policy, task, hand, seeds, batched, steps, stop))
        for lanes in config.lanes:
            report.figures.append(Figure("rollout", f"{name}, lanes {lanes}: {task} / {hand}",
                                         len(seeds) / best[lanes].wall, "episodes/s", note=note))
        for lanes in config.lanes[1:]:
            report.figures.append(Figure("rollout", f"{name}: lanes {batched} over lanes {lanes}",
                                         best[lanes].wall / best[batched].wall, "x",
                                         # the target is on the protocol's 50 seeds, not --quick's 8
                                         limit=BATCHED_SPEEDUP_TARGET.get(name)
                                         if lanes == 1 and not config.quick else None))
        for lanes in config.lanes:
            timing = best[lanes]
            shares = ", ".join(f"{part} {share:.0f}%" for part, share in timing.shares().items())
            report.figures.append(Figure("rollout", f"{name}, lanes {lanes}: one lockstep step", timing.step_ms, "ms",
                                         higher_is_better=False, note=shares))
        if 1 in best and batched != 1:
            cost = best[batched].step_ms / best[1].step_ms
            fewer = best[1].steps / best[batched].steps  # batched/1, less the padded lanes of a short last round
            report.figures.append(Figure(
                "rollout", f"{name}: a step of {batched} lanes over a step of 1", cost, "x", higher_is_better=False,
                note=f"lanes {batched} over lanes 1 = {best[1].steps} / {best[batched].steps} steps / {cost:.2f} "
                     f"= {fewer:.2f} / {cost:.2f} = {fewer / cost:.2f}x"))
        for lanes in config.lanes:
            if lanes > 1:
                moved = lane_dependence(policy, task, hand, seeds, lanes)
                report.figures.append(Figure(
                    "rollout", f"{name}, lanes {lanes}: rows whose action depends on their lane", len(moved), "rows",
                    higher_is_better=False,
                    note=(f"lanes {', '.join(map(str, moved))} differ from lane 0: results would depend on grouping"
                          if moved else "none: every lane bit-identical (rollout.lane_dependent_rows)")))
        if vector[0] < float("inf"):
            seconds, waiting = vector
            report.figures.append(Figure("rollout", f"{name}, AsyncVectorEnv({batched}) loop: {task} / {hand}",
                                         len(seeds) / seconds, "episodes/s",
                                         note=f"lerobot-eval's loop; env wait {100 * waiting / seconds:.0f}%"))
            report.figures.append(Figure("rollout", f"{name}: lanes {batched} over AsyncVectorEnv({batched})",
                                         seconds / best[batched].wall, "x", limit=VECTOR_ENV_TARGET,
                                         note=f"{os.cpu_count()} CPU cores; the vector env's subprocesses share them"))
            if threaded < float("inf"):
                report.figures.append(Figure(
                    "rollout",
                    f"{name}: lanes {batched}, envs in {ENV_THREADS} threads, over AsyncVectorEnv({batched})",
                    seconds / threaded, "x", limit=VECTOR_ENV_TARGET,
                    note=f"the engine's env steps spread over {ENV_THREADS} threads (run_lanes env_threads): "
                         f"{best[batched].wall / threaded:.2f}x its one-thread time; results unchanged"))


FULL_PROTOCOL_CHECKPOINTS = 3  # a full protocol evaluates three training seeds of every task and hand


def full_protocol_steps(protocol: Any) -> dict[tuple[str, str], int]:
    """Episode steps of a full protocol evaluation per (task, hand), every episode at full length (an untrained
    policy never succeeds): eval seeds x episode steps x three checkpoints."""
    return {(task, hand): len(entry.eval_seeds) * entry.episode_steps * FULL_PROTOCOL_CHECKPOINTS
            for task, entry in protocol.tasks.items() for hand in entry.hands}


def extrapolate_protocol(measured: dict[tuple[str, str], tuple[float, int]], full: dict[tuple[str, str], int]) -> float:
    """Seconds of the full protocol from a measured part: each (task, hand) of ``full`` costs its steps times the
    measured seconds per episode-step of its hand (over that hand's measured evaluations; of all of them for a hand
    not measured). A step is mostly the policy's batched query (over 90% for Diffusion Policy), whose cost depends
    on the hand (its action and observation sizes) far more than on the task."""
    def rate(pairs: list[tuple[float, int]]) -> float:
        return sum(seconds for seconds, _ in pairs) / sum(steps for _, steps in pairs)

    overall = rate(list(measured.values()))
    per_hand = {hand: rate([value for (_, h), value in measured.items() if h == hand])
                for hand in {hand for _, hand in measured}}
    return sum(steps * per_hand.get(hand, overall) for (_, hand), steps in full.items())


def protocol_section(config: BenchConfig, report: BenchReport) -> None:
    """Wall time of a full protocol evaluation of Diffusion Policy: every task and hand, ``config.checkpoints``
    checkpoints (3 in a full protocol), each (task, hand, checkpoint) one ``run_evaluation`` as ``handbench eval``
    runs it (2 workers, the protocol's lanes, Ray started each time). The models are untrained, so no episode
    ends early on success: an upper bound for trained checkpoints. A line per evaluation goes to stderr.

    When asked for part of the protocol only (``--task``, ``--hand``, ``--checkpoints`` below 3, ``--quick``), the
    full protocol's wall time is also given as an estimate, extrapolated by ``extrapolate_protocol`` from the
    measured seconds per episode-step (the note says from what)."""
    from handbench.evaluation import EvalConfig, run_evaluation
    from handbench.hands import HANDS
    from handbench.protocol import load_protocol

    protocol = load_protocol()
    tasks = list(config.tasks or protocol.tasks)
    hands = list(config.hands or HANDS)
    episodes = 4 if config.quick else None
    total, count, steps = 0.0, 0, 0
    measured: dict[tuple[str, str], tuple[float, int]] = {}
    for task in tasks:
        for hand in hands:
            policy = bench_policy("diffusion", task, hand, config.device)
            for checkpoint in range(config.checkpoints):
                tic = time.perf_counter()
                result = run_evaluation(EvalConfig(policy=policy, task=task, hand=hand, workers=2, episodes=episodes,
                                                   device=config.device, progress=False))
                seconds = time.perf_counter() - tic
                done = int(result.episodes["steps"].sum())
                total, count, steps = total + seconds, count + len(result.episodes), steps + done
                previous = measured.get((task, hand), (0.0, 0))
                measured[(task, hand)] = (previous[0] + seconds, previous[1] + done)
                print(f"protocol: {task} / {hand}, checkpoint {checkpoint + 1}/{config.checkpoints}: "
                      f"{len(result.episodes)} episodes in {seconds:.0f} s (total {total / 60:.1f} min)",
                      file=sys.stderr, flush=True)
    scope = (f"{len(tasks)} task(s) x {len(hands)} hand(s) x {config.checkpoints} checkpoint(s), {count} episodes, "
             f"{steps} steps")
    lanes = protocol.lanes
    note = f"untrained cpu-small (full-length episodes), 2 workers, {lanes} lanes"
    report.figures.append(Figure("protocol", f"diffusion: {protocol.name} protocol, {scope}", total / 60, "minutes",
                                 higher_is_better=False, note=note))
    full = full_protocol_steps(protocol)
    if sum(value for _, value in measured.values()) >= sum(full.values()) or not steps:
        return  # the whole protocol was measured
    pairs = len({task for task, _ in full}), len({hand for _, hand in full})
    report.figures.append(Figure(
        "protocol", f"diffusion: full {protocol.name} protocol, {pairs[0]} tasks x {pairs[1]} hands x "
                    f"{FULL_PROTOCOL_CHECKPOINTS} checkpoints (estimated)",
        extrapolate_protocol(measured, full) / 60, "minutes", higher_is_better=False,
        note=f"extrapolated, not measured: {sum(full.values())} episode-steps at the measured seconds per "
             f"episode-step of each hand ({', '.join(f'{t}/{h}' for t, h in measured)}); {note}"))
