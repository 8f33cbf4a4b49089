"""Per-dimension affine normalisers, fit on the training split and saved inside the checkpoint.

``limits`` maps the data's [min, max] to [-1, 1] (actions: Diffusion Policy needs it, and it gives
Implicit BC its sampling bounds); ``gaussian`` maps to zero mean and unit variance (states). A
dimension that never varies maps to 0 instead of dividing by zero (and back to its constant).
"""

from __future__ import annotations

import numpy as np
import torch

from handbench.errors import HandbenchError

MODES = ("limits", "gaussian")
POLICY_MODES = {"state": "gaussian", "action": "limits"}  # what every baseline's normaliser uses
_CONSTANT = 1e-4


class Normalizer:
    """``normalize(key, x) = x * scale + offset``; ``unnormalize`` inverts it exactly."""

    def __init__(self, scale: dict[str, torch.Tensor], offset: dict[str, torch.Tensor],
                 constant: dict[str, torch.Tensor] | None = None) -> None:
        self.scale = {k: v.float() for k, v in scale.items()}
        self.offset = {k: v.float() for k, v in offset.items()}
        self.constant = {k: v.bool() for k, v in (constant or {}).items()}

    @classmethod
    def fit(cls, arrays: dict[str, np.ndarray], modes: dict[str, str]) -> Normalizer:
        """``arrays[key]`` is (N, D) samples of one quantity; ``modes[key]`` one of MODES."""
        scale, offset, constant = {}, {}, {}
        for key, values in arrays.items():
            values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
            mode = modes[key]
            if mode == "limits":
                low, high = values.min(0), values.max(0)
                spread = high - low
                s = np.where(spread > _CONSTANT, 2.0 / np.maximum(spread, _CONSTANT), 1.0)
                o = np.where(spread > _CONSTANT, -1.0 - low * s, -low)
                # A model's output for a constant dimension is meaningless: map it back to the constant.
                constant[key] = torch.as_tensor(spread <= _CONSTANT)
            elif mode == "gaussian":
                mean, std = values.mean(0), values.std(0)
                s = np.where(std > _CONSTANT, 1.0 / np.maximum(std, _CONSTANT), 1.0)
                o = -mean * s
            else:
                raise HandbenchError(f"unknown normaliser mode {mode!r}; valid: {', '.join(MODES)}")
            scale[key], offset[key] = torch.as_tensor(s), torch.as_tensor(o)
        return cls(scale, offset, constant)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale[key].to(x.device) + self.offset[key].to(x.device)

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset[key].to(x.device)
        out = (x - offset) / self.scale[key].to(x.device)
        if key in self.constant:
            out = torch.where(self.constant[key].to(x.device), -offset, out)
        return out

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"scale": dict(self.scale), "offset": dict(self.offset), "constant": dict(self.constant)}

    @classmethod
    def from_state_dict(cls, state: dict[str, dict[str, torch.Tensor]]) -> Normalizer:
        return cls(state["scale"], state["offset"], state.get("constant"))


def fit_policy_normalizer(state: np.ndarray, actions: np.ndarray) -> Normalizer:
    """The normaliser of a policy: gaussian states, actions mapped to [-1, 1]."""
    return Normalizer.fit({"state": state, "action": actions}, POLICY_MODES)
