"""Where evaluation episodes run: :class:`EpisodeWorker` objects in the one worker pool (handbench.parallel).

Each worker holds, per (task, hand) it has seen, one env per lane and the policy its PolicySource built,
so physics models, renderers and weights are created once per worker, inside it, never shipped across
processes. Jobs travel in groups of one (task, hand); a worker runs a group through the rollout engine
with the protocol's lane width, one batched policy query per step.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome, outcome_of

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.evaluation.policies import PolicySource
    from handbench.rollout import LaneDriver

# On one worker a group holds this many lane widths of episodes, so lanes refill as episodes end; with more workers
# a group is one width, so a task's 50 eval seeds keep two workers busy. A row's output does not depend on its lane
# (tests/test_rollout.py), so the grouping changes no result.
GROUP_LANE_WIDTHS = 2


class EpisodeWorker:
    """Runs groups of episode jobs; the same class serves in-process and as a Ray actor."""

    def __init__(self, source: PolicySource, obs_mode: str, lanes: int = 1, policy_noise: str = "fixed") -> None:
        import handbench.rendering  # noqa: F401  (importing handbench sets MUJOCO_GL before MuJoCo loads)

        self.source, self.obs_mode, self.lanes, self.policy_noise = source, obs_mode, lanes, policy_noise
        self.envs: dict[tuple[str, str, int | None, int | None], list[HandEnv]] = {}
        self.drivers: dict[tuple[str, str, int | None, int | None], LaneDriver | Exception] = {}

    def envs_for(self, task: str, hand: str, count: int, version: int | None = None,
                 hand_version: int | None = None) -> list[HandEnv]:
        from handbench.registry import make_env

        envs = self.envs.setdefault((task, hand, version, hand_version), [])
        options = self.source.env_options(self.obs_mode)  # a checkpoint's cameras and image size
        while len(envs) < count:
            envs.append(make_env(task, hand, version, hand_version, obs_mode=self.obs_mode, **options))
        return envs[:count]

    def driver_for(self, task: str, hand: str, version: int | None = None,
                   hand_version: int | None = None) -> LaneDriver | Exception:
        """The lane driver of (task, hand, version, hand version), or the exception building the policy raised
        (its episodes fail)."""
        key = (task, hand, version, hand_version)
        if key not in self.drivers:
            try:
                env = self.envs_for(task, hand, 1, version, hand_version)[0]
                self.drivers[key] = self.source.lane_driver(env, self.lanes, self.policy_noise)
            except Exception as exc:  # a broken policy fails its episodes, not the run
                self.drivers[key] = exc
        return self.drivers[key]

    def run_group(self, jobs: list[EpisodeJob]) -> list[EpisodeOutcome]:
        """Run jobs of one (task, hand) in lockstep lanes; outcomes in completion order."""
        import mujoco

        from handbench.rollout import EpisodeTrace, run_lanes
        from handbench.version import __version__

        task, hand, version, hand_version = jobs[0].task, jobs[0].hand, jobs[0].task_version, jobs[0].hand_version
        driver = self.driver_for(task, hand, version, hand_version)
        envs = self.envs_for(task, hand, 1 if isinstance(driver, Exception) else driver.width, version, hand_version)
        by_seed = {job.seed: job for job in jobs}
        if isinstance(driver, Exception):
            message = f"building/resetting the policy raised {type(driver).__name__}: {driver}"
            traces: Iterable[EpisodeTrace] = [EpisodeTrace(seed=job.seed, error=message[:500]) for job in jobs]
            width = 1
        else:
            traces, width = run_lanes(envs, driver, [job.request() for job in jobs]), driver.width
        env = envs[0]
        node = _node_id()
        outcomes = []
        for trace in traces:
            outcome = outcome_of(by_seed[trace.seed], trace, fps=1.0 / env.dt)
            outcome.row.update(obs_mode=self.obs_mode, task_version=int(env.task.version), model_hash=env.model_hash,
                               expert_version=self.source.expert_version(env), lanes=width,
                               handbench_version=__version__, mujoco_version=mujoco.__version__)
            outcome.extra["node"] = node
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        for envs in self.envs.values():
            for env in envs:
                env.close()
        self.envs.clear()


def _node_id() -> str:
    """The Ray node this worker runs on ("" in the driver's process without Ray)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return ray.get_runtime_context().get_node_id()


def job_groups(jobs: list[EpisodeJob], lanes: int, refill: bool = True) -> Iterator[list[EpisodeJob]]:
    """Consecutive jobs of one (task, hand), at most ``GROUP_LANE_WIDTHS * lanes`` per group with ``refill``,
    else ``lanes`` (1 at width 1)."""
    size = 1 if lanes == 1 else (GROUP_LANE_WIDTHS if refill else 1) * lanes
    group: list[EpisodeJob] = []
    for job in jobs:
        if group and (len(group) == size or (job.task, job.hand) != (group[0].task, group[0].hand)):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def run_jobs(jobs: Iterable[EpisodeJob], source: PolicySource, obs_mode: str, workers: int | None,
             on_outcome: Callable[[EpisodeOutcome], None], ray_address: str | None = None,
             torch_threads: int = 1, lanes: int = 1, policy_noise: str = "fixed") -> int:
    """Run every job, calling ``on_outcome`` in the driver as each finishes (in completion order).

    ``workers``: see :func:`handbench.parallel.resolve_workers`. Returns the number of workers used (0: in
    this process).
    """
    from handbench.parallel import WorkerPool, cluster_address, resolve_workers

    jobs = list(jobs)
    parallel = resolve_workers(workers, len(jobs), cluster=cluster_address(ray_address) is not None) not in (0, 1)
    groups = list(job_groups(jobs, source.lane_width(lanes), refill=not parallel))
    if not groups:
        return 0
    with WorkerPool(EpisodeWorker, (source, obs_mode, lanes, policy_noise), workers, len(groups), ray_address,
                    torch_threads) as pool:
        for outcomes in pool.map_unordered("run_group", ((group,) for group in groups)):
            for outcome in outcomes:
                on_outcome(outcome)
        return pool.workers or 0
