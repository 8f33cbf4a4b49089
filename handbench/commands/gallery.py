"""``handbench gallery``: one picture per task (the README's task table), rendered by the project.

Each picture shows the scripted expert midway through a protocol episode (the task version the protocol pins, its
first eval seed), for every hand side by side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def register(subparsers) -> None:
    from handbench.commands.options import integer, number

    parser = subparsers.add_parser("gallery", help="render one picture per task (expert mid-episode)")
    parser.add_argument("--out", default="assets/gallery", help="output folder (default: assets/gallery)")
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks to render (default: the protocol's)")
    parser.add_argument("--protocol", default=None, help="protocol whose task versions and first eval seed to show "
                                                         "(default: the default protocol)")
    parser.add_argument("--camera", default="overview", help="camera name (default: overview)")
    parser.add_argument("--size", nargs=2, type=integer(1), default=[160, 200], metavar=("H", "W"),
                        help="picture height and width of each hand's image (default: 160 200)")
    parser.add_argument("--fraction", type=number(0, 1), default=0.6,
                        help="render after this fraction of the expert's episode (default: 0.6)")
    parser.set_defaults(func=run)


def expert_frame(task: str, version: int, hand: str, seed: int, camera: str, size: tuple[int, int],
                 fraction: float, hand_version: int | None = None) -> np.ndarray:
    """Roll the expert of ``task`` at ``version`` (with ``hand`` at ``hand_version``) out, then render the state
    reached after ``fraction`` of its episode; an image of shape ``(*size, 3)``."""
    from handbench.generate import run_expert_episode
    from handbench.registry import make_env

    env = make_env(task, hand, version, hand_version)
    episode = run_expert_episode(env, seed, record=True)  # the rollout engine; states before every step
    states = [*episode.states, env.full_state()]
    env.set_full_state(states[int(fraction * (len(states) - 1))])
    frame = env.render_camera(camera, size)
    env.close()
    return frame


def run(args: argparse.Namespace) -> int:
    import imageio.v3 as iio

    from handbench.atomic import atomic_path, ensure_writable_dir, removed_if_empty_on_error
    from handbench.errors import distinct_names
    from handbench.hands import HANDS
    from handbench.protocol import DEFAULT_PROTOCOL, load_protocol
    from handbench.registry import get_task_class
    from handbench.rerender import check_image_size

    protocol = load_protocol(args.protocol or DEFAULT_PROTOCOL)
    tasks = list(protocol.tasks) if args.tasks is None else distinct_names(args.tasks, "--tasks")
    for task in tasks:
        get_task_class(task)  # an unknown name says so before the protocol does
        protocol.task(task)
    size = check_image_size(args.size)
    with removed_if_empty_on_error(args.out):  # a bad --camera leaves no empty folder behind
        out = ensure_writable_dir(args.out)
        for task in tasks:
            entry = protocol.task(task)
            frames = [expert_frame(task, entry.task_version, hand, entry.eval_seeds[0], args.camera, size,
                                   args.fraction, protocol.hand_version(hand)) for hand in HANDS]
            target = Path(out) / f"{task}.png"
            with atomic_path(target, suffix=".png") as tmp:
                iio.imwrite(tmp, np.concatenate(frames, axis=1), extension=".png")
            print(f"wrote {target}")
    return 0
