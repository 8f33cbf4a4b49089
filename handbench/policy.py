"""The Policy protocol: anything with ``reset()`` and ``act(observation) -> action`` can be evaluated.

Chunking, action queues and temporal ensembling live inside a policy; the evaluator only calls
``reset`` at the start of each episode and ``act`` once per control step.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """Absolute joint targets for every actuator (the env's action space)."""
