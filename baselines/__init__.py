"""Reference baselines (import name ``handbench.baselines``): ACT, Diffusion Policy, Implicit BC, BC.

Each method is one module with a config dataclass, a model (``compute_loss(batch)``,
``predict_action(obs_window)``) and ``PRESETS`` (``cpu-small``, ``paper``). The training loop, the
normalisers and the Policy wrapper are shared and live in :mod:`handbench.training`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from handbench.errors import unknown_choice

BASELINES = {"act": "act", "diffusion": "diffusion", "ibc": "ibc", "bc": "bc"}


def get_baseline(name: str) -> ModuleType:
    """The module of a baseline: ``CONFIG`` (its dataclass), ``MODEL`` (its nn.Module) and ``PRESETS``."""
    if name not in BASELINES:
        raise unknown_choice("policy", name, BASELINES)
    return importlib.import_module(f"{__name__}.{BASELINES[name]}")
