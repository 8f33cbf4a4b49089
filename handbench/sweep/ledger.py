"""The sweep's record of finished work: ``runs.csv`` (one row per finished run) and ``demos.csv`` (one row per
dataset made), in the plan's ``record_dir`` inside the repo.

A row says how the result was made (the exact train and eval commands, relative to the project), how long each
took (wall seconds, summed over interrupted attempts), where (host, device) and what came out (checkpoint hash,
success rate). Rows are appended under a lock, so sweeps sharded over several processes share one ledger; a
rewrite is atomic, so an interrupted sweep never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from handbench.atomic import atomic_write_text
from handbench.errors import HandbenchError
from handbench.locking import LockHeld, output_lock

RUN_COLUMNS = ("run_id", "stage", "policy", "obs", "task", "hand", "demos", "seed", "dataset", "train_command",
               "eval_command", "train_seconds", "eval_seconds", "success_rate", "episodes", "checkpoint_hash",
               "device", "host", "finished_at")
DEMO_COLUMNS = ("dataset", "task", "hand", "obs", "demos", "command", "seconds", "host", "finished_at")
LOCK_WAIT_S = 600.0


@contextlib.contextmanager
def waiting_lock(output: Path, wait_s: float | None = None) -> Iterator[None]:
    """:func:`handbench.locking.output_lock`, waiting (up to ``wait_s``, default LOCK_WAIT_S) for another sweep
    process to let go (a lock that cannot be written at all fails at once)."""
    deadline = time.monotonic() + (LOCK_WAIT_S if wait_s is None else wait_s)
    while True:
        try:
            lock = output_lock(output, flag="sweep record")
            lock.__enter__()
            break
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


class Ledger:
    """Rows of one CSV file, keyed by their first column."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path, self.columns = path, columns

    def rows(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != self.columns:
                raise HandbenchError(f"{self.path} has columns {', '.join(reader.fieldnames or ())}; expected "
                                     f"{', '.join(self.columns)} (a ledger from another handbench version?)")
            return {row[self.columns[0]]: row for row in reader}

    def record(self, row: dict[str, object]) -> None:
        """Add or replace the row with this key (atomic rewrite under the ledger's lock)."""
        missing = [column for column in self.columns if column not in row]
        if missing:
            raise ValueError(f"ledger row lacks {', '.join(missing)}")
        with waiting_lock(self.path):
            rows = self.rows()
            rows[str(row[self.columns[0]])] = {column: _text(row[column]) for column in self.columns}
            self._write(rows)

    def remove(self, keys: Iterable[str]) -> None:
        """Drop the rows with these keys (atomic rewrite under the ledger's lock; absent keys are ignored)."""
        drop = set(keys)
        if not drop:
            return
        with waiting_lock(self.path):
            self._write({key: row for key, row in self.rows().items() if key not in drop})

    def _write(self, rows: dict[str, dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows.values())
        atomic_write_text(self.path, buffer.getvalue())


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if value < 1 else f"{value:.1f}"
    return str(value)
