"""Plain behaviour cloning: an MLP from the observation window to the next action (or a chunk of them).

The sanity baseline: if it fails where the others succeed, the task needs multimodality; if it beats
them, suspect the others' training. Loss: mean squared error on normalised actions.

The presets predict a chunk of 8 actions and execute all of them before replanning (an action queue).
Scripted experts hold phases for several steps (e.g. closing the fingers over 8 steps) on internal
counters the observation does not show; a one-step MLP fits the demos almost exactly (validation MSE
~1e-4) yet fails most lift-cube episodes (10%), with or without To=2 history, while the chunked MLP
succeeds in most, so a chunked MLP is the fair "sanity" floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from handbench.baselines.common import CPU_SMALL_IMAGE_CHANNELS, BaselineModel, Generators, ObservationEncoder, mlp
from torch.nn import functional as F

from handbench.training.config import Preset, TrainConfig
from handbench.training.spec import ObsActionSpec


@dataclass
class BCConfig:
    obs_steps: int = 1
    horizon: int = 1  # > 1: predict an action chunk
    action_steps: int = 1
    temporal_ensemble_m: float | None = None
    hidden: int = 256
    depth: int = 3
    dropout: float = 0.0
    image_channels: tuple[int, ...] = (32, 64, 128)
    image_feature_dim: int = 64


class BC(BaselineModel):
    def __init__(self, config: BCConfig, spec: ObsActionSpec) -> None:
        super().__init__()
        self.config, self.spec = config, spec
        self.obs_encoder = ObservationEncoder(spec, config.image_channels, config.image_feature_dim)
        self.head = mlp(self.obs_encoder.out_dim * config.obs_steps, config.hidden,
                        config.horizon * spec.action_dim, config.depth, config.dropout)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        features = self.obs_encoder(obs["state"], obs.get("images")).flatten(1)
        return self.head(features).reshape(-1, self.config.horizon, self.spec.action_dim)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.mse_loss(self(batch), batch["action"])
        return loss, {"mse": loss.item()}

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor], generator: Generators = None) -> torch.Tensor:
        return self(obs)


CONFIG = BCConfig
MODEL = BC
PRESETS = {
    "cpu-small": Preset(BCConfig(horizon=8, action_steps=8, image_channels=CPU_SMALL_IMAGE_CHANNELS),
                        TrainConfig(steps=10_000, batch_size=64, lr=1e-3, weight_decay=1e-6, warmup_steps=100)),
    "paper": Preset(BCConfig(horizon=8, action_steps=8, hidden=1024, depth=4, dropout=0.1),
                    TrainConfig(steps=100_000, batch_size=256, lr=1e-4, weight_decay=1e-6, warmup_steps=500)),
}
