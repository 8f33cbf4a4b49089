"""``handbench generate-demos``: scripted expert demonstrations -> canonical HDF5 dataset."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from handbench.commands.options import integer, number
from handbench.env import DEFAULT_IMAGE_SIZE, OBS_MODES
from handbench.protocol import DEFAULT_PROTOCOL
from handbench.scene import STANDARD_CAMERAS
from handbench.seeding import EVAL_SEED_BASE as DEMO_SPLIT_SIZE  # demo seeds: 0 .. EVAL_SEED_BASE - 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate-demos", help="run a task's scripted expert on the demo seeds and write an HDF5 dataset",
        description="Run a task's scripted expert on the demo seeds (disjoint from the eval seeds) and write "
                    "the first N successful episodes to an HDF5 dataset (robomimic layout, full sim states). "
                    "An interrupted run resumes from <out>.partial/.")
    parser.add_argument("--task", required=True, help="task name (see `handbench tasks`)")
    parser.add_argument("--hand", default="hb16", help="hand name (default: hb16)")
    parser.add_argument("--num-demos", type=integer(1, DEMO_SPLIT_SIZE), required=True,
                        help="number of successful demonstrations")
    parser.add_argument("--obs", default="state", choices=OBS_MODES,
                        help="observation mode; states are always stored (default: state)")
    parser.add_argument("--cameras", nargs="+", default=list(STANDARD_CAMERAS),
                        help=f"cameras for --obs pixels (default: {' '.join(STANDARD_CAMERAS)})")
    parser.add_argument("--image-size", nargs=2, type=integer(1), default=list(DEFAULT_IMAGE_SIZE),
                        metavar=("HEIGHT", "WIDTH"), help="image size for --obs pixels (default: 96 96)")
    parser.add_argument("--workers", type=integer(0), default=0,
                        help="parallel Ray workers (0 = run in this process; default 0)")
    parser.add_argument("--action-noise", type=number(0, 1, high_open=True), default=0.0,
                        help="Gaussian action noise, as a fraction of each actuator's range (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: demos/<task>-<hand>.hdf5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--ray-address", default=None, help="existing Ray cluster to use (default: start locally)")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                        help="protocol the dataset is made for; it pins the task version "
                             f"(default: {DEFAULT_PROTOCOL})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.generate import EnvConfig, GenerateConfig, action_noise_warning, generate_demos, pin_task_version
    from handbench.registry import get_task_class

    env = EnvConfig(task=args.task, hand=args.hand, obs_mode=args.obs,
                    cameras=tuple(args.cameras) if args.obs == "pixels" else (),
                    image_size=tuple(args.image_size))
    config = GenerateConfig(env=env, num_demos=args.num_demos, workers=args.workers,
                            action_noise=args.action_noise, out=args.out, overwrite=args.overwrite,
                            ray_address=args.ray_address, progress=not args.quiet,
                            protocol=args.protocol)
    config.env.validate()
    pinned = pin_task_version(config).env  # the task version the protocol pins is the one the demos run
    warning = action_noise_warning(get_task_class(pinned.task, pinned.version), args.action_noise)
    if warning:
        print(warning, file=sys.stderr)
    start = time.perf_counter()
    report = generate_demos(config)
    seconds = time.perf_counter() - start
    resumed = f", {report.resumed} episodes reused from an interrupted run" if report.resumed else ""
    failed = f" (seeds {', '.join(map(str, report.failed_seeds[:10]))}{' ...' if report.num_failed > 10 else ''})" \
        if report.num_failed else ""
    unstable = (f", {len(report.physics_error_seeds)} of them on a physics error"
                if report.physics_error_seeds else "")
    print(f"wrote {report.num_demos} demos to {report.path} in {seconds:.1f} s; "
          f"{report.num_failed} expert episodes failed and were skipped{failed}{unstable}{resumed}")
    return 0
