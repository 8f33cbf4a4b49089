"""TrainedPolicy: a trained baseline behind the Policy protocol (``reset()``, ``act(obs) -> action``).

It keeps the last To observations (the first one repeated at an episode start), queries the model
for a chunk of Tp actions and either executes Ta of them from a queue before querying again, or
(temporal ensembling, ACT) queries every step and averages every chunk's prediction for the current
step with weights exp(-m * i), i = 0 for the oldest prediction. Sampling noise comes from a
generator re-seeded at every ``reset``, so an episode's actions depend only on its observations.
"""

from __future__ import annotations

from collections import deque
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


class TrainedPolicy:
    """A baseline model plus its normaliser, run one control step at a time."""

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
        self.seed = seed
        self.generator = torch.Generator(device=self.device)
        self.reset()

    def reset(self) -> None:
        self.history: deque = deque(maxlen=self.obs_steps)
        self.queue: deque = deque()
        self.chunks: deque = deque()  # (step the chunk starts at, (n, A) actions) for temporal ensembling
        self.step = 0
        self.generator.manual_seed(self.seed)

    def predict_chunk(self) -> np.ndarray:
        """Actions from the current step on, (Tp - To + 1, A), from the observation history."""
        states = np.stack([s for s, _ in self.history])[None]
        images = None if self.history[0][1] is None else np.stack([i for _, i in self.history])[None]
        inputs = model_inputs(states, images, self.normalizer, self.device)
        normalized = self.model.predict_action(inputs, generator=self.generator)[0].clamp(-1.0, 1.0)
        actions = self.normalizer.unnormalize("action", normalized).cpu().numpy()
        return actions[self.obs_steps - 1:]

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        current = observation_arrays(observation, self.spec)
        if not self.history:
            self.history.extend([current] * self.obs_steps)
        else:
            self.history.append(current)
        if self.ensemble_m is not None:
            action = self._ensembled_action()
        else:
            if not self.queue:
                self.queue.extend(self.predict_chunk()[: self.action_steps])
            action = self.queue.popleft()
        self.step += 1
        return np.asarray(action, dtype=np.float32)

    def _ensembled_action(self) -> np.ndarray:
        self.chunks.append((self.step, self.predict_chunk()))
        while self.step - self.chunks[0][0] >= len(self.chunks[0][1]):
            self.chunks.popleft()
        predictions = np.stack([chunk[self.step - start] for start, chunk in self.chunks])  # oldest first
        weights = np.exp(-self.ensemble_m * np.arange(len(predictions)))
        return (weights[:, None] * predictions).sum(0) / weights.sum()
