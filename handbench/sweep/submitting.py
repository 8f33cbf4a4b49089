"""Leaderboard entries from a sweep: one entry per (policy, observation mode, demos per task), resubmitted
(``--replace``) each time one more (task, hand) has all its training seeds, with the same validation and storage
as ``handbench submit``. Reference policies (expert, random, hold) make reference entries, one evaluation per
(task, hand)."""

from __future__ import annotations

import json
from typing import Any

from handbench.errors import HandbenchError
from handbench.leaderboard.submissions import EntryInfo, slugify, submissions_dir
from handbench.sweep.ledger import waiting_lock
from handbench.sweep.plan import REFERENCE_POLICIES, Run

# ``sweep`` arguments are handbench.sweep.runner.Sweep objects (not imported: runner imports this module).
Sweep = Any

REFERENCE_METHODS = {"expert": "Scripted expert", "random": "Random floor", "hold": "Hold floor"}


def entry_id(sweep: Sweep, group: tuple[str, str, int | None]) -> str:
    """``<method slug>-<protocol>-<obs>[-<demos>-demos]``: distinct from every other protocol's entries."""
    policy, obs, demos = group
    parts = [slugify(method_name(sweep, policy)), sweep.plan.protocol, obs]
    if demos is not None:
        parts.append(f"{demos}-demos")
    return "-".join(parts)


def method_name(sweep: Sweep, policy: str) -> str:
    return sweep.plan.methods.get(policy) or REFERENCE_METHODS[policy]


def complete_runs(sweep: Sweep, group: tuple[str, str, int | None]) -> list[Run]:
    """The group's finished runs on every (task, hand) whose planned runs (all training seeds) are finished."""
    finished = sweep.finished()
    planned = [run for run in sweep.plan_runs if run.group == group and run.submit]
    by_pair: dict[tuple[str, str], list[Run]] = {}
    for run in planned:
        by_pair.setdefault((run.task, run.hand), []).append(run)
    return [run for runs in by_pair.values() if all(r.id in finished for r in runs) for run in runs]


def submit_group(sweep: Sweep, group: tuple[str, str, int | None]) -> str:
    """Submit (or resubmit) the group's entry when it has gained a complete (task, hand); returns what was done
    ('' when nothing changed)."""
    from handbench.leaderboard.submit import submit

    runs = complete_runs(sweep, group)
    if not runs:
        return ""
    identifier = entry_id(sweep, group)
    board = sweep.project / sweep.options.leaderboard_dir
    meta_path = submissions_dir(board) / identifier / "meta.json"
    with waiting_lock(board):
        if meta_path.exists():
            stored = json.loads(meta_path.read_text())
            if len(stored.get("runs", [])) == len(runs) and set(stored.get("tasks", [])) == {
                    f"{run.task}/{run.hand}" for run in runs}:
                return ""
        policy, obs, demos = group
        reference = policy in REFERENCE_POLICIES
        notes = (f"made with `handbench sweep {sweep.plan.source.as_posix()}`: "
                 + ("evaluated on the protocol's seeds" if reference else
                    f"{demos} expert demos per task ({obs}), preset {sweep.plan.preset}{_options(sweep, policy)}, "
                    "one training seed per run")
                 + f"; wall times in {sweep.plan.record_dir.as_posix()}/runs.csv")
        info = EntryInfo(method=method_name(sweep, policy), authors="handbench maintainers", notes=notes)
        result = submit([sweep.project / sweep.results_dir(run) for run in runs], info, leaderboard_dir=board,
                        entry_id=identifier, replace=meta_path.exists(), reference=reference,
                        project_dir=sweep.project)
    pairs = len({(run.task, run.hand) for run in runs})
    return f"submitted {identifier!r}: {pairs} task/hand pair(s), {len(runs)} results folders -> {result.entry_dir}"


def _options(sweep: Sweep, policy: str) -> str:
    words = sweep.plan.train_options.get(policy, ())
    return f" with `{' '.join(words)}`" if words else ""


def resubmit_groups(sweep: Sweep, groups: set[tuple[str, str, int | None]]) -> list[str]:
    """Bring the groups' entries in line with their finished runs after runs were forgotten: resubmitted from the
    complete (task, hand)s that remain, removed when none remains. Returns what was done, one line per entry."""
    import shutil

    messages: list[str] = []
    pending = sorted(groups, key=str)
    while pending:
        # Submitting validates every other entry on the board, and an entry later in the loop may still hold a
        # forgotten run: a group refused for that is tried again once the others are done.
        refused: list[tuple[tuple[str, str, int | None], HandbenchError]] = []
        for group in pending:
            identifier = entry_id(sweep, group)
            entry_dir = submissions_dir(sweep.project / sweep.options.leaderboard_dir) / identifier
            try:
                if complete_runs(sweep, group):
                    messages.append(submit_group(sweep, group) or f"{identifier!r} unchanged")
                elif entry_dir.exists():
                    with waiting_lock(sweep.project / sweep.options.leaderboard_dir):
                        shutil.rmtree(entry_dir)
                    messages.append(f"removed {identifier!r}: none of its (task, hand) pairs has all its runs any more")
            except HandbenchError as exc:
                refused.append((group, exc))
        if len(refused) == len(pending):  # no progress: what blocks them is outside these groups
            raise refused[0][1]
        pending = [group for group, _ in refused]
    return messages
