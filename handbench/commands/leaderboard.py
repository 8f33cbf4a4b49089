"""``handbench leaderboard``: print the ranking (overall or one task), compare two entries, regenerate the
generated files, check that they are up to date, or re-derive an entry's run from its recorded commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from handbench.commands.submit import DEFAULT_LEADERBOARD_DIR

FORMATS = ("table", "csv", "md")


def register(subparsers) -> None:
    parser = subparsers.add_parser("leaderboard", help="print the leaderboard ranking; compare, regenerate, check",
                                   description="Print the leaderboard ranking from leaderboard/submissions/.")
    parser.add_argument("--task", default=None, help="rank a single task (all its hands)")
    parser.add_argument("--protocol", default=None,
                        help="the protocol whose entries to show (default: the newest protocol with entries)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (terminal), csv or md")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                        help="probability that entry A improves on entry B, with a 95%% interval")
    parser.add_argument("--regenerate", action="store_true",
                        help="rewrite leaderboard.csv, README.md, index.html and the plots")
    parser.add_argument("--check", action="store_true",
                        help="validate every submission and fail if the generated files are out of date")
    parser.add_argument("--verify", metavar="ENTRY", default=None,
                        help="re-derive one run of ENTRY: regenerate its demos, retrain and re-evaluate with the "
                             "recorded commands, and compare every episode exactly (the replay films the first "
                             "seeds: a run without videos gets them)")
    parser.add_argument("--run", default="0", metavar="K",
                        help="which run of --verify ENTRY: a number, or 'all' (default: 0)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="with --verify: re-evaluate this checkpoint of the run instead of retraining (its hash "
                             "must be the run's); recorded as a re-evaluation")
    parser.add_argument("--work-dir", default=None, metavar="DIR",
                        help="where --verify works (default: a new temporary folder)")
    parser.add_argument("--leaderboard-dir", default=DEFAULT_LEADERBOARD_DIR,
                        help=f"the leaderboard folder (default: ./{DEFAULT_LEADERBOARD_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.errors import HandbenchError, unknown_choice
    from handbench.leaderboard.generate import Leaderboard, outdated_files, regenerate
    from handbench.leaderboard.scores import compare, task_label
    from handbench.leaderboard.tables import (
        leaderboard_rows,
        ranking_markdown,
        reference_markdown,
        render_csv,
        rich_table,
        status_markdown,
        task_markdown,
    )

    folder = Path(args.leaderboard_dir)
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise HandbenchError(f"leaderboard folder {folder} {state}; give the folder that holds submissions/ "
                             "with --leaderboard-dir")
    if args.check:
        problems = outdated_files(args.leaderboard_dir)
        for problem in problems:
            print(problem)
        if problems:
            raise HandbenchError(f"{len(problems)} generated file(s) out of date; run "
                                 f"`handbench leaderboard --regenerate --leaderboard-dir {args.leaderboard_dir}`")
        print(f"{args.leaderboard_dir}: every submission valid, generated files up to date")
        return 0
    if args.verify is not None:
        from handbench.leaderboard.verify import parse_runs, verify_runs

        for verification in verify_runs(args.leaderboard_dir, args.verify, parse_runs(args.run),
                                        work_dir=args.work_dir, checkpoint=args.checkpoint):
            print(verification.describe())
        return 0
    if args.checkpoint is not None:
        raise HandbenchError("--checkpoint goes with --verify ENTRY --run K")
    if args.regenerate:
        for path in regenerate(args.leaderboard_dir):
            print(f"wrote {path}")
        return 0
    # A view: every check but re-evaluating the reference rows' sampled seeds (--check and CI do that).
    leaderboard = Leaderboard.load(args.leaderboard_dir, rerun_references=False)
    by_id = {scores.entry_id: scores for scores in leaderboard.scores}
    if args.compare:
        for entry_id in args.compare:
            if entry_id not in by_id:
                raise unknown_choice("entry", entry_id, by_id)
        result = compare(by_id[args.compare[0]], by_id[args.compare[1]])  # refuses two protocols
        p = result.probability
        print(f"P({result.better} > {result.worse}) = {p.value:.3f} [{p.low:.3f}, {p.high:.3f}] "
              f"(stratified bootstrap 95%) over {len(result.tasks)} task(s): "
              f"{', '.join(task_label(key) for key in result.tasks)}")
        return 0
    board = leaderboard.board(args.protocol)
    if args.task is not None and args.task not in board.protocol.tasks:
        raise unknown_choice(f"task in protocol {board.protocol.name}:", args.task, board.protocol.tasks)
    if args.format == "csv":
        print(render_csv(leaderboard_rows(board, task=args.task)), end="")
    elif args.format == "md":
        status = status_markdown(board)  # an open protocol's entries are provisional: say so in every export
        if args.task:
            print((f"{status}\n" if status else "") + task_markdown(board, args.task), end="")
        else:
            references = [scores for scores in board.scores if scores.reference]
            print((f"{status}\n" if status else "") + ranking_markdown(board)
                  + (f"\n{reference_markdown(references)}" if references else ""), end="")
    elif not board.scores:
        print(f"no {board.name} entries in {args.leaderboard_dir}; add one with `handbench submit`")
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # piped: no terminal width to respect, keep rows unwrapped
            console = Console(width=200)
        console.print(rich_table(board, task=args.task))
        others = [f"{other.name} ({other.status or 'released'})" for other in leaderboard.boards
                  if other.scores and other.name != board.name]
        if others:
            print(f"also on the leaderboard: {', '.join(others)}; show one with --protocol NAME")
    return 0
