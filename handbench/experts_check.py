"""Expert health check: success rate of every task's scripted expert on the protocol's eval seeds.

A benchmark is only as good as its demonstrations; ``handbench check-experts`` (and the test suite,
on a few seeds) fails when an expert drops below ``SUCCESS_THRESHOLD``. Besides the eval seeds it checks
the experts on seeds they were never tuned on (``holdout``: outside the demo and eval splits) and on the
first demo seeds with action noise (``demo``), where the README's action-noise table comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handbench.errors import HandbenchError
from handbench.generate import EnvConfig
from handbench.protocol import DEFAULT_PROTOCOL, load_protocol

SUCCESS_THRESHOLD = 0.95
# 100 seeds outside both the demo split (below EVAL_SEED_BASE) and every protocol's eval seeds (EVAL_SEED_BASE
# and the next 49): the experts were never tuned on them.
HOLDOUT_SEEDS = tuple(range(2_000_000, 2_000_100))
DEMO_CHECK_SEEDS = tuple(range(50))  # the first demo seeds, where --action-noise matters
SPLITS = ("eval", "holdout", "demo")


@dataclass(frozen=True)
class ExpertCheck:
    task: str
    task_version: int  # the version its episodes ran at (the one the protocol pins)
    hand: str
    episodes: int
    successes: int
    mean_length: float
    failed_seeds: tuple[int, ...]

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def passed(self) -> bool:
        return self.success_rate >= SUCCESS_THRESHOLD


def check_experts(tasks: Sequence[str] | None, hands: Sequence[str], num_seeds: int | None = None,
                  workers: int | None = 0, ray_address: str | None = None,
                  protocol: str | None = None, split: str = "eval",
                  action_noise: float = 0.0) -> list[ExpertCheck]:
    """Evaluate each (task, hand) expert on the first ``num_seeds`` seeds (all when None) of ``split``: the
    protocol's eval seeds, :data:`HOLDOUT_SEEDS` or :data:`DEMO_CHECK_SEEDS`, with ``action_noise``.

    ``tasks`` None means the protocol's tasks; each runs at the version the protocol pins. A view over
    ``handbench eval --policy expert``: the same jobs, workers and success column, so an expert's success here
    is exactly its success in an evaluation. Raises :class:`HandbenchError` for a task the protocol lacks.
    """
    from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome
    from handbench.evaluation.policies import ExpertSource
    from handbench.evaluation.workers import run_jobs

    if split not in SPLITS:
        raise HandbenchError(f"unknown seed split {split!r}; valid: {', '.join(SPLITS)}")
    spec = load_protocol(protocol or DEFAULT_PROTOCOL)
    tasks = list(spec.tasks) if tasks is None else list(tasks)
    for task in tasks:
        EnvConfig(task, hands[0] if hands else "hb16").validate()
        spec.task(task)
    for hand in hands:
        EnvConfig(tasks[0], hand).validate()
    jobs = []
    for task in tasks:
        entry = spec.task(task)
        seeds = list(entry.eval_seeds if split == "eval" else HOLDOUT_SEEDS if split == "holdout"
                     else DEMO_CHECK_SEEDS)
        if num_seeds is not None:
            if not 1 <= num_seeds <= len(seeds):
                raise HandbenchError(f"--seeds must be in 1..{len(seeds)} (the {split} seeds), got {num_seeds}")
            seeds = seeds[:num_seeds]
        jobs += [EpisodeJob(task, hand, seed, entry.episode_steps, entry.stop_on_success,
                            task_version=entry.task_version)
                 for hand in hands for seed in seeds]
    rows: dict[tuple[str, str], list[dict]] = {(task, hand): [] for task in tasks for hand in hands}

    def keep(outcome: EpisodeOutcome) -> None:
        rows[(outcome.row["task"], outcome.row["hand"])].append(outcome.row)

    run_jobs(jobs, ExpertSource(action_noise), "state", workers, keep, ray_address)
    checks = []
    for (task, hand), found in rows.items():
        found.sort(key=lambda row: row["seed"])
        errors = [row["error"] for row in found if row["error"]]
        if errors:
            raise HandbenchError(f"the {task} expert failed with {hand}: {errors[0]}")
        checks.append(ExpertCheck(
            task=task, task_version=int(found[0]["task_version"]), hand=hand, episodes=len(found),
            successes=sum(bool(row["success"]) for row in found),
            mean_length=sum(row["steps"] for row in found) / len(found),
            failed_seeds=tuple(row["seed"] for row in found if not row["success"])))
    return checks
