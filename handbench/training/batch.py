"""numpy windows -> normalised torch tensors, the one format every baseline's model consumes.

Model inputs: ``state`` (B, To, Ds) normalised, and in pixels mode ``images`` (B, To, cameras, 3, H, W)
floats in [0, 1]. Training batches add ``action`` (B, Tp, A) in [-1, 1] and ``action_is_pad`` (B, Tp).
"""

from __future__ import annotations

import numpy as np
import torch

from handbench.training.normalizer import Normalizer


def model_inputs(state: np.ndarray, images: np.ndarray | None, normalizer: Normalizer,
                 device: torch.device) -> dict[str, torch.Tensor]:
    inputs = {"state": normalizer.normalize("state", torch.as_tensor(state, dtype=torch.float32, device=device))}
    if images is not None:
        pixels = torch.as_tensor(images, device=device)  # (B, To, C, H, W, 3) uint8
        inputs["images"] = pixels.permute(0, 1, 2, 5, 3, 4).float().div_(255.0)
    return inputs


def model_batch(window: dict[str, np.ndarray], normalizer: Normalizer, device: torch.device) -> dict[str, torch.Tensor]:
    batch = model_inputs(window["state"], window.get("images"), normalizer, device)
    batch["action"] = normalizer.normalize("action", torch.as_tensor(window["action"], device=device))
    batch["action_is_pad"] = torch.as_tensor(window["action_is_pad"], device=device)
    return batch
