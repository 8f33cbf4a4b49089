"""User-facing errors: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class HandbenchError(Exception):
    """A problem the user can fix (bad input, missing file, wrong setup)."""


def unknown_choice(kind: str, value: object, valid: Iterable[str]) -> HandbenchError:
    """Error naming the bad value and listing the valid ones."""
    return HandbenchError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(valid))}")
