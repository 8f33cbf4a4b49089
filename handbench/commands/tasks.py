"""``handbench tasks``: the task suite as a table (``--format md`` prints the README's table)."""

from __future__ import annotations

import argparse

COLUMNS = ("task", "version", "skill", "episode steps", "hands", "observation modes", "success rule")


def register(subparsers) -> None:
    parser = subparsers.add_parser("tasks", help="list tasks, hands, versions, episode lengths and modes")
    parser.add_argument("--format", choices=("table", "md"), default="table",
                        help="rich table (default) or markdown with the reward of each task")
    parser.set_defaults(func=run)


def task_rows() -> list[dict[str, str]]:
    from handbench.hands import HANDS
    from handbench.registry import get_task_class, task_names

    return [
        {"task": name, "version": f"v{cls.version}", "skill": cls.skill, "episode steps": str(cls.max_episode_steps),
         "hands": ", ".join(HANDS), "observation modes": ", ".join(cls.obs_modes), "success rule": cls.success_rule,
         "reward": cls.reward_doc, "description": cls.description}
        for name, cls in ((name, get_task_class(name)) for name in task_names())
    ]


def reward_list_md() -> str:
    """The README's reward list: one line per task, generated from its reward terms (``Task.reward_terms``)."""
    return "\n".join(f"- `{row['task']}`: {row['reward']}." for row in task_rows())


def run(args: argparse.Namespace) -> int:
    rows = task_rows()
    if args.format == "md":
        columns = ("task", "version", "skill", "episode steps", "success rule", "reward")
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(f"`{row[c]}`" if c == "task" else row[c].replace("|", "\\|")
                                    for c in columns) + " |")
        print()
        print(reward_list_md())
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="handbench tasks")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(row[c] for c in COLUMNS))
    Console(width=200).print(table)
    return 0
