"""The loss log of a training run: ``losses.csv`` (one row per logged step) and ``losses.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handbench.atomic import atomic_path

CSV_NAME, PNG_NAME = "losses.csv", "losses.png"


def write_loss_log(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Rewrite both files from all rows so far (atomically: a crash never leaves half a log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(rows)
    csv_path, png_path = out_dir / CSV_NAME, out_dir / PNG_NAME
    with atomic_path(csv_path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)
    figure, axes = plt.subplots(figsize=(6, 4))
    for column, label in (("train_loss", "train"), ("val_loss", "validation (EMA weights)")):
        if column in frame and frame[column].notna().any():
            points = frame[["step", column]].dropna()
            axes.plot(points["step"], points[column], label=label, marker="." if column == "val_loss" else None)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    if frame.filter(like="loss").min().min() > 0:
        axes.set_yscale("log")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(png_path, ".png") as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return csv_path, png_path
