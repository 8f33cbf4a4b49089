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
from handbench.leaderboard.scores import EntryScores, rank_overall, score_entry, task_label
from handbench.leaderboard.submissions import (
    EntryInfo,
    check_entry_id,
    load_entry,
    slugify,
    submissions_dir,
    write_entry,
)
from handbench.leaderboard.tables import interval_cell, percent_interval
from handbench.leaderboard.validate import current_protocol, load_results_dir, validate_runs
from handbench.protocol import Protocol


@dataclass(frozen=True)
class SubmitResult:
    entry_dir: Path
    scores: EntryScores
    rank: int | None  # None for a reference entry: not ranked
    entries: int  # ranked (method) entries on the leaderboard
    written: list[Path]

    def describe(self) -> str:
        entry = self.scores.entry
        if self.rank is None:
            lines = [f"added reference entry {self.scores.entry_id!r} at {self.entry_dir} (not ranked; "
                     f"{len(entry.runs)} results director{'y' if len(entry.runs) == 1 else 'ies'})"]
        else:
            lines = [f"added entry {self.scores.entry_id!r} at {self.entry_dir} (rank {self.rank} of "
                     f"{self.entries}; {entry.training_seeds} training seeds, {len(entry.runs)} results directories)"]
        for key, score in self.scores.tasks.items():
            lines.append(f"  {task_label(key)}: success "
                         f"{percent_interval(score.success_rate, score.ci_low, score.ci_high)} %")
        iqm, mean = self.scores.iqm, self.scores.mean
        lines.append(f"  overall: IQM {interval_cell(iqm)} %, mean {interval_cell(mean)} %")
        lines.extend(f"wrote {path}" for path in self.written)
        return "\n".join(lines)


def submit(results_dirs: Sequence[str | Path], info: EntryInfo, leaderboard_dir: str | Path = "leaderboard",
           entry_id: str | None = None, replace: bool = False, protocol: Protocol | None = None,
           reference: bool = False) -> SubmitResult:
    protocol = protocol or current_protocol()
    info.check()
    entry_id = check_entry_id(entry_id if entry_id is not None else slugify(info.method))
    if (submissions_dir(leaderboard_dir) / entry_id).exists() and not replace:
        raise HandbenchError(f"entry {entry_id!r} already exists in {submissions_dir(leaderboard_dir)}; pass "
                             f"--replace to overwrite it or --entry-id to choose another id")
    runs = [load_results_dir(path) for path in results_dirs]
    validate_runs(runs, protocol, reference)
    board = Leaderboard.load(leaderboard_dir, protocol, without=entry_id if replace else None)
    for other in board.scores:
        shared = ({run.checkpoint_hash for run in runs} & {run.checkpoint_hash for run in other.entry.runs}) - {""}
        if shared:
            raise HandbenchError(f"checkpoint(s) {', '.join(sorted(shared))} are already on the leaderboard in entry "
                                 f"{other.entry_id!r}")
    entry_dir = write_entry(leaderboard_dir, entry_id, info, runs, protocol, replace=replace, reference=reference)
    new_scores = score_entry(load_entry(leaderboard_dir, entry_id, protocol))  # read back: what is stored is ranked
    others = [scores for scores in board.scores if scores.entry_id != entry_id]
    written = write_generated(Leaderboard(board.directory, protocol, [*others, new_scores]))
    ranked = rank_overall([*others, new_scores])
    position = next((i for i, scores in enumerate(ranked, 1) if scores.entry_id == entry_id), None)
    return SubmitResult(entry_dir=entry_dir, scores=new_scores, rank=position, entries=len(ranked), written=written)
