"""Task registry: discovers the task modules in ``handbench.tasks`` and registers them with gymnasium.

Each (task, hand) pair gets the gymnasium id ``handbench/<task>-<hand>-v<version>``, for example
``handbench/lift-cube-hb16-v0``, with the task's episode length as ``max_episode_steps``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

import gymnasium as gym

from handbench.errors import unknown_choice
from handbench.hands import HANDS
from handbench.task import Task


@functools.lru_cache(maxsize=1)
def _task_classes() -> dict[str, type[Task]]:
    import handbench.tasks as package

    classes: dict[str, type[Task]] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        task_cls = getattr(module, "TASK", None)
        if task_cls is not None:
            classes[task_cls.name] = task_cls
    return dict(sorted(classes.items(), key=lambda item: getattr(item[1], "order", 100)))


def task_names() -> list[str]:
    return list(_task_classes())


def get_task_class(name: str) -> type[Task]:
    classes = _task_classes()
    if name not in classes:
        raise unknown_choice("task", name, classes)
    return classes[name]


def env_id(task: str, hand: str) -> str:
    return f"handbench/{task}-{hand}-v{get_task_class(task).version}"


def register_envs() -> None:
    """Register every (task, hand) pair with gymnasium (idempotent)."""
    for name, task_cls in _task_classes().items():
        for hand in HANDS:
            gym_id = env_id(name, hand)
            if gym_id in gym.registry:
                continue
            gym.register(
                id=gym_id,
                entry_point="handbench.env:HandEnv",
                kwargs={"task": name, "hand": hand},
                max_episode_steps=task_cls.max_episode_steps,
            )


def make(task: str, hand: str = "hb16", **kwargs) -> gym.Env:
    """``gymnasium.make`` for a handbench task, with a clear error for unknown names."""
    get_task_class(task)
    if hand not in HANDS:
        raise unknown_choice("hand", hand, HANDS)
    register_envs()
    return gym.make(env_id(task, hand), **kwargs)
