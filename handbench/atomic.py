"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or Ctrl-C never leaves a half-written dataset, checkpoint or result behind: either the old
file (or nothing) or the complete new one is there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from handbench.errors import HandbenchError


def ensure_writable_dir(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed; a clear error if it cannot be written."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise HandbenchError(f"{path} is a file, not a folder; give a folder for the output")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandbenchError(f"cannot create output directory {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise HandbenchError(f"output directory {path} is not writable")
    return path


@contextlib.contextmanager
def removed_if_empty_on_error(directory: str | os.PathLike) -> Iterator[None]:
    """Remove ``directory`` (and the parents made for it) if the block fails and leaves them empty.

    A refused or interrupted command leaves no empty output folder behind; one that holds anything
    (a checkpoint, an earlier run) is never touched.
    """
    path = Path(directory).absolute()
    created = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()  # only when empty
            except FileNotFoundError:
                continue  # never made (the failure came first): its parent may have been
            except OSError:
                break
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``target`` on success."""
    target = Path(target)
    ensure_writable_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
