"""Leaderboard entries from a sweep: one entry per (policy, observation mode, demos per task), resubmitted
(``--replace``) each time one more (task, hand) has all its training seeds, with the same validation and storage
as ``handbench submit``. Reference policies (expert, random, hold) make reference entries, one evaluation per
(task, hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handbench.errors import HandbenchError
from handbench.leaderboard.submissions import EntryInfo, slugify, submissions_dir
from handbench.sweep.aside import move_aside
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


def submit_group(sweep: Sweep, group: tuple[str, str, int | None], carry_from: Path | None = None) -> str:
    """Submit (or resubmit) the group's entry when it has gained a complete (task, hand); returns what was done
    ('' when nothing changed). ``carry_from``: the entry's earlier copy, set aside, whose unchanged runs keep their
    verification records and videos."""
    from handbench.leaderboard.submit import submit

    if not complete_runs(sweep, group):
        return ""
    identifier = entry_id(sweep, group)
    board = sweep.project / sweep.options.leaderboard_dir
    meta_path = submissions_dir(board) / identifier / "meta.json"
    with waiting_lock(board):
        # Read again under the lock: another process may have finished a (task, hand) of the group and submitted it
        # while this one waited; runs read before would replace its entry with an older, smaller one.
        runs = complete_runs(sweep, group)
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
                        project_dir=sweep.project, carry_from=carry_from)
    pairs = len({(run.task, run.hand) for run in runs})
    return f"submitted {identifier!r}: {pairs} task/hand pair(s), {len(runs)} results folders -> {result.entry_dir}"


def _options(sweep: Sweep, policy: str) -> str:
    words = sweep.plan.train_options.get(policy, ())
    return f" with `{' '.join(words)}`" if words else ""


def resubmit_groups(sweep: Sweep, groups: set[tuple[str, str, int | None]], aside: Path) -> list[str]:
    """Bring the groups' entries in line with their finished runs after runs were forgotten: every entry of the
    groups is first moved to ``aside``/entries (several entries may each hold a forgotten run, and submitting
    validates every other entry on the board, so none could be resubmitted while another is still there), then
    resubmitted from the complete (task, hand)s that remain, keeping the verification records of its unchanged
    runs. Returns what was done, one line per entry.

    Raises HandbenchError (after trying every group) when an entry cannot be resubmitted; its earlier copy stays
    in ``aside``."""
    board = sweep.project / sweep.options.leaderboard_dir
    earlier: dict[tuple[str, str, int | None], Path] = {}
    with waiting_lock(board):
        for group in sorted(groups, key=str):
            entry_dir = submissions_dir(board) / entry_id(sweep, group)
            if entry_dir.exists():
                earlier[group] = aside / "entries" / entry_dir.name
                move_aside(entry_dir, earlier[group])
    messages: list[str] = []
    failures: list[str] = []
    for group in sorted(groups, key=str):
        identifier = entry_id(sweep, group)
        if not complete_runs(sweep, group):
            if group in earlier:
                messages.append(f"removed {identifier!r}: none of its (task, hand) pairs has all its runs any more")
            continue
        try:
            messages.append(submit_group(sweep, group, carry_from=earlier.get(group)))
        except HandbenchError as exc:
            failures.append(f"could not resubmit {identifier!r} ({exc}); its earlier copy is in {earlier.get(group)}")
    if failures:
        raise HandbenchError("; ".join(failures))
    return messages
