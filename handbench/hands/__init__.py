"""Hand registry: every hand a task can be built with, at every version.

A hand is one module in this package that exports ``HAND``, its :class:`HandSpec` (``hb16.py``, ``shadow.py``);
the modules are found here, in name order, so adding a hand touches no other file. A hand that changed since a
protocol pinned it also exports ``HAND_VERSIONS``: every version of it, oldest first (``HAND`` is version 0). A
protocol manifest pins the version of each hand (``Protocol.hand_version``), and the registry builds that one.
A hand defined outside the package is added with :func:`handbench.register_hand`.
"""

from __future__ import annotations

import importlib
import pkgutil

from handbench.errors import HandbenchError, pick_version, unknown_choice
from handbench.hands.base import FINGERS, BoundHand, HandSpec, axis_angle_quat, yaw_quat

NOT_HANDS = ("base",)  # modules of this package that define no hand


def _discover() -> tuple[dict[str, HandSpec], dict[str, dict[int, HandSpec]]]:
    hands: dict[str, HandSpec] = {}
    versions: dict[str, dict[int, HandSpec]] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name in NOT_HANDS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if not hasattr(module, "HAND"):
            raise HandbenchError(f"{module.__name__} exports no HAND (its HandSpec); every module in "
                                 f"handbench/hands/ but {', '.join(NOT_HANDS)} is a hand")
        add_hand(hands, module.HAND, module.__name__)
        versions[module.HAND.name] = _versions(module.HAND, getattr(module, "HAND_VERSIONS", (module.HAND,)),
                                               module.__name__)
    return hands, versions


def _versions(hand: HandSpec, specs: tuple[HandSpec, ...], source: str) -> dict[int, HandSpec]:
    """``specs`` as version -> spec; they must be versions 0, 1, ... of ``hand`` (``HAND`` first)."""
    if not specs or specs[0] is not hand:
        raise HandbenchError(f"{source}: HAND_VERSIONS must start with HAND (version 0)")
    for number, spec in enumerate(specs):
        if not isinstance(spec, HandSpec) or spec.name != hand.name or spec.version != number:
            raise HandbenchError(f"{source}: HAND_VERSIONS[{number}] must be a HandSpec of {hand.name} with "
                                 f"version={number}")
    return {spec.version: spec for spec in specs}


def add_hand(hands: dict[str, HandSpec], hand: HandSpec, source: str) -> None:
    """Add ``hand`` to ``hands``; raises :class:`HandbenchError` for a non-HandSpec or a name already taken."""
    if not isinstance(hand, HandSpec):
        raise HandbenchError(f"{source}: {hand!r} is not a HandSpec")
    if hand.name in hands and hands[hand.name] is not hand:
        raise HandbenchError(f"{source}: a hand named {hand.name!r} is already registered")
    hands[hand.name] = hand


HANDS, _VERSIONS = _discover()  # HANDS: name -> version 0


def _registered_versions(name: str) -> dict[int, HandSpec]:
    hand = HANDS[name]
    return _VERSIONS.get(name, {hand.version: hand})  # a hand added by register_hand: the one version it has


def hand_versions(name: str) -> tuple[int, ...]:
    """The registered versions of hand ``name``, oldest first."""
    get_hand(name, 0)
    return tuple(sorted(_registered_versions(name)))


def get_hand(name: str, version: int | None = None) -> HandSpec:
    """Hand ``name`` at ``version`` (``None``: its newest version). Raises :class:`HandbenchError` naming the
    valid choices for an unknown hand or version."""
    if name not in HANDS:
        raise unknown_choice("hand", name, HANDS)
    return pick_version("hand", name, _registered_versions(name), version)


__all__ = ["FINGERS", "HANDS", "BoundHand", "HandSpec", "add_hand", "axis_angle_quat", "get_hand", "hand_versions",
           "yaw_quat"]
