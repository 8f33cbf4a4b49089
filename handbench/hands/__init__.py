"""Hand registry: every hand a task can be built with."""

from __future__ import annotations

from handbench.errors import unknown_choice
from handbench.hands.base import FINGERS, BoundHand, HandSpec, axis_angle_quat, yaw_quat
from handbench.hands.hb16 import HB16
from handbench.hands.shadow import SHADOW

HANDS: dict[str, HandSpec] = {hand.name: hand for hand in (HB16, SHADOW)}


def get_hand(name: str) -> HandSpec:
    if name not in HANDS:
        raise unknown_choice("hand", name, HANDS)
    return HANDS[name]


__all__ = ["FINGERS", "HANDS", "BoundHand", "HandSpec", "axis_angle_quat", "get_hand", "yaw_quat"]
