"""``handbench render``: re-render a dataset's stored states (new cameras or sizes) or make a video."""

from __future__ import annotations

import argparse
from pathlib import Path

from handbench.env import DEFAULT_IMAGE_SIZE
from handbench.scene import STANDARD_CAMERAS


def register(subparsers) -> None:
    from handbench.commands.options import integer

    parser = subparsers.add_parser(
        "render", help="re-render a dataset's images from its stored states, or write an mp4 of its episodes",
        description="Render images from the full simulator states stored in a dataset: into a new dataset "
                    "(--out; images of other cameras at the same size are kept) and/or an mp4 (--video).")
    parser.add_argument("--dataset", type=Path, required=True, help="source dataset (.hdf5)")
    parser.add_argument("--cameras", nargs="+", default=[STANDARD_CAMERAS[0]],
                        help=f"cameras to render (default: {STANDARD_CAMERAS[0]}); valid: see the task's scene")
    parser.add_argument("--image-size", nargs=2, type=integer(1), default=list(DEFAULT_IMAGE_SIZE),
                        metavar=("HEIGHT", "WIDTH"), help="image size (default: 96 96)")
    parser.add_argument("--episodes", nargs="+", type=integer(0), default=None,
                        help="episode indices (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="dataset to write with the images (may be --dataset itself, with --overwrite)")
    parser.add_argument("--video", type=Path, default=None, help="mp4 file of the episodes, cameras side by side")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.errors import HandbenchError, distinct_names
    from handbench.rerender import check_image_size, rerender_dataset, write_video

    if args.out is None and args.video is None:
        raise HandbenchError("nothing to do: give --out (a dataset with images) and/or --video (an mp4)")
    size = check_image_size(args.image_size)
    distinct_names(args.cameras, "--cameras")
    if args.episodes is not None and len(set(args.episodes)) != len(args.episodes):
        raise HandbenchError(f"--episodes lists an episode more than once ({' '.join(map(str, args.episodes))}); "
                             "give each once")
    for flag, path in (("--out", args.out), ("--video", args.video)):  # checked before any rendering
        if path is None:
            continue
        if path.is_dir():
            raise HandbenchError(f"{flag} {path} is a directory; give a file path")
        if path.exists() and not args.overwrite:
            raise HandbenchError(f"{path} already exists; pass --overwrite to replace it")
    if args.video is not None and args.video.suffix.lower() != ".mp4":
        raise HandbenchError(f"--video must name an .mp4 file, got {args.video}")
    if args.out is not None:
        count = rerender_dataset(args.dataset, args.out, args.cameras, size, args.episodes, args.overwrite)
        print(f"wrote {count} episodes with {' '.join(args.cameras)} images at {size[0]}x{size[1]} to {args.out}")
    if args.video is not None:
        frames = write_video(args.dataset, args.video, args.cameras, size, args.episodes)
        print(f"wrote {frames} frames to {args.video}")
    return 0
