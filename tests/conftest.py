"""Fixtures shared by the test modules.

- ``env``: for a module that sets ``TASK = "<task name>"``, that task's env (newest version) with each hand
  in turn, built once per module.
- ``lift_cube_demos``: two lift-cube demonstrations (hb16, state mode) generated once per test session;
  read it, never write to it (copy it first).
- ``task_cases``: every registered (task, version, hand), the parameters of the task-contract test.
- ``temporary_module``: imports Python source as a module of its own from a temporary folder (a task or hand
  defined outside the package, as the README's guides do); the module is dropped from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from handbench.env import HandEnv
from handbench.hands import HANDS
from handbench.registry import make_env, task_names, task_versions


def task_cases() -> list[tuple[str, int, str]]:
    """Every registered (task, version, hand)."""
    return [(task, version, hand) for task in task_names() for version in task_versions(task) for hand in sorted(HANDS)]


@pytest.fixture(scope="module", params=sorted(HANDS))
def env(request) -> Iterator[HandEnv]:
    env = make_env(request.module.TASK, request.param)
    yield env
    env.close()


@pytest.fixture(scope="session")
def lift_cube_demos(tmp_path_factory) -> Path:
    from handbench.generate import EnvConfig, GenerateConfig, generate_demos

    out = tmp_path_factory.mktemp("lift-cube-demos") / "demos.hdf5"
    generate_demos(GenerateConfig(EnvConfig("lift-cube", "hb16"), num_demos=2, out=out, progress=False))
    return out


@pytest.fixture
def temporary_module(tmp_path, monkeypatch) -> Callable[[str, str], ModuleType]:
    """``temporary_module(name, source)``: ``source`` written to ``<tmp>/<name>.py`` and imported as ``name``."""

    def load(name: str, source: str) -> ModuleType:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load
