"""Dense rewards as named, weighted terms built from a few shared term functions.

A task declares its terms once (``Task.reward_terms``: name, weight, what the unweighted value is) and
computes each step's unweighted values with the functions below. The reward is the weighted sum, in
the declared order; ``info["reward_terms"]`` carries every weighted term on every step, so the terms
always add up to the reward. ``reward_doc``, ``handbench tasks --format md`` and the README's reward list
are all generated from the declarations (:func:`describe`), never written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Term:
    """One reward term: ``weight * value``, where ``doc`` says what the unweighted value is."""

    name: str
    weight: float
    doc: str


# ---------------------------------------------------------------------------------------------- term functions
def reach(distance: float, sharpness: float = 10.0) -> float:
    """1 - tanh(sharpness * distance): 1 at the target, toward 0 far from it (distance in metres)."""
    return 1.0 - np.tanh(sharpness * distance)


def contact(touching: float, per_contact: float, cap: float = 1.0) -> float:
    """``per_contact`` per touching digit, at most ``cap``."""
    return min(per_contact * touching, cap)


def progress(done: float, target: float) -> float:
    """clip(done / target, 0, 1): the fraction of the way done (lift height, drawer opening, turn)."""
    return np.clip(done / target, 0.0, 1.0)


def flag(condition: bool) -> float:
    """1 while ``condition`` holds, else 0 (success bonus, released, touching what it should not)."""
    return 1.0 if condition else 0.0


# ---------------------------------------------------------------------------------------------- sums and docs
def weighted(terms: Sequence[Term], values: Mapping[str, float]) -> dict[str, float]:
    """Each term's weighted value, in declared order; raises KeyError naming a term without a value."""
    return {term.name: term.weight * values[term.name] for term in terms}


def total(weighted_terms: Mapping[str, float]) -> float:
    """The reward: the weighted terms summed left to right (the declared order)."""
    reward = 0.0
    for value in weighted_terms.values():
        reward += value
    return float(reward)


def describe(terms: Sequence[Term]) -> str:
    """The reward in words, e.g. ``reach: 1 - tanh(...); lift x2: clip(...); success x5: 1 on success``."""
    return "; ".join(f"{term.name}: {term.doc}" if term.weight == 1 else f"{term.name} x{term.weight:g}: {term.doc}"
                     for term in terms)
