"""``handbench bench``: measured throughput of physics, rendering, generation, evaluation and baselines."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from handbench.bench import SECTIONS
    from handbench.commands.options import integer

    parser = subparsers.add_parser("bench", help="measure simulation, rendering, generation, eval and policy speed")
    parser.add_argument("--only", metavar="SECTIONS",
                        help=f"comma-separated sections to run (default: all but protocol): {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="fewer steps and episodes (about a minute)")
    parser.add_argument("--task", action="append", dest="tasks", metavar="TASK",
                        help="task(s) to measure (repeatable; default: every task for physics, lift-cube elsewhere)")
    parser.add_argument("--hand", action="append", dest="hands", metavar="HAND",
                        help="hand(s) to measure (repeatable; default: every hand for physics, hb16 elsewhere)")
    parser.add_argument("--profile", action="store_true", help="print env.step's hot path even when on target")
    parser.add_argument("--lanes", type=integer(1), nargs="+", metavar="L",
                        help="rollout section: lane widths to compare, the first the batched one (default: the "
                             "default protocol's width and 1, the one-episode-per-query path: 32 1 for hb-v2)")
    parser.add_argument("--policy", action="append", dest="policies", choices=("act", "diffusion", "ibc", "bc"),
                        help="rollout section: baseline(s) to measure (repeatable; default: diffusion, act, ibc)")
    parser.add_argument("--device", default="cpu", help="rollout and protocol sections: where policies run "
                                                        "(default: cpu; cuda batches on the GPU)")
    parser.add_argument("--checkpoints", type=integer(1), default=3, metavar="N",
                        help="protocol section: checkpoints per task and hand (default: 3, a full protocol)")
    parser.add_argument("--rounds", type=integer(1), default=2, metavar="N",
                        help="rollout section: alternating rounds per measure, best of N (default: 2)")
    parser.add_argument("--out", metavar="DIR", help="also write bench.json and bench.csv into DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from handbench.atomic import ensure_writable_dir
    from handbench.bench import BenchConfig, parse_sections, print_report, run_bench, validate_names, write_report
    from handbench.errors import distinct_names

    sections = parse_sections(args.only)
    args.tasks = None if args.tasks is None else distinct_names(args.tasks, "--task")
    args.hands = None if args.hands is None else distinct_names(args.hands, "--hand")
    validate_names(args.tasks, args.hands)
    if args.out:
        ensure_writable_dir(args.out)  # before minutes of measuring
    device = args.device
    if device != "cpu":
        from handbench.training.trainer import resolve_device

        device = str(resolve_device(device))  # one line when CUDA is not there
    lanes = {"lanes": tuple(args.lanes)} if args.lanes else {}  # default: the protocol's width and 1
    config = BenchConfig(sections=sections, quick=args.quick, profile=args.profile, **lanes, device=device,
                         checkpoints=args.checkpoints, rounds=args.rounds,
                         policies=tuple(args.policies) if args.policies else None,
                         tasks=tuple(args.tasks) if args.tasks else None,
                         hands=tuple(args.hands) if args.hands else None)
    console = Console(width=200, stderr=True)
    report = run_bench(config, on_section=lambda name: console.print(f"[dim]measuring {name} ...[/]"))
    print_report(report)
    if args.out:
        for path in write_report(report, args.out):
            print(f"wrote {path}")
    return 0
