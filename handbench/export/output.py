"""Atomic directory output: an export is built in a hidden sibling folder and renamed into place.

A crash or Ctrl-C never leaves a half-written export that a loader would take as complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from handbench.atomic import ensure_writable_dir
from handbench.errors import HandbenchError


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``target``."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise HandbenchError(f"output {target} exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise HandbenchError(f"output directory {target} is not empty; pass --overwrite to replace it")
    ensure_writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
