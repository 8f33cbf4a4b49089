"""``handbench submit``: validate evaluator results (one directory per training seed) and add them to the
leaderboard as an entry of the protocol they were evaluated under, then regenerate the leaderboard's tables, plots
and page. ``--reference`` adds a reference policy's results (scripted expert, random or hold floor) as an unranked
reference entry instead."""

from __future__ import annotations

import argparse

DEFAULT_LEADERBOARD_DIR = "leaderboard"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "submit", help="validate results (one dir per training seed) and add them to the leaderboard",
        description="Validate `handbench eval` results directories, one per training seed (and per task, for "
                    "single-task checkpoints), against the protocol they were evaluated under; store them as a "
                    "leaderboard entry (paths made relative to the current folder, the project) and regenerate "
                    "leaderboard.csv, README.md, index.html and the plots.")
    parser.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR",
                        help="a `handbench eval` output directory (episodes.csv, summary.csv, meta.json)")
    parser.add_argument("--method", required=True, help="the method's name as shown on the leaderboard")
    parser.add_argument("--authors", default="", help="who made the entry")
    parser.add_argument("--paper-url", default="", help="http(s) link to the paper")
    parser.add_argument("--code-url", default="", help="http(s) link to the code")
    parser.add_argument("--checkpoint-url", default="", help="http(s) link to the evaluated checkpoints")
    parser.add_argument("--notes", default="", help="free text (training budget, deviations, ...)")
    parser.add_argument("--entry-id", default=None, help="folder name of the entry (default: from --method)")
    parser.add_argument("--replace", action="store_true", help="overwrite an existing entry with this id")
    parser.add_argument("--reference", action="store_true",
                        help="a reference entry: a reference policy's results (`handbench eval --policy expert`, "
                             "`random` or `hold`), one directory per set of tasks and hands, no training seeds; "
                             "shown unranked")
    parser.add_argument("--leaderboard-dir", default=DEFAULT_LEADERBOARD_DIR,
                        help=f"the leaderboard folder (default: ./{DEFAULT_LEADERBOARD_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.leaderboard.submissions import EntryInfo
    from handbench.leaderboard.submit import submit

    info = EntryInfo(method=args.method, authors=args.authors, paper_url=args.paper_url, code_url=args.code_url,
                     checkpoint_url=args.checkpoint_url, notes=args.notes)
    result = submit(args.results_dirs, info, leaderboard_dir=args.leaderboard_dir, entry_id=args.entry_id,
                    replace=args.replace, reference=args.reference)
    print(result.describe())
    return 0
