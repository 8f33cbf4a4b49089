"""``handbench tasks``: the task suite as a table."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("tasks", help="list tasks, hands, versions, episode lengths and modes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from handbench.env import OBS_MODES
    from handbench.hands import HANDS
    from handbench.registry import _task_classes

    table = Table(title="handbench tasks")
    for column in ("task", "version", "skill", "episode steps", "hands", "observation modes", "success rule"):
        table.add_column(column)
    for name, task_cls in _task_classes().items():
        table.add_row(name, f"v{task_cls.version}", task_cls.skill, str(task_cls.max_episode_steps),
                      ", ".join(HANDS), ", ".join(OBS_MODES), task_cls.success_rule)
    Console(width=200).print(table)
    return 0
