"""Exports of a handbench HDF5 dataset to other ecosystems' formats.

``lerobot``: LeRobotDataset v3.0 (parquet + mp4 + meta/). ``zarr``: Diffusion Policy's replay buffer.
``minari``: a Minari datasets root holding one dataset (HDF5 backend).
Each export is written into a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handbench.errors import HandbenchError, unknown_choice

FORMATS = ("lerobot", "zarr", "minari")
REQUIRED_MODULES = {"lerobot": ("pyarrow", "pandas", "imageio_ffmpeg"), "zarr": ("zarr",), "minari": ("minari",)}


def _check_modules(fmt: str) -> None:
    import importlib.util

    for module in REQUIRED_MODULES[fmt]:
        if importlib.util.find_spec(module) is None:
            raise HandbenchError(f"the {fmt} export needs the Python package {module!r}: pip install {module}")


def export_dataset(dataset: str | Path, fmt: str, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Convert ``dataset`` (HDF5) into ``out`` in format ``fmt``; returns a short summary."""
    from handbench.dataset import DemoDataset
    from handbench.export.output import atomic_directory

    if fmt not in FORMATS:
        raise unknown_choice("export format", fmt, FORMATS)
    _check_modules(fmt)
    with DemoDataset(dataset) as source, atomic_directory(out, fmt, overwrite, protected=[dataset]) as tmp:
        if fmt == "lerobot":
            from handbench.export.lerobot import export_lerobot

            summary = export_lerobot(source, tmp)
        elif fmt == "minari":
            from handbench.export.minari_export import export_minari

            summary = export_minari(source, tmp)
        else:
            from handbench.export.zarr_replay import export_zarr

            summary = export_zarr(source, tmp)
    return {"format": fmt, "out": str(out), **summary}


__all__ = ["FORMATS", "export_dataset"]
