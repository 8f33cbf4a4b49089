"""MP4 encoding of camera streams through imageio-ffmpeg (its bundled ffmpeg has libx264)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handbench.errors import HandbenchError


@dataclass(frozen=True)
class VideoConfig:
    """Encoder settings. A short GOP keeps random frame access cheap, as LeRobot's loaders expect."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    gop: int = 2

    @property
    def codec_name(self) -> str:
        """The stream's codec as ffprobe names it (what LeRobot's ``video.codec`` records)."""
        return {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1", "libaom-av1": "av1"}.get(
            self.codec, self.codec)


class VideoWriter:
    """Appends uint8 HxWx3 frames to one mp4 file; frames of many episodes go into one file."""

    def __init__(self, path: Path, fps: float, config: VideoConfig = VideoConfig()) -> None:
        self.path = Path(path)
        self.fps = fps
        self.config = config
        self.frames_written = 0
        self._writer = None
        self._shape: tuple[int, ...] | None = None

    def _open(self, shape: tuple[int, ...]) -> None:
        import imageio.v2 as imageio

        height, width = shape[:2]
        if self.config.pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise HandbenchError(f"cannot encode {height}x{width} frames as yuv420p video: height and width "
                                 "must be even")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = imageio.get_writer(
            self.path, format="FFMPEG", mode="I", fps=self.fps, codec=self.config.codec,
            pixelformat=self.config.pix_fmt, macro_block_size=1, quality=None,
            ffmpeg_log_level="error",
            ffmpeg_params=["-crf", str(self.config.crf), "-g", str(self.config.gop)],
        )
        self._shape = shape

    def append(self, frames: np.ndarray) -> None:
        """Append a (T, H, W, 3) uint8 block."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise HandbenchError(f"video frames must be uint8 (T, H, W, 3); got {frames.dtype} {frames.shape}")
        if self._writer is None:
            self._open(frames.shape[1:])
        elif frames.shape[1:] != self._shape:
            raise HandbenchError(f"video {self.path.name}: frame size changed from {self._shape} to "
                                 f"{frames.shape[1:]}")
        for frame in frames:
            self._writer.append_data(frame)
        self.frames_written += len(frames)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_video(path: str | Path) -> np.ndarray:
    """All frames of an mp4 as (T, H, W, 3) uint8 (used to check exports)."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(Path(path), format="FFMPEG")
    try:
        return np.stack([np.asarray(frame) for frame in reader])
    finally:
        reader.close()
