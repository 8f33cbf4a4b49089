"""TrainedPolicy: a trained baseline behind the Policy protocol (``reset()``, ``act(obs) -> action``).

It keeps the last To observations (the first one repeated at an episode start), queries the model
for a chunk of Tp actions and either executes Ta of them from a queue before querying again, or
(temporal ensembling, ACT) queries every step and averages every chunk's prediction for the current
step with weights exp(-m * i), i = 0 for the oldest prediction. Sampling noise comes from a
generator re-seeded at every ``reset`` (with ``seed``, or with the episode's own noise seed in the batched
form), so an episode's actions depend only on its observations and that seed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from handbench.dataset import image_key
from handbench.errors import HandbenchError
from handbench.training.batch import model_inputs
from handbench.training.normalizer import Normalizer
from handbench.training.spec import ObsActionSpec


def observation_arrays(observation: dict[str, Any], spec: ObsActionSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """An env observation dict -> (state vector, images (cameras, H, W, 3) or None), checked against ``spec``."""
    missing = [key for key in spec.state_keys if key not in observation]
    if missing:
        raise HandbenchError(f"observation lacks {', '.join(missing)}; this policy needs {', '.join(spec.state_keys)}"
                             f" ({spec.obs_mode} mode)")
    state = np.concatenate([np.asarray(observation[key], dtype=np.float32).ravel() for key in spec.state_keys])
    if state.shape[0] != spec.state_dim:
        raise HandbenchError(f"observation state has {state.shape[0]} values; this policy was trained on "
                             f"{spec.state_dim} (another task or hand?)")
    if not spec.cameras:
        return state, None
    pixels = observation.get("pixels", {})
    frames = []
    for camera in spec.cameras:
        frame = pixels.get(camera) if isinstance(pixels, dict) else None
        frame = observation.get(image_key(camera)) if frame is None else frame  # flat (dataset-style) obs
        if frame is None:
            raise HandbenchError(f"observation lacks camera {camera!r}; this policy needs pixels from "
                                 f"{', '.join(spec.cameras)}")
        if tuple(frame.shape) != (*spec.image_size, 3):
            raise HandbenchError(f"camera {camera!r} image has shape {tuple(frame.shape)}; this policy was trained "
                                 f"on {(*spec.image_size, 3)}")
        frames.append(np.asarray(frame, dtype=np.uint8))
    return state, np.stack(frames)


@dataclass
class Lane:
    """One episode's inference state inside a :class:`TrainedPolicy`."""

    generator: torch.Generator
    history: deque = field(default_factory=deque)  # the last To (state, images) pairs
    queue: deque = field(default_factory=deque)  # actions left of the current chunk
    chunks: deque = field(default_factory=deque)  # (step it starts at, (n, A) actions) for temporal ensembling
    step: int = 0

    def needs_query(self, ensembling: bool) -> bool:
        return ensembling or not self.queue


class TrainedPolicy:
    """A baseline model plus its normaliser, run one control step at a time for one or several episodes.

    Simple form: ``reset()`` and ``act(obs)`` (one episode). Batched form (:class:`handbench.policy.BatchPolicy`):
    ``reset_lane(lane, noise_seed)`` and ``act_batch(observations)``, each lane an episode with its own
    history, action queue, ensembled chunks and noise generator; every query is one forward pass over all
    ``len(observations)`` rows, idle rows padded, and row i's noise is drawn from lane i's generator alone.
    """

    def __init__(self, model: torch.nn.Module, normalizer: Normalizer, spec: ObsActionSpec,
                 provenance: dict[str, Any] | None = None, device: str | torch.device = "cpu", seed: int = 0,
                 temporal_ensemble_m: float | None = None, action_steps: int | None = None) -> None:
        config = model.config
        self.model = model.to(device).eval()
        self.normalizer, self.spec, self.device = normalizer, spec, torch.device(device)
        self.provenance = provenance or {}  # task, hand, obs_mode, dataset hash, ...
        self.obs_steps, self.horizon = config.obs_steps, config.horizon
        self.ensemble_m = temporal_ensemble_m if temporal_ensemble_m is not None else config.temporal_ensemble_m
        self.action_steps = action_steps or config.action_steps
        executable = self.horizon - (self.obs_steps - 1)
        if not 1 <= self.action_steps <= executable:
            raise HandbenchError(f"action_steps must be in 1..{executable} (horizon {self.horizon}, "
                                 f"obs_steps {self.obs_steps}); got {self.action_steps}")
        self.seed = seed  # the noise seed of every episode started without one (``reset``; protocol hb-v1)
        self.lanes: list[Lane] = []
        self._padding_generator = torch.Generator(device=self.device)  # noise of idle rows, never read
        self.reset()

    # ------------------------------------------------------------------ simple form: one episode
    def reset(self) -> None:
        self.lanes = []
        self.reset_lane(0)

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        return self.act_batch([observation])[0]

    # ------------------------------------------------------------------ batched form: one episode per lane
    def reset_lane(self, lane: int, noise_seed: int | None = None) -> None:
        """Start a new episode in ``lane``; its sampling noise is seeded with ``noise_seed`` (default: ``seed``)."""
        while len(self.lanes) <= lane:
            self.lanes.append(Lane(torch.Generator(device=self.device)))
        generator = self.lanes[lane].generator
        generator.manual_seed(self.seed if noise_seed is None else int(noise_seed))
        self.lanes[lane] = Lane(generator, deque(maxlen=self.obs_steps))

    def act_batch(self, observations: Sequence[dict[str, Any] | None]) -> np.ndarray:
        """One action per lane, (len(observations), A) float32; a ``None`` observation is an idle lane (zeros).

        Raises HandbenchError on an observation this policy was not trained for, and ValueError on a lane
        that was never started.
        """
        live = [i for i, obs in enumerate(observations) if obs is not None]
        for i in live:
            if i >= len(self.lanes):
                raise ValueError(f"lane {i} was never started (call reset_lane first)")
            lane, current = self.lanes[i], observation_arrays(observations[i], self.spec)
            lane.history.extend([current] * (self.obs_steps if not lane.history else 1))
        ensembling = self.ensemble_m is not None
        querying = [i for i in live if self.lanes[i].needs_query(ensembling)]
        if querying:
            chunks = self.predict_chunks(len(observations), querying)
            for i in querying:
                if ensembling:
                    self.lanes[i].chunks.append((self.lanes[i].step, chunks[i]))
                else:
                    self.lanes[i].queue.extend(chunks[i][: self.action_steps])
        actions = np.zeros((len(observations), self.spec.action_dim), dtype=np.float32)
        for i in live:
            lane = self.lanes[i]
            actions[i] = self._ensembled_action(lane) if ensembling else lane.queue.popleft()
            lane.step += 1
        return actions

    def predict_chunks(self, width: int, rows: Sequence[int]) -> np.ndarray:
        """Actions from the current step on, (width, Tp - To + 1, A), for lanes ``rows``; other rows are padding.

        The batch always has ``width`` rows (the padding repeats the first queried lane), so a row's output
        never depends on how many lanes are live: batched inference is not batch-size invariant.
        """
        filler = self.lanes[rows[0]]
        batch = [self.lanes[i] if i in rows else filler for i in range(width)]
        states = np.stack([np.stack([s for s, _ in lane.history]) for lane in batch])
        images = None
        if filler.history[0][1] is not None:
            images = np.stack([np.stack([im for _, im in lane.history]) for lane in batch])
        inputs = model_inputs(states, images, self.normalizer, self.device)
        generators = [self.lanes[i].generator if i in rows else self._padding_generator for i in range(width)]
        self._padding_generator.manual_seed(0)
        normalized = self.model.predict_action(inputs, generator=generators).clamp(-1.0, 1.0)
        actions = self.normalizer.unnormalize("action", normalized).cpu().numpy()
        return actions[:, self.obs_steps - 1:]

    def _ensembled_action(self, lane: Lane) -> np.ndarray:
        while lane.step - lane.chunks[0][0] >= len(lane.chunks[0][1]):
            lane.chunks.popleft()
        predictions = np.stack([chunk[lane.step - start] for start, chunk in lane.chunks])  # oldest first
        weights = np.exp(-self.ensemble_m * np.arange(len(predictions)))
        return (weights[:, None] * predictions).sum(0) / weights.sum()
