"""Task registry: every (task, version) that can be run, found in ``handbench.tasks`` or registered by hand.

A task module exports ``TASK`` (its task class) or ``TASKS`` (several versions of one task, e.g. the v0 that
hb-v1 pins and the v1 of hb-v2). Older versions stay registered, so results on an older protocol stay
reproducible: a protocol pins each task's version and the evaluator builds exactly that version.

Each (task, hand, version) gets the gymnasium id ``handbench/<task>-<hand>-v<version>``, for example
``handbench/lift-cube-hb16-v0``, with the task's episode length as ``max_episode_steps``; the id builds the hand's
newest version (a protocol's pinned one: ``handbench.make(..., protocol=...)``). A task defined outside the
package is added with :func:`register_task`.

The registry is also where envs are made: it compiles each (task, version, hand, hand version) scene once per
process, caches the model and its hash, and hands them to :class:`~handbench.env.HandEnv` (:func:`make_env`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

import gymnasium as gym
import mujoco

from handbench.env import HandEnv
from handbench.errors import HandbenchError, pick_version, unknown_choice
from handbench.hands import HANDS, HandSpec, add_hand, get_hand
from handbench.scene import make_scene, model_hash
from handbench.task import Task


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, dict[int, type[Task]]]:
    """name -> version -> class, filled from the task modules on first use."""
    import handbench.tasks as package

    registry: dict[str, dict[int, type[Task]]] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        name = f"{package.__name__}.{module_info.name}"
        try:
            module = importlib.import_module(name)
        except HandbenchError:
            raise
        except Exception as exc:  # a task module that does not import is named in one line, not a traceback
            raise HandbenchError(f"task module {name} does not import: {type(exc).__name__}: {exc}") from exc
        classes = getattr(module, "TASKS", None) or ((module.TASK,) if hasattr(module, "TASK") else ())
        for cls in classes:
            _add(registry, cls, source=module.__name__)
    return registry


def _add(registry: dict[str, dict[int, type[Task]]], cls: type[Task], source: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise HandbenchError(f"{source}: {cls!r} is not a Task subclass")
    cls.check_contract()
    versions = registry.setdefault(cls.name, {})
    if cls.version in versions and versions[cls.version] is not cls:
        raise HandbenchError(f"{source}: task {cls.name} v{cls.version} is registered twice "
                             f"({versions[cls.version].__module__} and {cls.__module__})")
    versions[cls.version] = cls


def register_task(cls: type[Task]) -> type[Task]:
    """Add a task class defined outside ``handbench.tasks`` (a plugin, a test) to the registry and to
    gymnasium; returns the class, so it also works as a decorator. Raises :class:`HandbenchError` for a
    non-Task or for another class already registered under the same (name, version)."""
    _add(_registry(), cls, source=cls.__module__)
    register_envs()
    return cls


def register_hand(hand: HandSpec) -> HandSpec:
    """Add a hand defined outside ``handbench.hands`` (a plugin, a test) to the hands every task runs with, and
    its envs to gymnasium; returns the hand. Raises :class:`HandbenchError` for a non-HandSpec or for another
    hand already registered under the same name."""
    add_hand(HANDS, hand, source=getattr(hand, "name", repr(hand)))
    register_envs()
    return hand


def task_names() -> list[str]:
    """Registered task names, in the suite's order (``Task.order``, then name)."""
    registry = _registry()
    return sorted(registry, key=lambda name: (get_task_class(name).order, name))


def task_versions(name: str) -> tuple[int, ...]:
    """The registered versions of task ``name``, oldest first (empty for an unknown task)."""
    return tuple(sorted(_registry().get(name, {})))


def get_task_class(name: str, version: int | None = None) -> type[Task]:
    """The class of task ``name`` at ``version`` (``None``: the newest registered version).

    Raises :class:`HandbenchError` naming the valid choices for an unknown task or version."""
    registry = _registry()
    if name not in registry:
        raise unknown_choice("task", name, sorted(registry))
    return pick_version("task", name, registry[name], version)


def env_id(task: str, hand: str, version: int | None = None) -> str:
    """The gymnasium id ``handbench/<task>-<hand>-v<version>`` (newest version by default)."""
    return f"handbench/{task}-{hand}-v{get_task_class(task, version).version}"


def register_envs() -> None:
    """Register every (task, version, hand) with gymnasium (idempotent)."""
    for name, versions in _registry().items():
        for version, task_cls in versions.items():
            for hand in HANDS:
                gym_id = f"handbench/{name}-{hand}-v{version}"
                if gym_id in gym.registry:
                    continue
                gym.register(id=gym_id, entry_point="handbench.registry:make_env",
                             kwargs={"task": name, "hand": hand, "version": version},
                             max_episode_steps=task_cls.max_episode_steps)


def compiled_model(task: str, hand: str, version: int | None = None,
                   hand_version: int | None = None) -> tuple[mujoco.MjModel, str]:
    """The compiled scene of ``task`` (at ``version``, newest by default) with ``hand`` (at ``hand_version``,
    newest by default), and its hash. Compiled once per process; treat the model as read-only (envs copy it)."""
    cls = get_task_class(task, version)
    spec = get_hand(hand, hand_version)
    return _compile(cls, hand, spec.version)


@functools.lru_cache(maxsize=64)
def _compile(cls: type[Task], hand: str, hand_version: int) -> tuple[mujoco.MjModel, str]:
    spec = make_scene(get_hand(hand, hand_version))
    cls().build(spec)
    model = spec.compile()
    return model, model_hash(model)


def make_env(task: str, hand: str = "hb16", version: int | None = None, hand_version: int | None = None,
             **kwargs: Any) -> HandEnv:
    """A :class:`~handbench.env.HandEnv` for ``task`` (at ``version``, newest by default) and ``hand`` (at
    ``hand_version``, newest by default), without gymnasium's wrappers; ``kwargs`` go to HandEnv (obs_mode,
    cameras, image_size, render_mode, ...). The versions a protocol pins: ``handbench.make_env(..., protocol=)``.
    Raises :class:`HandbenchError` naming the valid choices for an unknown task, version, hand or hand version."""
    model, digest = compiled_model(task, hand, version, hand_version)
    return HandEnv(get_task_class(task, version)(), get_hand(hand, hand_version), model, digest, **kwargs)


def make(task: str, hand: str = "hb16", version: int | None = None, hand_version: int | None = None,
         **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for a handbench task (with its TimeLimit), with a clear error for unknown names."""
    get_task_class(task, version)
    get_hand(hand, hand_version)
    register_envs()
    if hand_version is not None:
        kwargs["hand_version"] = hand_version
    return gym.make(env_id(task, hand, version), **kwargs)
