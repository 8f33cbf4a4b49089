"""The evaluation protocol (minimal form; the evaluator issue turns it into a versioned manifest).

Eval seeds start at ``EVAL_SEED_BASE`` so they never meet the demo split (seeds below it).
"""

from __future__ import annotations

from handbench.seeds import EVAL_SEED_BASE

PROTOCOL_NAME = "hb-v1"
EVAL_EPISODES = 50


def eval_seeds(task: str) -> list[int]:
    """The protocol's eval seeds for a task (the same 50 seeds for every task in hb-v1)."""
    return list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + EVAL_EPISODES))
