"""``handbench quickstart``: the whole pipeline on a small default, to see that everything works.

Scripted demos -> a BC baseline -> evaluation on protocol seeds, each step through the same commands a
user runs (so the output shows exactly what to type next).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from handbench.commands.options import integer
    from handbench.seeding import EVAL_SEED_BASE as DEMO_SPLIT_SIZE

    parser = subparsers.add_parser("quickstart", help="generate demos, train BC and evaluate it, on a small default")
    parser.add_argument("--task", default="lift-cube", help="task (default: lift-cube; see `handbench tasks`)")
    parser.add_argument("--hand", default="hb16", help="hand (default: hb16)")
    parser.add_argument("--num-demos", type=integer(1, DEMO_SPLIT_SIZE), default=20,
                        help="expert demonstrations to generate and train on (default: 20)")
    parser.add_argument("--steps", type=integer(1), default=2000, help="BC training steps (default: 2000)")
    parser.add_argument("--episodes", type=integer(1), default=10, help="protocol eval seeds to run (default: 10)")
    parser.add_argument("--out", default="quickstart", help="folder for everything (default: ./quickstart)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.atomic import ensure_writable_dir
    from handbench.cli import main
    from handbench.generate import EnvConfig

    EnvConfig(args.task, args.hand).validate()  # before any work or folder: one line naming the valid names
    out = ensure_writable_dir(args.out)  # a file, or a folder that cannot be written, stops here, before any work
    dataset = out / f"demos/{args.task}-{args.hand}.hdf5"
    run_dir = out / "runs/bc"
    steps = [
        ["generate-demos", "--task", args.task, "--hand", args.hand, "--num-demos", str(args.num_demos),
         "--workers", "0", "--out", str(dataset)],
        ["train", "--policy", "bc", "--dataset", str(dataset), "--steps", str(args.steps), "--out", str(run_dir)],
        ["eval", "--policy", "bc", "--checkpoint", str(run_dir / "policy.pt"), "--episodes", str(args.episodes),
         "--workers", "0", "--out", str(out / "results/bc")],
    ]
    for number, command in enumerate(steps, start=1):
        print(f"\n[{number}/{len(steps)}] handbench {' '.join(command)}", flush=True)
        code = main(command)
        if code:
            return code
    print(f"\nquickstart done: demos, checkpoint and results are in {out}/. The full protocol uses all "
          "50 eval seeds (drop --episodes); `handbench train --policy diffusion` (or act, ibc) trains the other "
          "baselines, and the README's hb-v2 results table compares all four on every task and hand.")
    return 0
