"""``handbench check-experts``: scripted-expert success rates on the protocol's eval seeds."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from handbench.commands.options import integer, number

    parser = subparsers.add_parser(
        "check-experts", help="success rate of every task's scripted expert on the eval seeds",
        description="Run each task's scripted expert on the protocol's eval seeds and print the success rate "
                    "per task and hand; exits with 1 if any is below 95%%.")
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks (default: the protocol's)")
    parser.add_argument("--hands", nargs="+", default=None, help="hands (default: all)")
    parser.add_argument("--seeds", type=integer(1), default=None, help="use the first N seeds (default: all)")
    parser.add_argument("--split", choices=("eval", "holdout", "demo"), default="eval",
                        help="eval: the protocol's eval seeds (default); holdout: 100 seeds outside the demo and "
                             "eval splits (2000000-2000099); demo: the first 50 demo seeds (with --action-noise)")
    parser.add_argument("--holdout-from", type=integer(0), default=None, metavar="SEED",
                        help="with --split holdout: the 100 holdout seeds start at SEED instead (outside the demo "
                             "split and every protocol's eval seeds)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="keep every finished episode in DIR (one JSON file each); rerunning into the same DIR "
                             "resumes, skipping the episodes done")
    parser.add_argument("--action-noise", type=number(0, 1, high_open=True), default=0.0,
                        help="Gaussian action noise as in generate-demos (default 0)")
    parser.add_argument("--protocol", default=None, help="protocol whose task versions (and eval seeds) to check "
                                                         "(default: the default protocol)")
    parser.add_argument("--workers", type=integer(0), default=0, help="parallel Ray workers (0 = in this process)")
    parser.add_argument("--ray-address", default=None, help="existing Ray cluster to use (default: start locally)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from handbench.errors import distinct_names
    from handbench.experts_check import SUCCESS_THRESHOLD, check_experts
    from handbench.hands import HANDS
    from handbench.protocol import DEFAULT_PROTOCOL

    tasks = None if args.tasks is None else distinct_names(args.tasks, "--tasks")
    hands = list(HANDS) if args.hands is None else distinct_names(args.hands, "--hands")
    checks = check_experts(tasks, hands, args.seeds, args.workers, args.ray_address, split=args.split,
                           action_noise=args.action_noise, protocol=args.protocol, out=args.out,
                           holdout_from=args.holdout_from)
    noise = f", action noise {args.action_noise:g}" if args.action_noise else ""
    seeds = f"holdout seeds from {args.holdout_from}" if args.holdout_from is not None else f"{args.split} seeds"
    table = Table(title=f"scripted experts on {args.protocol or DEFAULT_PROTOCOL}'s task versions, {seeds}"
                        f"{noise} (pass: success >= {SUCCESS_THRESHOLD:.0%})")
    for column in ("task", "version", "hand", "episodes", "success", "mean steps", "failed seeds", "status"):
        table.add_column(column)
    for check in checks:
        failed = ", ".join(map(str, check.failed_seeds[:6])) + (" ..." if len(check.failed_seeds) > 6 else "")
        status = "[green]ok[/green]" if check.passed else "[red]BELOW[/red]"
        table.add_row(check.task, f"v{check.task_version}", f"{check.hand} v{check.hand_version}", str(check.episodes),
                      f"{check.success_rate:.0%}", f"{check.mean_length:.1f}", failed or "-", status)
    Console(width=160).print(table)
    return 0 if all(check.passed for check in checks) else 1
