"""The README's "Adding a hand" guide works as written: the hands are the modules of handbench/hands/ that export
HAND, and a hand defined in a module of its own, outside the package, is registered through the public API and
runs every task (gymnasium ids, compiled scenes, experts) touching no other file."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import handbench
import handbench.hands as hands_package
from handbench.errors import HandbenchError
from handbench.generate import run_expert_episode
from handbench.hands import HANDS, NOT_HANDS, get_hand
from handbench.registry import task_names
from handbench.seeding import EVAL_SEED_BASE

# A hand of its own: here the hb16 model under another name with one quirk changed (a new hand brings its MJCF
# through build_spec; see handbench/hands/hb16.py).
TWIN_HAND = '''
"""hb16-twin: hb16's model with a slip-off release (a minimal handbench hand module)."""

import dataclasses

from handbench.hands import get_hand

HAND = dataclasses.replace(get_hand("hb16"), name="hb16-twin", description="hb16, letting go by slipping off",
                           release_style="slip-off")
'''


@pytest.fixture
def twin_hand_module(temporary_module):
    """The twin hand's module, imported from a temporary folder; the hand registry is left as it was afterwards."""
    module = temporary_module("twin_hand", TWIN_HAND)
    before = set(HANDS)
    yield module
    for name in set(HANDS) - before:
        del HANDS[name]


def test_every_module_of_the_hands_package_is_a_hand():
    modules = [m.name for m in pkgutil.iter_modules(hands_package.__path__) if m.name not in NOT_HANDS]
    assert sorted(HANDS) == sorted(importlib.import_module(f"handbench.hands.{m}").HAND.name for m in modules)
    assert list(HANDS)[0] == "hb16"  # the default hand comes first


def test_a_hand_from_its_own_module_registers_and_runs(twin_hand_module):
    handbench.register_hand(twin_hand_module.HAND)
    assert get_hand("hb16-twin") is twin_hand_module.HAND
    for task in task_names():
        env = handbench.make(task, "hb16-twin")  # every task has its gymnasium id with the new hand
        assert env.spec.id.startswith(f"handbench/{task}-hb16-twin-v")
        env.close()
    env = handbench.make_env("lift-cube", "hb16-twin")
    assert env.hand.spec.release_style == "slip-off"
    assert run_expert_episode(env, EVAL_SEED_BASE, record=False).success


def test_a_hand_is_refused_with_what_is_wrong(twin_hand_module):
    with pytest.raises(HandbenchError, match="a hand named 'hb16' is already registered"):
        handbench.register_hand(dataclasses.replace(get_hand("shadow"), name="hb16"))
    with pytest.raises(HandbenchError, match="is not a HandSpec"):
        handbench.register_hand("hb16")  # type: ignore[arg-type]
    assert sorted(HANDS) == ["hb16", "shadow"]


def test_no_task_names_a_hand():
    """What differs between hands is in their HandSpec: no task module's code holds a hand's name."""
    import handbench.tasks

    import handbench.inhand
    import handbench.rules

    sources = [*Path(handbench.tasks.__path__[0]).glob("*.py"), Path(handbench.inhand.__file__),
               Path(handbench.rules.__file__)]
    assert len(sources) > 5
    for path in sources:
        names = {node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)}
        assert not names & set(HANDS), f"{path.name} names a hand: {sorted(names & set(HANDS))}"
