"""``handbench sweep``: run a sweep plan (the reference results of a protocol), resumable and shardable."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

DEFAULT_PLAN = "baselines/sweeps/hb-v2.toml"


def register(subparsers) -> None:
    from handbench.commands.options import integer

    parser = subparsers.add_parser(
        "sweep", help="run a sweep plan: demos, training, evaluation and leaderboard entries, resumable",
        description="Run a sweep plan (TOML): generate the demos, train and evaluate every run with the project's "
                    "own commands (paths relative to the project, run from its folder), record each finished run "
                    "(commands, wall time, result) in the plan's ledger and submit each leaderboard entry as soon as "
                    "one more task/hand has all its training seeds. Finished runs are skipped: rerun the same "
                    "command to resume, here or on another machine.")
    parser.add_argument("plan", nargs="?", default=DEFAULT_PLAN, type=Path,
                        help=f"the plan file (default: {DEFAULT_PLAN})")
    parser.add_argument("--dry-run", action="store_true", help="list what is left (runs and commands), run nothing")
    parser.add_argument("--only", action="append", metavar="PATTERN",
                        help="only runs whose id matches this glob (repeatable), e.g. 'state-bc-*' or '*-hb16-*-s0'")
    parser.add_argument("--shard", metavar="I/N",
                        help="this process's share: the plan's task/hand pairs dealt round-robin to N shards, "
                             "this one is I (0-based); run the N shards on different machines or sessions")
    parser.add_argument("--device", default="cpu", help="where models train and run: cpu (default), cuda, cuda:<i>")
    parser.add_argument("--eval-workers", type=integer(0), default=0, metavar="K",
                        help="Ray workers per evaluation (default 0: in the eval process)")
    parser.add_argument("--leaderboard-dir", default="leaderboard", help="where entries go (default: leaderboard)")
    parser.add_argument("--forget-stale", action="store_true",
                        help="set aside finished runs and datasets that no longer match the plan or the protocol's "
                             "scenes (moved under <work_dir>/stale/, their leaderboard entries resubmitted), then run")
    parser.add_argument("--report", action="store_true",
                        help="write the results table, the learning curves (tables and plots) and the compute spent, "
                             "from the ledger")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.errors import HandbenchError
    from handbench.protocol import load_protocol
    from handbench.sweep.plan import load_plan, parse_shard, select
    from handbench.sweep.runner import Sweep, SweepOptions

    plan = load_plan(args.plan)
    shard = parse_shard(args.shard) if args.shard else None
    if args.device != "cpu":
        from handbench.training.trainer import resolve_device

        resolve_device(args.device)  # one line now, not a failure in every run
    protocol = load_protocol(plan.protocol)
    plan_runs = plan.runs({name: tuple(task.hands) for name, task in protocol.tasks.items()})
    runs = select(plan_runs, args.only, shard)
    if args.only and not runs:
        raise HandbenchError(f"no run of {args.plan} matches --only {' '.join(args.only)}; run ids look like "
                             f"{plan_runs[0].id if plan_runs else 'state-bc-lift-cube-hb16-d100-s0'}")
    options = SweepOptions(device=args.device, eval_workers=args.eval_workers, leaderboard_dir=args.leaderboard_dir)
    sweep = Sweep(plan, plan_runs, runs, options)
    if args.report:
        from handbench.sweep.report import write_report

        for path in write_report(sweep):
            print(f"wrote {path}")
        return 0
    if args.dry_run:
        print_left(sweep)
        return 0
    from handbench.sweep.ledger import waiting_lock
    from handbench.sweep.stale import describe, find_stale, forget

    # One process at a time looks for stale work and sets it aside: a shard's forgetting resubmits leaderboard
    # entries from every shard's results, which another shard's forgetting would be moving away meanwhile.
    with waiting_lock(sweep.project / plan.work_dir / "stale"):
        stale = find_stale(sweep)
        if stale and not args.forget_stale:
            raise HandbenchError(describe(stale))
        if stale:
            forget(sweep, stale)
        relativized = sweep.relativize_finished_results()
        if relativized:
            print(f"made the project paths in {relativized} results folder(s) under {plan.record_dir}/results "
                  "relative to the project")
    outcome = sweep.run_all()
    if outcome.elsewhere:
        print(f"{len(outcome.elsewhere)} run(s) left to the other processes running them: "
              f"{', '.join(outcome.elsewhere)}")
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) failed (logs in {plan.work_dir}/logs/): {', '.join(outcome.failed)}; "
              "rerun to retry")
        return 1
    if not outcome.elsewhere:
        print(f"all {len(runs)} selected runs finished; ledger: {plan.record_dir}/runs.csv")
    return 0


def print_left(sweep) -> None:
    """What a run of the same command would do, in order."""
    from handbench.sweep.stale import find_stale

    for item in find_stale(sweep):
        print(f"stale: {item.name}: {item.reason}")
    left = sweep.left()
    made = sweep.datasets_made()
    print(f"{len(sweep.runs) - len(left)} of {len(sweep.runs)} selected runs finished; {len(left)} left")
    stages: dict[str, list[int]] = {}
    for run in sweep.runs:
        stages.setdefault(run.stage, [0, 0])[0 if run in left else 1] += 1
    for stage, (todo, done) in stages.items():
        print(f"  stage {stage}: {done} finished, {todo} left")
    for run in left:
        print(run.id)
        if run.dataset is not None and sweep.dataset_path(run.dataset) not in made:
            print(f"  {shlex.join(sweep.demos_command(run.dataset))}")
            made.add(sweep.dataset_path(run.dataset))
        if run.trained:
            print(f"  {shlex.join(sweep.train_command(run))}")
        print(f"  {shlex.join(sweep.eval_command(run))}")
