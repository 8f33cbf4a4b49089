"""TimedDriver: a lane driver that times each policy call, and the model's forward passes inside it (bench only).

Its own module so that both bench sections that time policies (``handbench.bench.rollout`` and
``handbench.bench.policies``) use it without importing each other.
"""

from __future__ import annotations

import time
from typing import Any

from handbench.rollout import LaneDriver


class TimedDriver(LaneDriver):
    """Passes the engine's calls on to ``inner`` and times each policy call (one per lockstep step).

    While open (a context manager), ``model_seconds`` also counts the time inside the model's
    ``predict_action`` when the policy has one (a :class:`~handbench.training.runtime.TrainedPolicy`), so a
    step splits into model forward, the rest of the policy's work (observation history, normalisation,
    ensembling), ``env.step`` and the engine's own work.
    """

    def __init__(self, inner: LaneDriver) -> None:
        self.inner, self.width = inner, inner.width
        self.call_seconds: list[float] = []
        self.model_seconds = 0.0
        self._model = getattr(getattr(inner, "policy", None), "model", None)

    def __enter__(self) -> TimedDriver:
        predict = getattr(self._model, "predict_action", None)
        if predict is not None:
            def timed(*args: Any, **kwargs: Any) -> Any:
                tic = time.perf_counter()
                try:
                    return predict(*args, **kwargs)
                finally:
                    self.model_seconds += time.perf_counter() - tic

            self._model.predict_action = timed  # this instance only, until __exit__
        return self

    def __exit__(self, *exc: object) -> None:
        if self._model is not None and "predict_action" in vars(self._model):
            del self._model.predict_action  # the class's method again

    def start(self, lane: int, env: Any, seed: int) -> str:
        return self.inner.start(lane, env, seed)

    def act(self, observations: list[dict[str, Any] | None]) -> list[Any]:
        tic = time.perf_counter()
        try:
            return self.inner.act(observations)
        finally:
            self.call_seconds.append(time.perf_counter() - tic)
