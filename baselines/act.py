"""ACT: Action Chunking with Transformers (Zhao et al., 2023), a conditional VAE over action chunks.

Training: a transformer encoder reads [CLS, state, action chunk] and gives the posterior q(z | obs, chunk);
the policy (transformer encoder over [z, state, image tokens], decoder with one query per chunk step,
sinusoidal positions) reconstructs the chunk. Loss = L1 (padded steps ignored) + beta * KL(q || N(0, I)).
Inference: z = 0 (the prior mean); optionally temporal ensembling of overlapping chunks (m = 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from handbench.baselines.common import (
    CPU_SMALL_IMAGE_CHANNELS,
    BaselineModel,
    Generators,
    SmallResNet,
    sinusoidal_2d,
    sinusoidal_embedding,
)
from torch import nn

from handbench.training.config import Preset, TrainConfig
from handbench.training.spec import ObsActionSpec


@dataclass
class ACTConfig:
    obs_steps: int = 1
    horizon: int = 20  # chunk size k
    action_steps: int = 20  # executed per query when not ensembling
    temporal_ensemble_m: float | None = None  # e.g. 0.01: query every step, weights exp(-m * age index)
    d_model: int = 128
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    cvae_layers: int = 2
    feedforward: int = 512
    dropout: float = 0.1
    latent_dim: int = 32
    kl_weight: float = 10.0
    image_channels: tuple[int, ...] = (32, 64, 128)


def _encoder(config: ACTConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(config.d_model, config.heads, config.feedforward, config.dropout,
                                       activation="relu", batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class ACT(BaselineModel):
    def __init__(self, config: ACTConfig, spec: ObsActionSpec) -> None:
        super().__init__()
        if config.obs_steps != 1:
            raise ValueError("ACT conditions on the current observation only (obs_steps = 1)")
        self.config, self.spec = config, spec
        d = config.d_model
        # CVAE encoder (training only).
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cvae_state = nn.Linear(spec.state_dim, d)
        self.cvae_action = nn.Linear(spec.action_dim, d)
        self.cvae_encoder = _encoder(config, config.cvae_layers)
        self.latent_head = nn.Linear(d, 2 * config.latent_dim)
        # Policy.
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.state_in = nn.Linear(spec.state_dim, d)
        self.token_type = nn.Parameter(torch.zeros(3, d))  # latent, state, image tokens
        self.backbone = SmallResNet(config.image_channels) if spec.cameras else None
        self.image_in = nn.Conv2d(config.image_channels[-1], d, 1) if spec.cameras else None
        self.camera_embedding = nn.Parameter(torch.zeros(max(len(spec.cameras), 1), d))
        self.encoder = _encoder(config, config.encoder_layers)
        decoder_layer = nn.TransformerDecoderLayer(d, config.heads, config.feedforward, config.dropout,
                                                   activation="relu", batch_first=True)
        self.decoder = nn.TransformerDecoder(decoder_layer, config.decoder_layers)
        self.queries = nn.Parameter(torch.zeros(config.horizon, d))
        self.action_out = nn.Linear(d, spec.action_dim)
        nn.init.normal_(self.queries, std=0.02)
        nn.init.normal_(self.token_type, std=0.02)
        nn.init.normal_(self.camera_embedding, std=0.02)

    def _positions(self, length: int, device: torch.device) -> torch.Tensor:
        return sinusoidal_embedding(torch.arange(length, device=device), self.config.d_model)

    def posterior(self, state: torch.Tensor, action: torch.Tensor,
                  is_pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | state, chunk): the CLS output of the CVAE encoder -> (mu, logvar)."""
        b = state.shape[0]
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), self.cvae_state(state)[:, None],
                            self.cvae_action(action)], dim=1)
        tokens = tokens + self._positions(tokens.shape[1], tokens.device)
        mask = torch.cat([torch.zeros(b, 2, dtype=torch.bool, device=state.device), is_pad], dim=1)
        out = self.cvae_encoder(tokens, src_key_padding_mask=mask)[:, 0]
        mu, logvar = self.latent_head(out).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, obs: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """Policy: (state, images, z) -> action chunk (B, k, A)."""
        state = obs["state"][:, -1]
        d = self.config.d_model
        tokens = [self.latent_in(z)[:, None] + self.token_type[0], self.state_in(state)[:, None] + self.token_type[1]]
        positions = [self._positions(2, state.device)]
        if self.backbone is not None:
            images = obs["images"][:, -1]  # (B, C, 3, H, W)
            b, cams = images.shape[:2]
            features = self.image_in(self.backbone(images.flatten(0, 1)))  # (B*C, d, h, w)
            h, w = features.shape[-2:]
            features = features.flatten(2).transpose(1, 2).reshape(b, cams, h * w, d)
            features = features + self.camera_embedding[:cams, None] + self.token_type[2]
            tokens.append(features.reshape(b, cams * h * w, d))
            positions.append(sinusoidal_2d(h, w, d, state.device).repeat(cams, 1))
        memory = self.encoder(torch.cat(tokens, dim=1) + torch.cat(positions, dim=0))
        queries = (self.queries + self._positions(self.config.horizon, state.device)).expand(z.shape[0], -1, -1)
        return self.action_out(self.decoder(queries, memory))

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        action, is_pad = batch["action"], batch["action_is_pad"]
        mu, logvar = self.posterior(batch["state"][:, -1], action, is_pad)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        predicted = self.decode(batch, z)
        valid = (~is_pad).unsqueeze(-1).float()
        l1 = ((predicted - action).abs() * valid).sum() / (valid.sum() * action.shape[-1]).clamp(min=1.0)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        loss = l1 + self.config.kl_weight * kl
        return loss, {"l1": l1.item(), "kl": kl.item()}

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor], generator: Generators = None) -> torch.Tensor:
        z = obs["state"].new_zeros(obs["state"].shape[0], self.config.latent_dim)
        return self.decode(obs, z)


CONFIG = ACTConfig
MODEL = ACT
PRESETS = {
    "cpu-small": Preset(ACTConfig(image_channels=CPU_SMALL_IMAGE_CHANNELS),
                        TrainConfig(steps=4000, batch_size=32, lr=1e-4, weight_decay=1e-4,
                                    warmup_steps=100, grad_clip=10.0)),
    # Paper: ResNet18 (here the plain-torch CNN, wider), d=512, 8 heads, 4 enc / 7 dec layers, ff 3200, k=100.
    "paper": Preset(ACTConfig(horizon=100, action_steps=100, d_model=512, heads=8, encoder_layers=4,
                              decoder_layers=7, cvae_layers=4, feedforward=3200, image_channels=(64, 128, 256, 512)),
                    TrainConfig(steps=100_000, batch_size=8, lr=1e-5, weight_decay=1e-4, warmup_steps=0)),
}
