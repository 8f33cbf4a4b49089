"""Per-entry statistics: per task (pooled Wilson interval, spread across training seeds) and overall
(mean and IQM over task x training-seed scores with stratified-bootstrap intervals).

Only method entries are ranked, and overall only against entries evaluated on the same task set (see
``rank_groups``); reference entries (the scripted expert, the random and hold floors) are scored the same way but
kept out of every ranking, since they are not trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handbench.errors import HandbenchError
from handbench.leaderboard.submissions import Entry
from handbench.leaderboard.validate import RunResults
from handbench.protocol import Protocol
from handbench.stats import aggregate_with_interval, probability_of_improvement_with_interval, seed_std, wilson_interval

TaskKey = tuple[str, str]  # (task, hand)


def task_label(key: TaskKey) -> str:
    return f"{key[0]}/{key[1]}"


@dataclass(frozen=True)
class TaskScore:
    task: str
    hand: str
    training_seeds: int
    episodes: int
    successes: int
    success_rate: float  # pooled over training seeds
    ci_low: float  # Wilson 95%
    ci_high: float
    seed_std: float  # sample std of the per-seed success rates
    mean_return: float


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class EntryScores:
    entry: Entry
    tasks: dict[TaskKey, TaskScore]
    matrix: np.ndarray  # success rate, training seeds x tasks (columns in the order of ``tasks``)
    mean: Interval  # stratified bootstrap 95%
    iqm: Interval
    seed_std: float  # sample std of the per-seed mean success over tasks

    @property
    def entry_id(self) -> str:
        return self.entry.entry_id

    @property
    def reference(self) -> bool:
        return self.entry.reference

    @property
    def obs_mode(self) -> str:
        return self.entry.runs[0].obs_mode

    @property
    def episodes(self) -> int:
        return sum(score.episodes for score in self.tasks.values())


def task_episodes(run: RunResults, key: TaskKey):
    return run.episodes[(run.episodes["task"] == key[0]) & (run.episodes["hand"] == key[1])]


def success_matrix(entry: Entry) -> np.ndarray:
    """Success rate of every training seed (rows, by training seed) on every (task, hand) (columns, sorted)."""
    columns = [[float(task_episodes(run, key)["success"].mean()) for run in covering]
               for key, covering in entry.runs_by_task.items()]
    return np.array(columns, dtype=float).T


def score_entry(entry: Entry) -> EntryScores:
    keys = entry.task_keys
    matrix = success_matrix(entry)
    tasks = {}
    for column, (task, hand) in enumerate(keys):
        episodes = [task_episodes(run, (task, hand)) for run in entry.runs_by_task[(task, hand)]]
        n = sum(len(frame) for frame in episodes)
        successes = sum(int(frame["success"].sum()) for frame in episodes)
        low, high = wilson_interval(successes, n)
        returns = np.concatenate([frame["return"].to_numpy(dtype=float) for frame in episodes])
        tasks[(task, hand)] = TaskScore(task=task, hand=hand, training_seeds=entry.training_seeds, episodes=n,
                                        successes=successes, success_rate=successes / n, ci_low=low, ci_high=high,
                                        seed_std=seed_std(matrix[:, column]), mean_return=float(returns.mean()))
    return EntryScores(entry=entry, tasks=tasks, matrix=matrix, mean=_overall(matrix, "mean"),
                       iqm=_overall(matrix, "iqm"), seed_std=seed_std(matrix.mean(axis=1)))


def _overall(matrix: np.ndarray, aggregate: str) -> Interval:
    """The aggregate with its bootstrap interval; with one run per task (a reference entry) there is nothing to
    resample, so the interval is left undefined (NaN) rather than shown as a zero-width certainty."""
    value, low, high = aggregate_with_interval(matrix, aggregate)
    if matrix.shape[0] < 2:
        return Interval(value, math.nan, math.nan)
    return Interval(value, low, high)


def task_set(scores: EntryScores) -> tuple[TaskKey, ...]:
    """The (task, hand) pairs an entry reports, sorted: entries are ranked overall only against entries with the
    same task set (an IQM over one easy task is not comparable with one over every task)."""
    return tuple(sorted(scores.tasks))


@dataclass(frozen=True)
class RankGroup:
    """Method entries evaluated on exactly the same task set, best first."""

    tasks: tuple[TaskKey, ...]
    complete: bool  # the protocol's full task set (every task with every hand)
    entries: list[EntryScores]

    @property
    def label(self) -> str:
        return ", ".join(task_label(key) for key in self.tasks)


def protocol_task_set(protocol: Protocol) -> tuple[TaskKey, ...]:
    return tuple(sorted((name, hand) for name, fixed in protocol.tasks.items() for hand in fixed.hands))


def rank_groups(scores: list[EntryScores], protocol: Protocol | None = None) -> list[RankGroup]:
    """Method entries ranked within their task set, best first (by overall IQM, then mean, then entry id); the
    protocol's full task set first, then larger sets before smaller ones. Reference entries are left out."""
    full = protocol_task_set(protocol) if protocol is not None else None
    by_set: dict[tuple[TaskKey, ...], list[EntryScores]] = {}
    for entry_scores in scores:
        if not entry_scores.reference:
            by_set.setdefault(task_set(entry_scores), []).append(entry_scores)
    groups = [RankGroup(tasks=keys, complete=keys == full,
                        entries=sorted(members, key=lambda s: (-s.iqm.value, -s.mean.value, s.entry_id)))
              for keys, members in by_set.items()]
    return sorted(groups, key=lambda group: (not group.complete, -len(group.tasks), group.tasks))


def overall_ranks(scores: list[EntryScores]) -> dict[str, int]:
    """entry id -> rank within its task set."""
    return {s.entry_id: rank for group in rank_groups(scores) for rank, s in enumerate(group.entries, 1)}


def rank_overall(scores: list[EntryScores], protocol: Protocol | None = None) -> list[EntryScores]:
    """Method entries in table order: task-set groups (see ``rank_groups``), each best first."""
    return [s for group in rank_groups(scores, protocol) for s in group.entries]


def rank_task(scores: list[EntryScores], key: TaskKey) -> list[EntryScores]:
    """Method entries that report ``key``, best first: by pooled success, then Wilson lower bound, then entry id."""
    having = [s for s in scores if key in s.tasks and not s.reference]
    return sorted(having, key=lambda s: (-s.tasks[key].success_rate, -s.tasks[key].ci_low, s.entry_id))


def reference_entries(scores: list[EntryScores], key: TaskKey | None = None) -> list[EntryScores]:
    """Reference entries (reporting ``key``, if given), by entry id: shown beside the ranking, never in it."""
    return sorted((s for s in scores if s.reference and (key is None or key in s.tasks)), key=lambda s: s.entry_id)


def all_task_keys(scores: list[EntryScores]) -> list[TaskKey]:
    return sorted({key for s in scores for key in s.tasks})


def coverage_text(scores: EntryScores, protocol: Protocol) -> str:
    """``k/M``: how many of the protocol's (task, hand) pairs the entry reports."""
    return f"{len(scores.tasks)}/{len(protocol_task_set(protocol))}"


def unreported_pairs(scores: list[EntryScores], protocol: Protocol) -> list[TaskKey]:
    """The protocol's (task, hand) pairs that no entry (method or reference) reports yet."""
    reported = set(all_task_keys(scores))
    return [key for key in protocol_task_set(protocol) if key not in reported]


@dataclass(frozen=True)
class Comparison:
    better: str
    worse: str
    tasks: list[TaskKey]
    probability: Interval


def compare(a: EntryScores, b: EntryScores) -> Comparison:
    """P(a > b) over the tasks both report, with a stratified-bootstrap 95% interval (same protocol only)."""
    protocols = (a.entry.meta.get("protocol"), b.entry.meta.get("protocol"))
    if protocols[0] != protocols[1]:
        raise HandbenchError(f"entries {a.entry_id!r} ({protocols[0]}) and {b.entry_id!r} ({protocols[1]}) were "
                             f"evaluated under different protocols; compare entries of one protocol")
    common = [key for key in a.tasks if key in b.tasks]
    if not common:
        raise HandbenchError(f"entries {a.entry_id!r} and {b.entry_id!r} share no task; cannot compare them")
    columns_a = [list(a.tasks).index(key) for key in common]
    columns_b = [list(b.tasks).index(key) for key in common]
    value, low, high = probability_of_improvement_with_interval(a.matrix[:, columns_a], b.matrix[:, columns_b])
    return Comparison(better=a.entry_id, worse=b.entry_id, tasks=common, probability=Interval(value, low, high))


OPEN, LEGACY, RELEASED = "open", "legacy", "released"  # a protocol's standing (ProtocolBoard.standing)
OPEN_STATUS = "open: not released yet; its tasks may still change, so its entries are provisional"
LEGACY_STATUS = "legacy: made under the older rules"


@dataclass(frozen=True)
class SweepReport:
    """A protocol's reference sweep report (``handbench sweep PLAN --report``): ``link``, its folder relative to the
    leaderboard folder; ``files``, the report's files that exist there (results and learning-curve tables and
    plots, compute), in a fixed order. The board links them; their numbers are not part of the leaderboard."""

    link: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolBoard:
    """The scored entries of one protocol."""

    protocol: Protocol
    scores: list[EntryScores]
    legacy: bool  # a newer released protocol has entries: these were made under the older rules
    sweep_report: SweepReport | None = None  # the protocol's reference sweep report, where the project has one

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def released(self) -> bool:
        return self.protocol.released

    @property
    def status(self) -> str:
        """The protocol's standing in a few words: open, legacy, or empty for the current released protocol."""
        if not self.released:
            return OPEN_STATUS
        return LEGACY_STATUS if self.legacy else ""

    @property
    def standing(self) -> str:
        """One word for machine-readable exports (the CSV's ``protocol_status``): ``open`` (not released: entries
        provisional), ``legacy`` (a newer released protocol has entries) or ``released`` (the current one)."""
        if not self.released:
            return OPEN
        return LEGACY if self.legacy else RELEASED

    @property
    def title(self) -> str:
        """``Protocol NAME``, with its status (open or legacy) in brackets."""
        return f"Protocol {self.name}" + (f" ({self.status})" if self.status else "")
