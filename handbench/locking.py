"""Exclusive locks on live outputs: two runs never write the same dataset, results folder or run folder.

A run takes the lock of its output before it reads or deletes anything there (an unfinished
``<out>.partial/``, earlier episode files, a training state) and holds it until it has finished.
A second run on the same output is refused at once, in one line naming the run that holds it.
The lock is an ``flock`` on a hidden file beside the output (``.<name>.lock``): the kernel releases
it when its process ends, however it ends (Ctrl-C, kill -9, a crash), so a stale lock never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from handbench.atomic import ensure_writable_dir
from handbench.errors import HandbenchError


class LockHeld(HandbenchError):
    """Another process holds the lock (as opposed to a lock that cannot be taken at all: an unwritable folder)."""


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file of ``output`` (a file or a folder): ``.<name>.lock`` in the same folder."""
    output = Path(output).absolute()
    return output.with_name(f".{output.name}.lock")


def _holder(path: Path) -> str:
    """Who holds the lock, as written by :func:`output_lock` (best effort: the file may be mid-write)."""
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%H:%M:%S", time.localtime(info["started"]))
        return f" (pid {info['pid']}, since {since}: {info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, flag: str = "--out") -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` for the ``with`` block.

    Raises :class:`LockHeld` (a :class:`HandbenchError`) at once (never waits) when another process holds it, and
    :class:`HandbenchError` when the lock file cannot be written; ``flag`` names the option that chose the output,
    for the message.
    """
    path = lock_path(output)
    ensure_writable_dir(path.parent)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise HandbenchError(f"cannot write beside {output} (the lock file {path.name}): "
                                 f"{exc.strerror}; choose another {flag}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(f"{output} is in use by another handbench run{_holder(path)}; wait for it to "
                           f"finish or choose another {flag}") from None
        try:  # the holder before us may have removed the file between our open and our flock: lock the new one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        record = {"pid": os.getpid(), "started": time.time(), "command": " ".join(["handbench", *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: a waiting opener sees a new inode and retries
        os.close(fd)
