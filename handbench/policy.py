"""The Policy protocol: anything with ``reset()`` and ``act(observation) -> action`` can be evaluated.

Chunking, action queues and temporal ensembling live inside a policy; the evaluator only calls
``reset`` at the start of each episode and ``act`` once per control step.

A policy may also implement the batched form, :class:`BatchPolicy`: the rollout engine
(:mod:`handbench.rollout`) then steps several episodes ("lanes") in lockstep and asks for all their
actions in one call per step. The four baselines implement both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """Absolute joint targets for every actuator (the env's action space)."""


@runtime_checkable
class BatchPolicy(Protocol):
    """A policy that acts for several episodes at once, one lane each.

    The rollout engine calls ``act_batch`` with the same number of observations at every step (the
    protocol's lane width); a ``None`` is a lane with no episode running, whose action is ignored. A row's
    action must depend only on its own lane (its observations and its noise seed), never on the other rows:
    pad idle rows rather than shrinking the batch.
    """

    def reset_lane(self, lane: int, noise_seed: int | None = None) -> None:
        """Start a new episode in ``lane``; draw its sampling noise from a stream seeded with ``noise_seed``
        (None: the policy's fixed seed, as ``reset()`` uses)."""

    def act_batch(self, observations: Sequence[dict[str, Any] | None]) -> np.ndarray:
        """Actions (len(observations), A) for every lane; rows of ``None`` lanes are ignored."""
