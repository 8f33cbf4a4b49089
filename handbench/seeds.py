"""Seed splits. Demonstrations use seeds 0, 1, 2, ... below ``EVAL_SEED_BASE``; the evaluation
protocol's seeds start at ``EVAL_SEED_BASE``, so the two can never meet."""

from __future__ import annotations

from collections.abc import Iterator

from handbench.errors import HandbenchError

EVAL_SEED_BASE = 1_000_000


def demo_seeds(start: int = 0) -> Iterator[int]:
    """The demo split, in order; an episode's seed is its only source of randomness."""
    seed = start
    while seed < EVAL_SEED_BASE:
        yield seed
        seed += 1
    raise HandbenchError(f"demo seed split exhausted (seeds must stay below {EVAL_SEED_BASE})")


def is_demo_seed(seed: int) -> bool:
    return 0 <= seed < EVAL_SEED_BASE
