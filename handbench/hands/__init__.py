"""Hand registry: every hand a task can be built with.

A hand is one module in this package that exports ``HAND``, its :class:`HandSpec` (``hb16.py``, ``shadow.py``);
the modules are found here, in name order, so adding a hand touches no other file. A hand defined outside the
package is added with :func:`handbench.register_hand`.
"""

from __future__ import annotations

import importlib
import pkgutil

from handbench.errors import HandbenchError, unknown_choice
from handbench.hands.base import FINGERS, BoundHand, HandSpec, axis_angle_quat, yaw_quat

NOT_HANDS = ("base",)  # modules of this package that define no hand


def _discover() -> dict[str, HandSpec]:
    hands: dict[str, HandSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name in NOT_HANDS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if not hasattr(module, "HAND"):
            raise HandbenchError(f"{module.__name__} exports no HAND (its HandSpec); every module in "
                                 f"handbench/hands/ but {', '.join(NOT_HANDS)} is a hand")
        add_hand(hands, module.HAND, module.__name__)
    return hands


def add_hand(hands: dict[str, HandSpec], hand: HandSpec, source: str) -> None:
    """Add ``hand`` to ``hands``; raises :class:`HandbenchError` for a non-HandSpec or a name already taken."""
    if not isinstance(hand, HandSpec):
        raise HandbenchError(f"{source}: {hand!r} is not a HandSpec")
    if hand.name in hands and hands[hand.name] is not hand:
        raise HandbenchError(f"{source}: a hand named {hand.name!r} is already registered")
    hands[hand.name] = hand


HANDS: dict[str, HandSpec] = _discover()


def get_hand(name: str) -> HandSpec:
    if name not in HANDS:
        raise unknown_choice("hand", name, HANDS)
    return HANDS[name]


__all__ = ["FINGERS", "HANDS", "BoundHand", "HandSpec", "add_hand", "axis_angle_quat", "get_hand", "yaw_quat"]
