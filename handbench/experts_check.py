"""Expert health check: success rate of every task's scripted expert on the protocol's eval seeds.

A benchmark is only as good as its demonstrations; ``handbench check-experts`` (and the test suite,
on a few seeds) fails when an expert drops below ``SUCCESS_THRESHOLD``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handbench.errors import HandbenchError
from handbench.generate import EnvConfig, EpisodeOutcome, RunnerPool
from handbench.parallel import cluster_address, probe_address
from handbench.protocol import eval_seeds

SUCCESS_THRESHOLD = 0.95


@dataclass(frozen=True)
class ExpertCheck:
    task: str
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


def check_experts(tasks: Sequence[str], hands: Sequence[str], num_seeds: int | None = None,
                  workers: int = 0, ray_address: str | None = None) -> list[ExpertCheck]:
    """Run each (task, hand) expert on the first ``num_seeds`` eval seeds (all when None)."""
    address = cluster_address(ray_address)
    if workers and address:
        probe_address(address)  # a dead cluster fails in seconds, in one line
    configs = [EnvConfig(task, hand) for task in tasks for hand in hands]
    for config in configs:
        config.validate()
    seeds_of = {}
    for task in tasks:
        seeds = eval_seeds(task)
        if num_seeds is not None:
            if not 1 <= num_seeds <= len(seeds):
                raise HandbenchError(f"--seeds must be in 1..{len(seeds)} (the protocol's eval seeds), "
                                     f"got {num_seeds}")
            seeds = seeds[:num_seeds]
        seeds_of[task] = seeds
    jobs = iter([(config, seed) for config in configs for seed in seeds_of[config.task]])
    outcomes: dict[tuple[str, str], list[EpisodeOutcome]] = {(c.task, c.hand): [] for c in configs}
    with RunnerPool(workers, ray_address) as pool:
        for outcome in pool.imap_unordered("outcome", jobs):
            outcomes[(outcome.task, outcome.hand)].append(outcome)
    checks = []
    for (task, hand), rows in outcomes.items():
        rows.sort(key=lambda row: row.seed)
        checks.append(ExpertCheck(
            task=task, hand=hand, episodes=len(rows), successes=sum(row.success for row in rows),
            mean_length=sum(row.length for row in rows) / len(rows),
            failed_seeds=tuple(row.seed for row in rows if not row.success)))
    return checks
