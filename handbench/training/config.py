"""Training hyper-parameters and presets (a model config plus a TrainConfig, per baseline)."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from handbench.errors import HandbenchError

PRESETS = ("cpu-small", "paper")
MAX_SEED = 2**32 - 1  # training seeds: numpy's and torch's seeding both take any value up to here
MAX_THREADS = 256  # torch CPU threads


@dataclass
class TrainConfig:
    """The optimisation loop. Steps are gradient steps; every count is in steps."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 100
    grad_clip: float | None = None
    ema: bool = True
    ema_power: float = 0.75  # EMA warm-up, as Diffusion Policy: decay = 1 - (1 + step) ** -power, capped
    ema_max_decay: float = 0.9999
    val_fraction: float = 0.1
    val_every: int = 250
    val_batches: int = 4
    log_every: int = 50
    checkpoint_every: int = 500
    # The state guard (handbench.training.normalizer): hb-v2's reference runs use 0.01 (ACT's value) and True;
    # the defaults are hb-v1's baselines, so their published runs retrain to the same results.
    state_std_floor: float | None = None  # least standard deviation a state dimension is divided by
    clamp_states: bool = False  # keep normalised states within the range the training data reached

    def __post_init__(self) -> None:
        floor = self.state_std_floor
        if floor is not None and not (isinstance(floor, (int, float)) and math.isfinite(floor) and floor > 0):
            raise HandbenchError(f"state_std_floor must be a finite number > 0 (or None: no floor); got {floor!r}")


@dataclass
class Preset:
    """A named size: a model config (the baseline's dataclass) and the loop that trains it."""

    model: Any
    train: TrainConfig


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from ``config_to_dict`` output (lists back to tuples); unknown keys refused."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise HandbenchError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        origin = typing.get_origin(hints[name])
        is_tuple = origin is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(hints[name]))
        kwargs[name] = tuple(value) if is_tuple and isinstance(value, list) else value
    return cls(**kwargs)
