"""The evaluation protocol as data: a versioned manifest shipped in ``handbench/protocols/<name>.json``.

The manifest fixes, per task, the eval seeds, the episode length, the success rule, the allowed
observation modes, the task version the numbers refer to and how many training seeds an entry reports.
It is generated from the task registry (``python -m handbench.protocol --write``) and a test fails when
it is stale, so the protocol never silently drifts from the code. Eval seeds start at
``EVAL_SEED_BASE`` so they never meet the demo split (seeds below it).
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from handbench.errors import HandbenchError, unknown_choice
from handbench.seeds import EVAL_SEED_BASE, is_demo_seed

PROTOCOL_NAME = "hb-v1"
EVAL_EPISODES = 50
TRAINING_SEEDS = 3
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class TaskProtocol:
    """What the protocol fixes for one task."""

    task: str
    task_version: int
    episode_steps: int
    success_rule: str
    obs_modes: tuple[str, ...]
    hands: tuple[str, ...]
    eval_seeds: tuple[int, ...]
    training_seeds: int
    stop_on_success: bool = True  # the env terminates on success (DESIGN: an episode ends on success)

    def check(self, task_version: int, hand: str, obs_mode: str, protocol: str) -> None:
        """Refuse an evaluation the protocol does not cover (another task version, hand or obs mode)."""
        if task_version != self.task_version:
            raise HandbenchError(f"task {self.task} is v{task_version} in the code but v{self.task_version} in "
                                 f"protocol {protocol}; regenerate it (python -m handbench.protocol --write)")
        if hand not in self.hands:
            raise unknown_choice(f"hand for {self.task} in protocol {protocol}:", hand, self.hands)
        if obs_mode not in self.obs_modes:
            raise unknown_choice(f"observation mode for {self.task} in protocol {protocol}:", obs_mode, self.obs_modes)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    eval_seed_base: int
    tasks: dict[str, TaskProtocol]

    def task(self, name: str) -> TaskProtocol:
        if name not in self.tasks:
            raise unknown_choice(f"task in protocol {self.name}:", name, self.tasks)
        return self.tasks[name]

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "description": self.description,
            "eval_seed_base": self.eval_seed_base,
            "tasks": {name: {k: v for k, v in asdict(entry).items() if k != "task"}
                      for name, entry in self.tasks.items()},
        }
        return json.dumps(body, indent=1, sort_keys=False) + "\n"


def manifest_path(name: str = PROTOCOL_NAME) -> Path:
    """Where the manifest of protocol ``name`` lives in the package."""
    return Path(str(resources.files("handbench") / "protocols" / f"{name}.json"))


def parse_manifest(text: str, source: str = "manifest") -> Protocol:
    """Parse and validate a manifest; a clear error for corrupt files or seeds that meet the demo split."""
    try:
        body = json.loads(text)
        tasks = {
            name: TaskProtocol(task=name, task_version=int(e["task_version"]), episode_steps=int(e["episode_steps"]),
                               success_rule=str(e["success_rule"]), obs_modes=tuple(e["obs_modes"]),
                               hands=tuple(e["hands"]), eval_seeds=tuple(int(s) for s in e["eval_seeds"]),
                               training_seeds=int(e["training_seeds"]),
                               stop_on_success=bool(e.get("stop_on_success", True)))
            for name, e in body["tasks"].items()
        }
        protocol = Protocol(name=str(body["name"]), description=str(body.get("description", "")),
                            eval_seed_base=int(body["eval_seed_base"]), tasks=tasks)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HandbenchError(f"protocol {source} is corrupt ({type(exc).__name__}: {exc})") from exc
    for entry in tasks.values():
        bad = [s for s in entry.eval_seeds if is_demo_seed(s)]
        if bad:
            raise HandbenchError(f"protocol {source}: eval seeds {bad[:3]} of {entry.task} are demo seeds")
        if len(set(entry.eval_seeds)) != len(entry.eval_seeds):
            raise HandbenchError(f"protocol {source}: eval seeds of {entry.task} repeat")
    return protocol


@functools.lru_cache(maxsize=4)
def load_protocol(name: str = PROTOCOL_NAME) -> Protocol:
    """The protocol shipped with the package (``hb-v1`` by default)."""
    path = manifest_path(name)
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.json"))
        raise unknown_choice("protocol", name, available)
    return parse_manifest(path.read_text(), source=str(path))


def build_protocol(name: str = PROTOCOL_NAME) -> Protocol:
    """The protocol as the task registry defines it now (what the manifest must equal)."""
    from handbench.env import OBS_MODES
    from handbench.hands import HANDS
    from handbench.registry import _task_classes

    seeds = tuple(range(EVAL_SEED_BASE, EVAL_SEED_BASE + EVAL_EPISODES))
    tasks = {
        task_name: TaskProtocol(task=task_name, task_version=int(cls.version), episode_steps=int(cls.max_episode_steps),
                                success_rule=str(cls.success_rule),
                                obs_modes=tuple(getattr(cls, "obs_modes", OBS_MODES)), hands=tuple(HANDS),
                                eval_seeds=seeds, training_seeds=TRAINING_SEEDS)
        for task_name, cls in _task_classes().items()
    }
    description = (f"handbench evaluation protocol {name}: {EVAL_EPISODES} eval seeds per task from "
                   f"{EVAL_SEED_BASE}, episode ends on success or after episode_steps, "
                   f"{TRAINING_SEEDS} training seeds per entry")
    return Protocol(name=name, description=description, eval_seed_base=EVAL_SEED_BASE, tasks=tasks)


def write_manifest(name: str = PROTOCOL_NAME) -> Path:
    """Regenerate the manifest from the task registry (atomically)."""
    from handbench.atomic import atomic_write_text

    path = manifest_path(name)
    atomic_write_text(path, build_protocol(name).to_json())
    load_protocol.cache_clear()
    return path


def eval_seeds(task: str) -> list[int]:
    """The protocol's eval seeds for a task."""
    return list(load_protocol().task(task).eval_seeds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handbench.protocol",
                                     description="check or regenerate the protocol manifest from the task registry")
    parser.add_argument("--name", default=PROTOCOL_NAME)
    parser.add_argument("--write", action="store_true", help="rewrite the manifest (otherwise only check it)")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {write_manifest(args.name)}")
        return 0
    current = manifest_path(args.name)
    stale = not current.is_file() or current.read_text() != build_protocol(args.name).to_json()
    print(f"{current}: {'STALE (run with --write)' if stale else 'up to date'}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
