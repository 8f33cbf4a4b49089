"""Atomic directory output: an export is built in a hidden sibling folder and renamed into place.

A crash or Ctrl-C never leaves a half-written export that a loader would take as complete. Every export
carries a marker file naming its kind; ``overwrite`` replaces only a folder that is itself an earlier
export of the same kind, never one that holds the source dataset, other files, or the current folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from handbench.atomic import ensure_writable_dir
from handbench.errors import HandbenchError

MARKER = ".handbench-export.json"  # {"kind": <format>}: what makes a folder replaceable by --overwrite


def export_kind(folder: Path) -> str | None:
    """The kind of export ``folder`` holds according to its marker, or None if it is not an export."""
    try:
        return str(json.loads((folder / MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_replaceable(target: Path, kind: str, overwrite: bool, protected: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse, in one line, an output folder that must not be (re)written; see the module docstring."""
    resolved = target.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise HandbenchError(f"--out {target} is the current folder or holds it; name a new folder for the export")
    for path in protected:
        if resolved in Path(path).resolve().parents:
            raise HandbenchError(f"--out {target} holds the source dataset {path}; name a new folder for the export")
    if target.exists() and not target.is_dir():
        raise HandbenchError(f"--out {target} exists and is a file; give a folder for the export")
    if not target.exists() or not any(target.iterdir()):
        return
    found = export_kind(target)
    if not overwrite:
        hint = "; pass --overwrite to replace it" if found == kind else ""
        raise HandbenchError(f"output directory {target} is not empty{hint}")
    if found != kind:
        what = f"a {found} export" if found else "not an export written by handbench"
        raise HandbenchError(f"--overwrite replaces only an earlier {kind} export, and {target} is {what}; "
                             "name a new folder")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, kind: str, overwrite: bool = False,
                     protected: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``target``, marked as a ``kind`` export."""
    target = Path(target).absolute()
    check_replaceable(target, kind, overwrite, protected)
    ensure_writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; an export is a normal folder (0755 under umask 022)
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
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
