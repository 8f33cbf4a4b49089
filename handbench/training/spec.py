"""What a model needs to know about its inputs and outputs, fixed by the dataset it is trained on."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ObsActionSpec:
    """Shapes of the policy's inputs and outputs.

    ``state_keys`` are concatenated, in order, into one state vector of ``state_dim`` values;
    ``cameras`` is empty in state mode. Images are (H, W) = ``image_size``, RGB.
    """

    obs_mode: str
    state_keys: tuple[str, ...]
    state_dim: int
    action_dim: int
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ObsActionSpec:
        return cls(obs_mode=values["obs_mode"], state_keys=tuple(values["state_keys"]),
                   state_dim=int(values["state_dim"]), action_dim=int(values["action_dim"]),
                   cameras=tuple(values["cameras"]), image_size=tuple(values["image_size"]))
