"""Setting finished sweep work aside: moved under ``<work_dir>/stale/<time>/``, never deleted.

Both forgetting stale work (``handbench.sweep.stale``) and resubmitting the leaderboard entries it was part of
(``handbench.sweep.submitting``) move folders aside; they share these two functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from handbench.errors import HandbenchError


def with_folder(target: Path) -> Path:
    """Make ``target``'s parent folder if needed; returns ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def move_aside(source: Path, target: Path) -> None:
    """Move ``source`` (if it exists) to ``target``, making its folder; raises HandbenchError in one line."""
    if not source.exists():
        return
    try:
        shutil.move(str(source), str(with_folder(target)))
    except OSError as exc:
        raise HandbenchError(f"could not move {source} aside to {target}: {exc}") from exc
