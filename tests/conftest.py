"""Fixtures shared by the test modules.

- ``env``: for a module that sets ``TASK = "<task name>"``, that task's env (newest version) with each hand
  in turn, built once per module.
- ``lift_cube_demos``: two lift-cube demonstrations (hb16, state mode) generated once per test session;
  read it, never write to it (copy it first).
- ``task_cases``: every registered (task, version, hand), the parameters of the task-contract test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
