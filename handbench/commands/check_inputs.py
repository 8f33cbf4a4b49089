"""``handbench check-inputs``: where a trained policy's state inputs leave its demonstrations."""

from __future__ import annotations

import argparse
from collections import Counter


def register(subparsers) -> None:
    from handbench.commands.options import integer, number

    parser = subparsers.add_parser(
        "check-inputs", help="where a trained policy's state inputs leave its demonstrations",
        description="Roll a state-mode checkpoint out on the protocol's eval seeds of its task and print, per state "
                    "dimension, how many of the demonstrations' standard deviations its inputs got from their mean "
                    "(the baselines normalise states that way), and when each episode first left --bound. --pin "
                    "replaces dimensions by their demonstration mean before the policy sees them (a diagnosis: "
                    "does success come back without them?). One episode at a time, the policy's fixed noise seed: "
                    "compare its runs with each other, not with `handbench eval`'s results.")
    parser.add_argument("--checkpoint", required=True, help="policy.pt written by `handbench train` (state mode)")
    parser.add_argument("--protocol", default=None, help="protocol whose eval seeds and task and hand versions to "
                                                         "use (default: the default protocol)")
    parser.add_argument("--seeds", type=integer(1), default=None, help="use the first N eval seeds (default: all)")
    parser.add_argument("--pin", nargs="+", default=(), metavar="PATTERN",
                        help="state dimensions to hold at their demonstration mean, by name or shell pattern "
                             "(e.g. '*_abd.pos' '*_abd.vel'; names as printed)")
    parser.add_argument("--bound", type=number(1.0), default=None,
                        help="standard deviations counted as outside the demonstrations (default: 10)")
    parser.add_argument("--top", type=integer(1), default=12, help="dimensions to list, furthest out first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from handbench.input_check import DEFAULT_BOUND, check_inputs
    from handbench.protocol import DEFAULT_PROTOCOL

    bound = DEFAULT_BOUND if args.bound is None else args.bound
    check = check_inputs(args.checkpoint, args.protocol or DEFAULT_PROTOCOL, args.seeds, args.pin, bound)
    episodes = len(check.episodes)
    table = Table(title=f"{check.task} / {check.hand} on {check.protocol}: state inputs in the demonstrations' "
                        f"standard deviations ({episodes} episodes)")
    for column in ("dimension", "demo std (raw units)", "largest |z|", f"episodes beyond {bound:g}"):
        table.add_column(column)
    for i in check.furthest(args.top):
        table.add_row(check.names[i], f"{check.unit[i]:.2g}", f"{check.largest[i]:,.1f}",
                      f"{check.episodes_beyond[i]}/{episodes}")
    console = Console(width=160)
    console.print(table)
    left = [e for e in check.episodes if e.first_step is not None]
    if left:
        steps = sorted(e.first_step for e in left)
        first = Counter(e.first_dimension for e in left).most_common(4)
        console.print(f"observations (before any pinning) left +-{bound:g} std in {len(left)}/{episodes} episodes, "
                      f"first at control step {steps[0]}-{steps[-1]} (median {steps[len(steps) // 2]}); first out: "
                      + ", ".join(f"{name} ({count})" for name, count in first))
    else:
        console.print(f"no input left +-{bound:g} std in {episodes} episodes")
    pinned = f" with {', '.join(check.pinned)} pinned to the demonstration mean" if check.pinned else ""
    console.print(f"success: {check.successes}/{episodes}{pinned}")
    return 0
