"""Envs as a protocol builds them: the task version and hand version it pins.

``handbench.make_env(task, hand, protocol="hb-v1")`` builds exactly the scene hb-v1's numbers were made on (every
task at the version the manifest pins, every hand at the version it pins: hb-v1 pins none, so version 0); without
``protocol`` the newest registered versions are built (:func:`handbench.registry.make_env`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from handbench import registry
from handbench.env import HandEnv
from handbench.errors import HandbenchError
from handbench.protocol import load_protocol


def pinned_versions(task: str, hand: str, protocol: str | None, version: int | None = None,
                    hand_version: int | None = None) -> tuple[int | None, int | None]:
    """(task version, hand version) to build: the ones ``protocol`` pins, or the given ones without a protocol.

    Raises :class:`HandbenchError` for an unknown protocol or task, or a given version the protocol does not pin."""
    if protocol is None:
        return version, hand_version
    rules = load_protocol(protocol)
    pinned = (rules.task(task).task_version, rules.hand_version(hand))
    for given, fixed, what in ((version, pinned[0], f"{task}"), (hand_version, pinned[1], f"hand {hand}")):
        if given is not None and given != fixed:
            raise HandbenchError(f"protocol {protocol} pins {what} v{fixed}, not v{given}")
    return pinned


def make_env(task: str, hand: str = "hb16", version: int | None = None, hand_version: int | None = None, *,
             protocol: str | None = None, **kwargs: Any) -> HandEnv:
    """:func:`handbench.registry.make_env`; with ``protocol``, at the task and hand versions that protocol pins."""
    version, hand_version = pinned_versions(task, hand, protocol, version, hand_version)
    return registry.make_env(task, hand, version, hand_version, **kwargs)


def make(task: str, hand: str = "hb16", version: int | None = None, hand_version: int | None = None, *,
         protocol: str | None = None, **kwargs: Any) -> gym.Env:
    """:func:`handbench.registry.make` (``gymnasium.make``); with ``protocol``, at the versions that protocol pins."""
    version, hand_version = pinned_versions(task, hand, protocol, version, hand_version)
    return registry.make(task, hand, version, hand_version, **kwargs)
