"""Per-dimension affine normalisers, fit on the training split and saved inside the checkpoint.

``limits`` maps the data's [min, max] to [-1, 1] (actions: Diffusion Policy needs it, and it gives
Implicit BC its sampling bounds); ``gaussian`` maps to zero mean and unit variance (states). A
dimension that never varies maps to 0 instead of dividing by zero (and back to its constant).

The state guard (``TrainConfig.state_std_floor`` and ``clamp_states``, hb-v2's reference settings) exists
because an expert may hold a joint almost still: the hb16 open-drawer demos move three finger-abduction joints
by 0.2 mrad (std), so a contact that deflects one by 0.3 rad reaches the network 1,000+ standard deviations
out (``handbench check-inputs``). ``std_floor`` bounds a gaussian dimension's standard deviation from below,
as ACT does with 0.01 (Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost
Hardware"), so such a dimension enters training near 0 instead of as amplified noise; ``clamp`` keeps each
normalised dimension within the [min, max] its training data reached, so the policy is never asked about an
input beyond what it was trained on. Without them (hb-v1's baselines) a gaussian dimension whose standard
deviation is at most 1e-4 is only centred.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import torch

from handbench.errors import HandbenchError

MODES = ("limits", "gaussian")
POLICY_MODES = {"state": "gaussian", "action": "limits"}  # what every baseline's normaliser uses
_CONSTANT = 1e-4


class Normalizer:
    """``normalize(key, x) = x * scale + offset``, clamped to ``[low, high]`` for a key fit with ``clamp``;
    ``unnormalize`` inverts the affine map exactly."""

    def __init__(self, scale: dict[str, torch.Tensor], offset: dict[str, torch.Tensor],
                 constant: dict[str, torch.Tensor] | None = None, low: dict[str, torch.Tensor] | None = None,
                 high: dict[str, torch.Tensor] | None = None) -> None:
        self.scale = {k: v.float() for k, v in scale.items()}
        self.offset = {k: v.float() for k, v in offset.items()}
        self.constant = {k: v.bool() for k, v in (constant or {}).items()}
        self.low = {k: v.float() for k, v in (low or {}).items()}
        self.high = {k: v.float() for k, v in (high or {}).items()}

    @classmethod
    def fit(cls, arrays: dict[str, np.ndarray], modes: dict[str, str], std_floor: dict[str, float] | None = None,
            clamp: Collection[str] = ()) -> Normalizer:
        """``arrays[key]`` is (N, D) samples of one quantity; ``modes[key]`` one of MODES.

        ``std_floor[key]`` (gaussian keys): the least standard deviation a dimension is divided by. ``clamp``: keys
        whose normalised values are kept within the [min, max] of ``arrays[key]``'s normalised samples."""
        scale, offset, constant, bound_low, bound_high = {}, {}, {}, {}, {}
        std_floor = std_floor or {}
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
                if key in std_floor:
                    s = 1.0 / np.maximum(std, std_floor[key])
                else:  # the hb-v1 baselines' rule
                    s = np.where(std > _CONSTANT, 1.0 / np.maximum(std, _CONSTANT), 1.0)
                o = -mean * s
            else:
                raise HandbenchError(f"unknown normaliser mode {mode!r}; valid: {', '.join(MODES)}")
            scale[key], offset[key] = torch.as_tensor(s), torch.as_tensor(o)
            if key in clamp:
                normalised = values * s + o
                bound_low[key], bound_high[key] = torch.as_tensor(normalised.min(0)), torch.as_tensor(normalised.max(0))
        return cls(scale, offset, constant, bound_low, bound_high)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale[key].to(x.device) + self.offset[key].to(x.device)
        if key in self.low:
            y = torch.clamp(y, self.low[key].to(x.device), self.high[key].to(x.device))
        return y

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset[key].to(x.device)
        out = (x - offset) / self.scale[key].to(x.device)
        if key in self.constant:
            out = torch.where(self.constant[key].to(x.device), -offset, out)
        return out

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        state = {"scale": dict(self.scale), "offset": dict(self.offset), "constant": dict(self.constant)}
        if self.low:  # absent without clamping, as in checkpoints written before it existed
            state.update(low=dict(self.low), high=dict(self.high))
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, dict[str, torch.Tensor]]) -> Normalizer:
        return cls(state["scale"], state["offset"], state.get("constant"), state.get("low"), state.get("high"))


def fit_policy_normalizer(state: np.ndarray, actions: np.ndarray, state_std_floor: float | None = None,
                          clamp_states: bool = False) -> Normalizer:
    """The normaliser of a policy: gaussian states, actions mapped to [-1, 1]; ``state_std_floor`` and
    ``clamp_states`` are the state guard (module docstring; ``TrainConfig``)."""
    std_floor = {} if state_std_floor is None else {"state": state_std_floor}
    return Normalizer.fit({"state": state, "action": actions}, POLICY_MODES, std_floor=std_floor,
                          clamp=("state",) if clamp_states else ())
