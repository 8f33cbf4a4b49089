"""Submitting an entry: validate the results, refuse duplicates, store the entry, regenerate the files.

The existing leaderboard is loaded (and so re-validated) *before* anything is written, so a submission never
leaves the folder half-updated because an older entry had become invalid. ``reference=True`` stores the scripted
expert's results as an unranked reference entry (one run per task and hand, no checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from handbench.errors import HandbenchError
from handbench.leaderboard.generate import Leaderboard, write_generated
from handbench.leaderboard.provenance import validate_runs
from handbench.leaderboard.scores import EntryScores, rank_groups, score_entry, task_label, task_set
from handbench.leaderboard.submissions import (
    EntryInfo,
    check_entry_id,
    load_entry,
    project_prefixes,
    relativized,
    slugify,
    submissions_dir,
    write_entry,
)
from handbench.leaderboard.tables import interval_cell, percent_interval
from handbench.leaderboard.validate import META_FILE, load_results_dir, meta_protocol
from handbench.protocol import Protocol, load_protocol


@dataclass(frozen=True)
class SubmitResult:
    entry_dir: Path
    scores: EntryScores
    rank: int | None  # None for a reference entry: not ranked; else the rank within its task set
    entries: int  # ranked entries on the same task set (for a reference: method entries of the protocol)
    written: list[Path]

    def describe(self) -> str:
        entry = self.scores.entry
        if self.rank is None:
            lines = [f"added reference entry {self.scores.entry_id!r} at {self.entry_dir} (not ranked; "
                     f"{len(entry.runs)} results director{'y' if len(entry.runs) == 1 else 'ies'})"]
        else:
            tasks = ", ".join(task_label(key) for key in task_set(self.scores))
            lines = [f"added entry {self.scores.entry_id!r} at {self.entry_dir} (rank {self.rank} of "
                     f"{self.entries} on {entry.meta.get('protocol')} task set {tasks}; {entry.training_seeds} "
                     f"training seeds, {len(entry.runs)} results directories)"]
        for key, score in self.scores.tasks.items():
            lines.append(f"  {task_label(key)}: success "
                         f"{percent_interval(score.success_rate, score.ci_low, score.ci_high)} %")
        iqm, mean = self.scores.iqm, self.scores.mean
        lines.append(f"  overall: IQM {interval_cell(iqm)} %, mean {interval_cell(mean)} %")
        lines.extend(f"wrote {path}" for path in self.written)
        return "\n".join(lines)


def submit(results_dirs: Sequence[str | Path], info: EntryInfo, leaderboard_dir: str | Path = "leaderboard",
           entry_id: str | None = None, replace: bool = False, protocol: Protocol | None = None,
           reference: bool = False, project_dir: str | Path | None = None,
           carry_from: str | Path | None = None) -> SubmitResult:
    """Validate results directories and store them as an entry (see the module docstring). Absolute paths inside
    ``project_dir`` (default: the current folder) are stored relative to it. ``carry_from`` is an earlier copy of
    the entry kept elsewhere (``handbench sweep --forget-stale`` sets entries aside before resubmitting them): its
    unchanged runs keep their videos and verification records, as a replaced entry's do."""
    info.check()
    entry_id = check_entry_id(entry_id if entry_id is not None else slugify(info.method))
    if (submissions_dir(leaderboard_dir) / entry_id).exists() and not replace:
        raise HandbenchError(f"entry {entry_id!r} already exists in {submissions_dir(leaderboard_dir)}; pass "
                             f"--replace to overwrite it or --entry-id to choose another id")
    prefixes = project_prefixes(project_dir)
    runs = [relativized(load_results_dir(path), prefixes) for path in results_dirs]
    if protocol is None:
        try:
            protocol = load_protocol(meta_protocol(runs[0].meta) or "(none)")
        except HandbenchError as exc:
            raise HandbenchError(f"{runs[0].source / META_FILE}: {exc}") from exc
    validate_runs(runs, protocol, reference)
    board = Leaderboard.load(leaderboard_dir, without=entry_id if replace else None)
    for other in board.scores:
        shared = ({run.checkpoint_hash for run in runs} & {run.checkpoint_hash for run in other.entry.runs}) - {""}
        if shared:
            raise HandbenchError(f"checkpoint(s) {', '.join(sorted(shared))} are already on the leaderboard in entry "
                                 f"{other.entry_id!r}")
    entry_dir = write_entry(leaderboard_dir, entry_id, info, runs, protocol, replace=replace, reference=reference,
                            prefixes=prefixes, carry_from=carry_from)
    new_scores = score_entry(load_entry(leaderboard_dir, entry_id, protocol))  # read back: what is stored is ranked
    others = [scores for scores in board.scores if scores.entry_id != entry_id]
    updated = Leaderboard.from_scores(board.directory, [*others, new_scores])
    written = write_generated(updated)
    groups = rank_groups(updated.board(protocol.name).scores, protocol)
    position, entries = None, sum(len(group.entries) for group in groups)
    for group in groups:
        if new_scores in group.entries:
            position, entries = group.entries.index(new_scores) + 1, len(group.entries)
    return SubmitResult(entry_dir=entry_dir, scores=new_scores, rank=position, entries=entries, written=written)
