"""Expert health check: success rate of every task's scripted expert on the protocol's eval seeds.

A benchmark is only as good as its demonstrations; ``handbench check-experts`` (and the test suite,
on a few seeds) fails when an expert drops below ``SUCCESS_THRESHOLD``. Besides the eval seeds it checks
the experts on seeds they were never tuned on (``holdout``: outside the demo and eval splits) and on the
first demo seeds with action noise (``demo``), where the README's action-noise table comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from handbench.errors import HandbenchError
from handbench.generate import EnvConfig
from handbench.protocol import DEFAULT_PROTOCOL, load_protocol

if TYPE_CHECKING:
    from handbench.evaluation.jobs import EpisodeJob
    from handbench.evaluation.policies import ExpertSource
    from handbench.protocol import Protocol

SUCCESS_THRESHOLD = 0.95
# 100 seeds outside both the demo split (below EVAL_SEED_BASE) and every protocol's eval seeds (EVAL_SEED_BASE
# and the next 49): the experts were never tuned on them.
HOLDOUT_SEEDS = tuple(range(2_000_000, 2_000_100))
HOLDOUT_SIZE = len(HOLDOUT_SEEDS)
DEMO_CHECK_SEEDS = tuple(range(50))  # the first demo seeds, where --action-noise matters
SPLITS = ("eval", "holdout", "demo")


@dataclass(frozen=True)
class ExpertCheck:
    task: str
    task_version: int  # the version its episodes ran at (the one the protocol pins)
    hand_version: int  # the hand's version (the one the protocol pins)
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
                  action_noise: float = 0.0, out: str | Path | None = None,
                  holdout_from: int | None = None) -> list[ExpertCheck]:
    """Evaluate each (task, hand) expert on the first ``num_seeds`` seeds (all when None) of ``split``: the
    protocol's eval seeds, :data:`HOLDOUT_SEEDS` (or the 100 seeds from ``holdout_from``, see
    :func:`holdout_seeds`) or :data:`DEMO_CHECK_SEEDS`, with ``action_noise``.

    ``tasks`` None means the protocol's tasks; each runs at the version the protocol pins. A view over
    ``handbench eval --policy expert``: the same jobs, workers and success column, so an expert's success here
    is exactly its success in an evaluation. With ``out``, every finished episode is kept there as it ends (one
    JSON file each, as ``handbench eval`` keeps them) and a rerun into the same folder skips the episodes
    already done (unless their task version, model or expert version changed); the folder is locked while in
    use. Raises :class:`HandbenchError` for a task the protocol lacks, bad seeds or a folder holding another
    check's episodes.
    """
    from handbench.evaluation.jobs import EpisodeJob
    from handbench.evaluation.policies import ExpertSource
    from handbench.evaluation.workers import run_jobs

    if split not in SPLITS:
        raise HandbenchError(f"unknown seed split {split!r}; valid: {', '.join(SPLITS)}")
    if holdout_from is not None and split != "holdout":
        raise HandbenchError(f"a holdout start only applies to the holdout split, not {split!r}")
    spec = load_protocol(protocol or DEFAULT_PROTOCOL)
    holdout = HOLDOUT_SEEDS if holdout_from is None else holdout_seeds(holdout_from)
    tasks = list(spec.tasks) if tasks is None else list(tasks)
    for task in tasks:
        EnvConfig(task, hands[0] if hands else "hb16").validate()
        spec.task(task)
    for hand in hands:
        EnvConfig(tasks[0], hand).validate()
    jobs = []
    for task in tasks:
        entry = spec.task(task)
        seeds = list(entry.eval_seeds if split == "eval" else holdout if split == "holdout"
                     else DEMO_CHECK_SEEDS)
        if num_seeds is not None:
            if not 1 <= num_seeds <= len(seeds):
                raise HandbenchError(f"--seeds must be in 1..{len(seeds)} (the {split} seeds), got {num_seeds}")
            seeds = seeds[:num_seeds]
        jobs += [EpisodeJob(task, hand, seed, entry.episode_steps, entry.stop_on_success,
                            task_version=entry.task_version, hand_version=spec.hand_version(hand))
                 for hand in hands for seed in seeds]
    rows: dict[tuple[str, str], list[dict]] = {(task, hand): [] for task in tasks for hand in hands}
    source = ExpertSource(action_noise)
    if out is None:
        run_jobs(jobs, source, "state", workers, lambda outcome: _keep(rows, outcome.row), ray_address)
    else:
        from handbench.locking import output_lock

        with output_lock(out):
            _run_resumably(jobs, source, spec, Path(out), rows, workers, ray_address,
                           {"check": "experts", "protocol": spec.name, "action_noise": action_noise})
    checks = []
    for (task, hand), found in rows.items():
        found.sort(key=lambda row: row["seed"])
        errors = [row["error"] for row in found if row["error"]]
        if errors:
            raise HandbenchError(f"the {task} expert failed with {hand}: {errors[0]}")
        checks.append(ExpertCheck(
            task=task, task_version=int(found[0]["task_version"]), hand=hand,
            hand_version=spec.hand_version(hand), episodes=len(found),
            successes=sum(bool(row["success"]) for row in found),
            mean_length=sum(row["steps"] for row in found) / len(found),
            failed_seeds=tuple(row["seed"] for row in found if not row["success"])))
    return checks


def holdout_seeds(first: int) -> tuple[int, ...]:
    """The :data:`HOLDOUT_SIZE` seeds from ``first``; raises :class:`HandbenchError` unless they all lie outside
    the demo split and every protocol's eval seeds (so no expert was tuned, and no demo made, on them) and none
    passes :data:`~handbench.seeding.MAX_EPISODE_SEED`."""
    from handbench.protocol import protocol_names
    from handbench.seeding import EVAL_SEED_BASE, MAX_EPISODE_SEED

    seeds = tuple(range(first, first + HOLDOUT_SIZE))
    if seeds[-1] > MAX_EPISODE_SEED:
        raise HandbenchError(f"holdout seeds from {first} would pass {MAX_EPISODE_SEED} (2**64 - 1), the largest "
                             f"episode seed; start at most {MAX_EPISODE_SEED - HOLDOUT_SIZE + 1}")
    if first < EVAL_SEED_BASE:
        raise HandbenchError(f"holdout seeds from {first} would overlap the demo split (seeds below "
                             f"{EVAL_SEED_BASE}); start at or above it, outside the eval seeds")
    eval_seeds = {seed for name in protocol_names() for entry in load_protocol(name).tasks.values()
                  for seed in entry.eval_seeds}
    clash = sorted(eval_seeds.intersection(seeds))
    if clash:
        raise HandbenchError(f"holdout seeds {first}-{seeds[-1]} overlap the protocols' eval seeds "
                             f"{clash[0]}-{clash[-1]}; pick a start outside them")
    return seeds


def _keep(rows: dict[tuple[str, str], list[dict]], row: dict) -> None:
    rows[(row["task"], row["hand"])].append(row)


def _run_resumably(jobs: list[EpisodeJob], source: ExpertSource, spec: Protocol, out: Path,
                   rows: dict[tuple[str, str], list[dict]], workers: int | None, ray_address: str | None,
                   signature: dict) -> None:
    """Run the jobs whose episodes ``out`` does not hold yet, writing each as it finishes; fill ``rows``."""
    from handbench.evaluation.jobs import EpisodeOutcome
    from handbench.evaluation.results import EpisodeStore, episode_key
    from handbench.evaluation.runner import resume_key, reusable_rows
    from handbench.evaluation.workers import run_jobs

    store = EpisodeStore(out)
    store.claim(signature)
    finished: dict[str, dict] = {}
    for task, hand in rows:
        fresh, _ = reusable_rows(store, [task], hand, spec, source)
        finished.update({key: row for key, row in fresh.items() if row["hand"] == hand})
    todo = []
    for job in jobs:
        row = finished.get(episode_key(job.task, job.hand, job.seed))
        if row is None:
            todo.append(job)
        else:
            _keep(rows, row)
    key = resume_key(source)

    def keep(outcome: EpisodeOutcome) -> None:
        row = {**outcome.row, "resume_key": key}
        store.add(row)
        _keep(rows, row)

    run_jobs(todo, source, "state", workers, keep, ray_address)
