"""``handbench export``: a HDF5 dataset as a LeRobotDataset v3.0, a Diffusion Policy zarr buffer or Minari."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from handbench.export import FORMATS

    parser = subparsers.add_parser("export", help="convert a dataset to LeRobot v3.0, Diffusion Policy zarr or Minari")
    parser.add_argument("--dataset", required=True, help="HDF5 dataset written by generate-demos")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt", help="target format")
    parser.add_argument("--out", required=True, help="output directory (created; must be empty or absent)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handbench.export import export_dataset

    summary = export_dataset(args.dataset, args.fmt, args.out, overwrite=args.overwrite)
    cameras = ", ".join(summary["cameras"]) or "none"
    print(f"exported {summary['episodes']} episodes ({summary['frames']} frames, cameras: {cameras}) "
          f"as {summary['format']} to {summary['out']}")
    for camera, error in summary.get("video_error", {}).items():
        print(f"video {camera}: mean error {error['mean']:.2f}/255 per pixel and channel, worst pixel "
              f"{error['max']:.0f}/255 (lossy h264; the HDF5 keeps the exact images)")
    if "dataset_id" in summary:
        print(f"load it with: MINARI_DATASETS_PATH={summary['out']} python -c \"import minari; "
              f"print(minari.load_dataset('{summary['dataset_id']}'))\"")
    return 0
