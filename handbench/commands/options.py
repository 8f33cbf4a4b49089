"""Argument types shared by the subcommands: numbers checked for range and finiteness as they are parsed.

A bad value stops the command before any work, with argparse's one line (``argument --threads: must be
an integer >= 1, got -2``), instead of a traceback or a silent default later on.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An ``int`` in ``[low, high]`` (either bound may be open)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {_bounds(low, high)}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low: float | None = None, high: float | None = None, high_open: bool = False,
           low_open: bool = False) -> Callable[[str], float]:
    """A finite ``float`` in ``[low, high]`` (``(low`` with ``low_open``, ``high)`` with ``high_open``); nan and inf
    are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        too_high = high is not None and (value >= high if high_open else value > high)
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be a finite number {_bounds(low, high, high_open, low_open)}, "
                                             f"got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _bounds(low: float | None, high: float | None, high_open: bool = False, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}" if high is not None else ""
