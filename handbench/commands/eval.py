"""``handbench eval``: evaluate a policy on the protocol's seeds (Ray-parallel, resumable)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def register(subparsers) -> None:
    from handbench.commands.options import integer
    from handbench.protocol import DEFAULT_PROTOCOL  # light: the evaluator itself is imported only when run

    parser = subparsers.add_parser(
        "eval", help="evaluate a policy on the protocol's eval seeds",
        description="Evaluate a policy on the protocol's eval seeds. Rerunning into the same --out resumes.")
    parser.add_argument("--policy", required=True, metavar="POLICY",
                        help="act, diffusion, ibc, bc (with --checkpoint), expert, the floors random (uniform "
                             "actions, seeded per episode) and hold (keeps the initial joint targets), or "
                             "module:Class (any class with reset() and act(obs))")
    parser.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (needed by act, diffusion, ibc, bc)")
    parser.add_argument("--task", help="task name, comma-separated names, or 'all' (default: the checkpoint's task, "
                                       "else all)")
    parser.add_argument("--hand", help="hand (default: the checkpoint's hand, else hb16)")
    parser.add_argument("--obs", dest="obs_mode", choices=("state", "pixels"),
                        help="observation mode (default: the checkpoint's, else state)")
    parser.add_argument("--workers", type=integer(0), default=None, metavar="K",
                        help="Ray workers (default: one per CPU); 0 runs in this process")
    parser.add_argument("--ray-address", metavar="ADDR", help="join an existing Ray cluster (or set RAY_ADDRESS)")
    parser.add_argument("--videos", type=integer(0), default=0, metavar="N",
                        help="film the first N protocol seeds per task")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: results/eval-<policy>-<task>-...)")
    parser.add_argument("--episodes", type=integer(1), default=None, metavar="N",
                        help="debug subset: only the first N protocol seeds of each task")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                        help=f"protocol whose eval seeds, episode lengths and task and hand versions to use "
                             f"(default: {DEFAULT_PROTOCOL}; hb-v1 reproduces hb-v1 results)")
    parser.add_argument("--device", default="cpu",
                        help="where a checkpoint's model runs: cpu (default), cuda, cuda:<index> or auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # One torch thread for the policy, as in every Ray worker: set before torch loads. With the default (one per
    # core), two evaluations side by side on a 2-core machine oversubscribe it, and a policy queried every step
    # (temporal ensembling) ran about 20 times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from rich.console import Console
    from rich.table import Table

    from handbench.evaluation.policies import resolve_policy
    from handbench.evaluation.runner import EvalConfig, default_out_dir, fill_defaults, resolve_tasks, run_evaluation
    from handbench.protocol import load_protocol

    source = resolve_policy(args.policy, args.checkpoint, args.device)
    config = fill_defaults(EvalConfig(
        policy=source, checkpoint=args.checkpoint, task=args.task, hand=args.hand, obs_mode=args.obs_mode,
        workers=args.workers, ray_address=args.ray_address, videos=args.videos, out=args.out,
        episodes=args.episodes, protocol=args.protocol, progress=not args.no_progress, device=args.device,
        command=shlex.join(["handbench", *sys.argv[1:]])), source)
    if config.out is None:
        config.out = default_out_dir(source, resolve_tasks(config.task, load_protocol(args.protocol)),
                                     config.hand, config.obs_mode)
    result = run_evaluation(config)

    table = Table(title=f"{source.label} on {args.protocol} ({config.hand}, {config.obs_mode})")
    for column in ("task", "episodes", "success", "Wilson 95%", "mean return", "errors"):
        table.add_column(column)
    for row in result.summary.itertuples():
        complete = "" if row.complete else f" of {row.protocol_seeds}"
        table.add_row(row.task, f"{row.n}{complete}", f"{row.success_rate:.1%}",
                      f"[{row.ci_low:.1%}, {row.ci_high:.1%}]", f"{row.mean_return:.2f}", str(row.errors))
    console = Console(width=120)
    console.print(table)
    meta = result.meta
    if meta.get("episodes_reused") or meta.get("episodes_stale_rerun"):
        stale = meta["episodes_stale_rerun"]
        console.print(f"reused {meta['episodes_reused']} finished episode(s) of {meta['episodes_total']} from "
                      f"{result.out}/" + (f"; {stale} made with another policy, expert or library version were "
                                          "run again" if stale else ""))
    console.print(f"results in {result.out}/ (episodes.csv, summary.csv, meta.json, success.png"
                  f"{', videos/' if args.videos else ''})")
    return 0
