"""User-facing errors: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class HandbenchError(Exception):
    """A problem the user can fix (bad input, missing file, wrong setup)."""


def unknown_choice(kind: str, value: object, valid: Iterable[str]) -> HandbenchError:
    """Error naming the bad value and listing the valid ones."""
    return HandbenchError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(valid))}")


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
