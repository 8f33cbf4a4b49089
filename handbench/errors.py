"""User-facing errors: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class HandbenchError(Exception):
    """A problem the user can fix (bad input, missing file, wrong setup)."""


def unknown_choice(kind: str, value: object, valid: Iterable[str]) -> HandbenchError:
    """Error naming the bad value and listing the valid ones."""
    return HandbenchError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(valid))}")


def pick_version(kind: str, name: str, versions: dict[int, Any], version: int | None) -> Any:
    """``versions[version]`` (``None``: the newest), or one line naming the registered versions."""
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        raise HandbenchError(f"{kind} {name} has no version {version!r}; registered: "
                             f"{', '.join(f'v{v}' for v in sorted(versions))}")
    return versions[version]


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """``path`` if it is an existing file; else one line saying it is a directory or does not exist."""
    path = Path(path)
    if path.is_file():
        return path
    state = "is a directory" if path.is_dir() else "does not exist"
    raise HandbenchError(f"{what} {path} {state}" + (f"; {hint}" if hint else ""))


def distinct_names(values: str | Iterable[str], what: str) -> list[str]:
    """Names from a comma-separated string or a list (items may hold commas too), refused in one line when
    one is empty or repeated: a task given twice would count every episode twice."""
    items = [values] if isinstance(values, str) else list(values)
    names = [part.strip() for item in items for part in str(item).split(",")]
    if not names or "" in names:
        raise HandbenchError(f"{what}: empty name in {','.join(map(str, items))!r}; give names separated by commas")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HandbenchError(f"{what}: {', '.join(repeated)} given more than once; give each name once")
    return names
