"""The evaluation protocol as data: a versioned manifest shipped in ``handbench/protocols/<name>.json``.

The manifest fixes, per task, the eval seeds, the episode length, the success rule, the allowed
observation modes, the task version the numbers refer to and how many training seeds an entry reports;
from format 2 on it also fixes how policies are queried (``rollout``: the lane width of batched queries and
whether a policy's sampling noise is seeded per episode or fixed) and which version of each hand the scenes are
built with (``hand_versions``; absent, as in hb-v1: every hand at version 0).

A released protocol never changes (hb-v1 is pinned by a test of its content hash). A changed or added
task goes into an open (unreleased) protocol: ``python -m handbench.protocol --name hb-v2 --write``
regenerates an open manifest from the task registry, refuses to touch a released one, and ``--release``
freezes it once its reference results are published. Eval seeds start at ``EVAL_SEED_BASE`` so they never
meet the demo split (seeds below it).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from handbench.errors import HandbenchError, unknown_choice
from handbench.seeding import EVAL_SEED_BASE, POLICY_NOISE_MODES, is_demo_seed

DEFAULT_PROTOCOL = "hb-v2"  # what commands use unless --protocol says otherwise
EVAL_EPISODES = 50
TRAINING_SEEDS = 3
MANIFEST_FORMAT = 2  # the format new manifests are written in; format 1 (hb-v1) has no rollout section
NEW_PROTOCOL_LANES = 32  # a multiple of 8: every row takes the same kernel path (tests/test_rollout.py)
NEW_PROTOCOL_POLICY_NOISE = "episode"


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

    def check(self, hand: str, obs_mode: str, protocol: str) -> None:
        """Refuse an evaluation the protocol does not cover (another hand or obs mode)."""
        if hand not in self.hands:
            raise unknown_choice(f"hand for {self.task} in protocol {protocol}:", hand, self.hands)
        if obs_mode not in self.obs_modes:
            raise unknown_choice(f"observation mode for {self.task} in protocol {protocol}:", obs_mode, self.obs_modes)


@dataclass(frozen=True)
class Protocol:
    """A protocol manifest. ``lanes`` and ``policy_noise`` fix how the evaluator queries a policy: over how many
    episodes side by side (a batch row never depends on the others) and whether a policy's sampling noise is
    re-seeded with 0 at every reset (``"fixed"``, hb-v1) or seeded from each episode's seed (``"episode"``)."""

    name: str
    description: str
    eval_seed_base: int
    tasks: dict[str, TaskProtocol]
    format: int = 1
    released: bool = True  # a released protocol is frozen; format 1 manifests are released by definition
    lanes: int = 1
    policy_noise: str = "fixed"
    hand_versions: dict[str, int] = field(default_factory=dict)  # hand -> version; absent: 0

    def task(self, name: str) -> TaskProtocol:
        if name not in self.tasks:
            raise unknown_choice(f"task in protocol {self.name}:", name, self.tasks)
        return self.tasks[name]

    def hand_version(self, hand: str) -> int:
        """The version of ``hand`` this protocol's scenes are built with (0 for a hand it does not pin)."""
        return int(self.hand_versions.get(hand, 0))

    def to_json(self) -> str:
        """The manifest text (format 1 exactly as hb-v1 was written; format 2 adds released and rollout)."""
        body: dict[str, Any] = {"format": self.format, "name": self.name, "description": self.description}
        if self.format >= 2:
            body["released"] = self.released
        body["eval_seed_base"] = self.eval_seed_base
        if self.format >= 2:
            body["rollout"] = {"lanes": self.lanes, "policy_noise": self.policy_noise}
        if self.hand_versions:
            body["hand_versions"] = dict(self.hand_versions)
        body["tasks"] = {name: {k: v for k, v in asdict(entry).items() if k != "task"}
                         for name, entry in self.tasks.items()}
        return json.dumps(body, indent=1, sort_keys=False) + "\n"


def protocols_dir() -> Path:
    return Path(str(resources.files("handbench") / "protocols"))


def manifest_path(name: str = DEFAULT_PROTOCOL) -> Path:
    """Where the manifest of protocol ``name`` lives in the package."""
    return protocols_dir() / f"{name}.json"


def _version_key(name: str) -> tuple[int, str]:
    match = re.search(r"(\d+)$", name)
    return (int(match.group(1)) if match else -1, name)


def protocol_names() -> list[str]:
    """The protocols shipped with the package, oldest first (hb-v1, hb-v2, ...)."""
    return sorted((p.stem for p in protocols_dir().glob("*.json")), key=_version_key)


def latest_released() -> str:
    """The newest released protocol (the one a frozen ranking uses)."""
    released = [name for name in protocol_names() if load_protocol(name).released]
    if not released:
        raise HandbenchError("no released protocol is shipped")
    return released[-1]


def parse_manifest(text: str, source: str = "manifest") -> Protocol:
    """Parse and validate a manifest; a clear error for corrupt files or seeds that meet the demo split."""
    try:
        body = json.loads(text)
        fmt = int(body["format"])
        if fmt not in (1, 2):
            raise ValueError(f"manifest format {fmt} is not 1 or 2 (a newer handbench wrote it?)")
        tasks = {
            name: TaskProtocol(task=name, task_version=int(e["task_version"]), episode_steps=int(e["episode_steps"]),
                               success_rule=str(e["success_rule"]), obs_modes=tuple(e["obs_modes"]),
                               hands=tuple(e["hands"]), eval_seeds=tuple(int(s) for s in e["eval_seeds"]),
                               training_seeds=int(e["training_seeds"]),
                               stop_on_success=bool(e.get("stop_on_success", True)))
            for name, e in body["tasks"].items()
        }
        rules: dict[str, Any] = {}
        if fmt >= 2:
            released = body["released"]
            if not isinstance(released, bool):
                raise ValueError(f"released must be true or false, got {released!r}")
            rollout = body["rollout"]
            rules = {"released": released, "lanes": int(rollout["lanes"]), "policy_noise": str(rollout["policy_noise"])}
            hand_versions = body.get("hand_versions", {})
            if not isinstance(hand_versions, dict):
                raise ValueError(f"hand_versions must map hand names to versions, got {hand_versions!r}")
            rules["hand_versions"] = {str(hand): int(version) for hand, version in hand_versions.items()}
        protocol = Protocol(name=str(body["name"]), description=str(body.get("description", "")),
                            eval_seed_base=int(body["eval_seed_base"]), tasks=tasks, format=fmt, **rules)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HandbenchError(f"protocol {source} is corrupt ({type(exc).__name__}: {exc})") from exc
    if protocol.lanes < 1:
        raise HandbenchError(f"protocol {source}: rollout lanes must be >= 1, got {protocol.lanes}")
    if protocol.policy_noise not in POLICY_NOISE_MODES:
        raise unknown_choice(f"rollout policy_noise in protocol {source}:", protocol.policy_noise, POLICY_NOISE_MODES)
    for entry in tasks.values():
        bad = [s for s in entry.eval_seeds if is_demo_seed(s)]
        if bad:
            raise HandbenchError(f"protocol {source}: eval seeds {bad[:3]} of {entry.task} are demo seeds")
        if len(set(entry.eval_seeds)) != len(entry.eval_seeds):
            raise HandbenchError(f"protocol {source}: eval seeds of {entry.task} repeat")
    return protocol


@functools.lru_cache(maxsize=8)
def load_protocol(name: str = DEFAULT_PROTOCOL) -> Protocol:
    """The protocol shipped with the package (:data:`DEFAULT_PROTOCOL` by default)."""
    path = manifest_path(name)
    if not path.is_file():
        raise unknown_choice("protocol", name, protocol_names())
    return parse_manifest(path.read_text(), source=str(path))


def build_protocol(name: str = DEFAULT_PROTOCOL) -> Protocol:
    """An open protocol as the task registry defines it now: every task at its newest registered version.

    This is what an unreleased manifest must equal. A released protocol is never rebuilt (see
    :func:`check_released`)."""
    from handbench.hands import HANDS, hand_versions
    from handbench.registry import get_task_class, task_names

    seeds = tuple(range(EVAL_SEED_BASE, EVAL_SEED_BASE + EVAL_EPISODES))
    tasks = {}
    for task_name in task_names():
        cls = get_task_class(task_name)
        tasks[task_name] = TaskProtocol(
            task=task_name, task_version=int(cls.version), episode_steps=int(cls.max_episode_steps),
            success_rule=str(cls.success_rule), obs_modes=tuple(cls.obs_modes),
            hands=tuple(HANDS), eval_seeds=seeds, training_seeds=TRAINING_SEEDS)
    description = (f"handbench evaluation protocol {name}: {EVAL_EPISODES} eval seeds per task from "
                   f"{EVAL_SEED_BASE}, episode ends on success or after episode_steps, "
                   f"{TRAINING_SEEDS} training seeds per entry; policy queries batched over "
                   f"{NEW_PROTOCOL_LANES} lanes, policy noise seeded per episode")
    return Protocol(name=name, description=description, eval_seed_base=EVAL_SEED_BASE, tasks=tasks,
                    format=MANIFEST_FORMAT, released=False, lanes=NEW_PROTOCOL_LANES,
                    policy_noise=NEW_PROTOCOL_POLICY_NOISE,
                    hand_versions={hand: max(hand_versions(hand)) for hand in HANDS})


def check_released(protocol: Protocol) -> list[str]:
    """What no longer holds for a released protocol: each (task, version) it pins must still be registered
    with the same episode length, success rule and observation modes, and each hand version it pins registered.
    Empty when all is well."""
    from handbench.hands import HANDS, hand_versions
    from handbench.registry import get_task_class, task_versions

    problems = []
    for hand, version in protocol.hand_versions.items():
        if hand in HANDS and version not in hand_versions(hand):
            problems.append(f"hand {hand} v{version} is not registered (registered: "
                            f"{', '.join(f'v{v}' for v in hand_versions(hand))})")
    for name, entry in protocol.tasks.items():
        versions = task_versions(name)
        if entry.task_version not in versions:
            problems.append(f"{name} v{entry.task_version} is not registered (registered: "
                            f"{', '.join(f'v{v}' for v in versions) or 'none'})")
            continue
        cls = get_task_class(name, entry.task_version)
        now = (int(cls.max_episode_steps), str(cls.success_rule), tuple(cls.obs_modes))
        if now != (entry.episode_steps, entry.success_rule, entry.obs_modes):
            problems.append(f"{name} v{entry.task_version} changed: (episode_steps, success_rule, obs_modes) "
                            f"is {now} in the code, {(entry.episode_steps, entry.success_rule, entry.obs_modes)} "
                            f"in {protocol.name}")
    return problems


def write_manifest(name: str) -> Path:
    """Write the open protocol ``name`` from the task registry (atomically); a new name makes a new version.

    Raises :class:`HandbenchError` if ``name`` is released: a released protocol is never rewritten."""
    from handbench.atomic import atomic_write_text

    path = manifest_path(name)
    if path.is_file() and load_protocol(name).released:
        raise HandbenchError(f"protocol {name} is released and frozen; put changed or new tasks in a new "
                             f"protocol version (python -m handbench.protocol --name <new name> --write)")
    atomic_write_text(path, build_protocol(name).to_json())
    load_protocol.cache_clear()
    return path


def release_manifest(name: str) -> Path:
    """Mark the open protocol ``name`` released: from then on it never changes."""
    from handbench.atomic import atomic_write_text

    protocol = load_protocol(name)
    if protocol.released:
        raise HandbenchError(f"protocol {name} is already released")
    problems = check_released(protocol)
    if problems:
        raise HandbenchError(f"protocol {name} does not match the task registry: {problems[0]}")
    path = manifest_path(name)
    atomic_write_text(path, replace(protocol, released=True).to_json())
    load_protocol.cache_clear()
    return path


def manifest_problems(name: str) -> list[str]:
    """Why the shipped manifest ``name`` disagrees with the code (empty when it agrees)."""
    protocol = load_protocol(name)
    if protocol.released:
        return check_released(protocol)
    if manifest_path(name).read_text() != build_protocol(name).to_json():
        return [f"{name} is stale: run `python -m handbench.protocol --name {name} --write`"]
    return []


def eval_seeds(task: str, protocol: str = DEFAULT_PROTOCOL) -> list[int]:
    """The protocol's eval seeds for a task."""
    return list(load_protocol(protocol).task(task).eval_seeds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handbench.protocol",
        description="check the shipped protocol manifests against the task registry, write an open (unreleased) "
                    "one, or release it")
    parser.add_argument("--name", default=None, help="protocol to check or write (default: check all; "
                                                     f"--write and --release need it, e.g. {DEFAULT_PROTOCOL})")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true",
                        help="write the manifest from the task registry (new or open protocols only)")
    action.add_argument("--release", action="store_true", help="freeze an open protocol for good")
    args = parser.parse_args(argv)
    try:
        if args.write or args.release:
            if args.name is None:
                parser.error("--write and --release need --name")
            path = write_manifest(args.name) if args.write else release_manifest(args.name)
            print(f"{'wrote' if args.write else 'released'} {path}")
            return 0
        failed = False
        for name in [args.name] if args.name else protocol_names():
            problems = manifest_problems(name)
            state = "released" if load_protocol(name).released else "open"
            print(f"{name} ({state}): {'; '.join(problems) if problems else 'consistent with the task registry'}")
            failed |= bool(problems)
        return 1 if failed else 0
    except HandbenchError as exc:
        print(f"python -m handbench.protocol: error: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
