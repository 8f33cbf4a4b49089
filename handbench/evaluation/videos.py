"""Episode videos: the first N protocol seeds of each task, so every policy is filmed on the same episodes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

VIDEO_CAMERA = "overview"
VIDEO_SIZE = (240, 320)  # height, width: multiples of 16, so ffmpeg needs no resize


def video_seeds(protocol_seeds: Sequence[int], count: int) -> set[int]:
    """The seeds filmed: the first ``count`` of the protocol's (not of a --episodes subset's order)."""
    return set(list(protocol_seeds)[: max(count, 0)])


def encode_mp4(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """mp4 (H.264) bytes. Encoded in the worker, so a cluster's workers need no shared filesystem."""
    import imageio.v3 as iio

    fd, name = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        iio.imwrite(name, np.stack(frames), extension=".mp4", fps=fps, macro_block_size=16)
        with open(name, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(name)
