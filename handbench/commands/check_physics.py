"""``handbench check-physics``: how high and fast random in-range actions throw each task's objects."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from handbench.commands.options import integer

    parser = subparsers.add_parser(
        "check-physics", help="how high and fast random in-range actions throw each task's objects",
        description="Run the random floor (uniform actions over the action space, seeded per episode) on the "
                    "protocol's eval seeds and print, per task and hand, the highest and fastest any free object "
                    "got; exits with 1 if an object went above the height bound in an episode without a physics "
                    "failure. Tasks without free objects report 0.")
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks (default: the protocol's)")
    parser.add_argument("--hands", nargs="+", default=None, help="hands (default: all)")
    parser.add_argument("--seeds", type=integer(1), default=None, help="use the first N eval seeds (default: all)")
    parser.add_argument("--protocol", default=None, help="protocol whose task and hand versions and eval seeds to "
                                                         "use (default: the default protocol)")
    parser.add_argument("--hand-version", type=integer(0), default=None,
                        help="build the hands at this version instead of the protocol's (to measure what a hand "
                             "version changes; every hand in --hands must have it)")
    parser.add_argument("--task-version", type=integer(0), default=None,
                        help="build the tasks at this version instead of the protocol's (to measure what a task "
                             "version changes; every task in --tasks must have it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from handbench.errors import distinct_names
    from handbench.hands import HANDS
    from handbench.plausibility import fling_check
    from handbench.protocol import DEFAULT_PROTOCOL, load_protocol
    from handbench.rules import MAX_OBJECT_HEIGHT

    protocol = args.protocol or DEFAULT_PROTOCOL
    rules = load_protocol(protocol)
    tasks = list(rules.tasks) if args.tasks is None else distinct_names(args.tasks, "--tasks")
    hands = list(HANDS) if args.hands is None else distinct_names(args.hands, "--hands")
    for task in tasks:
        rules.task(task)
    table = Table(title=f"random floor on {protocol}'s eval seeds: objects above {MAX_OBJECT_HEIGHT} m over the "
                        f"table fail the check")
    for column in ("task", "hand", "episodes", "highest (m)", "fastest (m/s)", f"above {MAX_OBJECT_HEIGHT} m",
                   "physics errors", "status"):
        table.add_column(column)
    checks = []
    for task in tasks:
        for hand in hands:
            check = fling_check(task, hand, protocol, args.seeds, args.hand_version, args.task_version)
            checks.append(check)
            top = check.highest
            fastest = max((e.fastest for e in check.clean), default=0.0)
            table.add_row(f"{task} v{check.task_version}", f"{hand} v{check.hand_version}", str(len(check.episodes)),
                          f"{top.highest:.2f} (seed {top.seed})" if top else "-", f"{fastest:.1f}",
                          f"{len(check.above)}" + (f" ({', '.join(map(str, check.above[:4]))})" if check.above else ""),
                          str(len(check.physics_errors)), "[green]ok[/green]" if check.passed else "[red]FLUNG[/red]")
    Console(width=160).print(table)
    return 0 if all(check.passed for check in checks) else 1
