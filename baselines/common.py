"""Building blocks shared by the baselines: positional encodings, a small image CNN, observation encoders.

Everything is plain torch (torchvision is not available here). Normalisation layers are GroupNorm,
never BatchNorm, so EMA weights fully describe a model (no running statistics to average).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from handbench.training.spec import ObsActionSpec

# The cpu-small presets' image encoder widths. A training step from pixels is almost all image encoder (forward
# and backward of its convolutions: 95% of a BC step, data loading under 1%); halving every width from
# (32, 64, 128) makes BC and Diffusion Policy steps from 96x96 pixels about 2.5x faster
# (`handbench bench --only train-pixels`). State-mode models build no image encoder, so their weights are unchanged.
CPU_SMALL_IMAGE_CHANNELS = (16, 32, 64)

Generators = torch.Generator | Sequence[torch.Generator] | None
"""One generator for the whole batch (training), one per batch row (batched inference), or none."""


def randn_rows(shape: Sequence[int], generator: Generators, device: torch.device) -> torch.Tensor:
    """Standard normal noise of ``shape``; with one generator per row, row i is drawn from generator i alone.

    So a row's noise depends only on its own stream, never on the batch it sits in (batched rollouts).
    """
    if isinstance(generator, Sequence):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=device) for g in generator])
    return torch.randn(tuple(shape), generator=generator, device=device)


def rand_rows(shape: Sequence[int], generator: Generators, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) noise of ``shape``, drawn per row as :func:`randn_rows`."""
    if isinstance(generator, Sequence):
        return torch.cat([torch.rand((1, *shape[1:]), generator=g, device=device) for g in generator])
    return torch.rand(tuple(shape), generator=generator, device=device)


def multinomial_rows(probs: torch.Tensor, count: int, generator: Generators) -> torch.Tensor:
    """``torch.multinomial(probs (B, N), count, replacement=True)``, drawn per row as :func:`randn_rows`."""
    if isinstance(generator, Sequence):
        return torch.cat([torch.multinomial(row[None], count, replacement=True, generator=g)
                          for row, g in zip(probs, generator, strict=True)])
    return torch.multinomial(probs, count, replacement=True, generator=generator)


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine encoding of (possibly fractional) positions: (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs
    embedding = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        embedding = torch.nn.functional.pad(embedding, (0, 1))
    return embedding


def sinusoidal_2d(height: int, width: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """2-D sine encoding of a feature map's cells: half the channels for rows, half for columns -> (H*W, dim)."""
    rows = sinusoidal_embedding(torch.arange(height, device=device), dim // 2)
    cols = sinusoidal_embedding(torch.arange(width, device=device), dim - dim // 2)
    grid = torch.cat([rows[:, None, :].expand(height, width, -1), cols[None, :, :].expand(height, width, -1)], -1)
    return grid.reshape(height * width, dim)


def mlp(in_dim: int, hidden: int, out_dim: int, depth: int, dropout: float = 0.0) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with Mish, then a linear output."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(depth):
        layers += [nn.Linear(dim, hidden), nn.Mish()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.GroupNorm(_groups(out_channels), out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.GroupNorm(_groups(out_channels), out_channels),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                      nn.GroupNorm(_groups(out_channels), out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A ResNet-ish backbone (stem + one residual block per stage, each stage halving the resolution).

    Input: (N, 3, H, W) floats in [0, 1]. Output: a feature map (N, channels[-1], H/2^(stages+1), ...).
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 5, 2, 2, bias=False),
                                  nn.GroupNorm(_groups(channels[0]), channels[0]), nn.ReLU(inplace=True))
        stages, previous = [], channels[0]
        for width in channels:
            stages.append(ResidualBlock(previous, width, stride=2))
            previous = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = images.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return self.stages(self.stem((images - mean) / std))


class SpatialSoftmax(nn.Module):
    """Feature map -> expected (x, y) image position of ``keypoints`` learned channels (as Diffusion Policy)."""

    def __init__(self, in_channels: int, keypoints: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, keypoints, 1)
        self.out_dim = 2 * keypoints

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.project(features)
        n, k, h, w = maps.shape
        attention = torch.softmax(maps.reshape(n, k, h * w), dim=-1)
        ys = torch.linspace(-1, 1, h, device=maps.device).repeat_interleave(w)
        xs = torch.linspace(-1, 1, w, device=maps.device).repeat(h)
        return torch.cat([attention @ xs[:, None], attention @ ys[:, None]], dim=-1).reshape(n, 2 * k)


class ImageEncoder(nn.Module):
    """One camera image -> a flat feature vector (SmallResNet + spatial softmax + linear)."""

    def __init__(self, channels: tuple[int, ...], feature_dim: int, keypoints: int = 32) -> None:
        super().__init__()
        self.backbone = SmallResNet(channels)
        self.pool = SpatialSoftmax(self.backbone.out_channels, keypoints)
        self.out = nn.Linear(self.pool.out_dim, feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.pool(self.backbone(images)))


class ObservationEncoder(nn.Module):
    """Normalised state plus one ImageEncoder per camera -> one feature vector per time step.

    ``forward(state (B,To,Ds), images (B,To,C,3,H,W) | None) -> (B, To, out_dim)``.
    """

    def __init__(self, spec: ObsActionSpec, image_channels: tuple[int, ...] = (32, 64, 128),
                 image_feature_dim: int = 64) -> None:
        super().__init__()
        self.cameras = spec.cameras
        self.image_encoders = nn.ModuleList(ImageEncoder(image_channels, image_feature_dim) for _ in spec.cameras)
        self.out_dim = spec.state_dim + len(spec.cameras) * image_feature_dim

    def forward(self, state: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        features = [state]
        if self.image_encoders:
            if images is None:
                raise ValueError("this model was built for pixel observations but got no images")
            b, t = images.shape[:2]
            for index, encoder in enumerate(self.image_encoders):
                frames = images[:, :, index].reshape(b * t, *images.shape[3:])
                features.append(encoder(frames).reshape(b, t, -1))
        return torch.cat(features, dim=-1)


class BaselineModel(nn.Module):
    """What the training loop and the Policy wrapper need from a baseline's model.

    Its config has ``obs_steps`` (To), ``horizon`` (Tp: actions predicted per query), ``action_steps``
    (Ta: actions executed per query) and ``temporal_ensemble_m`` (None, or ACT's weighting rate).
    """

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to minimise and its named terms (floats) for the log."""
        raise NotImplementedError

    def predict_action(self, obs: dict[str, torch.Tensor], generator: Generators = None) -> torch.Tensor:
        """Normalised observation window -> normalised action chunk (B, horizon, action_dim).

        ``generator`` is the source of sampling noise: one for the batch, or one per row (row i's noise
        then comes from generator i alone, so its output does not depend on the other rows' streams).
        """
        raise NotImplementedError
