"""Success rate per task with its Wilson 95% interval, as a PNG."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from handbench.atomic import atomic_path


def plot_success(summary: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Bar per (task, hand) with asymmetric error bars from ``ci_low``/``ci_high`` (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = summary["success_rate"].to_numpy()
    labels = [f"{t}\n{h}\n{r:.0%} of {n}"
              for t, h, r, n in zip(summary["task"], summary["hand"], rates, summary["n"], strict=True)]
    errors = [rates - summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy() - rates]
    fig, ax = plt.subplots(figsize=(max(3.0, 1.2 * len(labels) + 1.5), 3.6), dpi=100)
    try:
        ax.bar(labels, rates, yerr=errors, capsize=4, color="#4c72b0")
        ax.set_ylim(0, 1)
        ax.set_ylabel("success rate (Wilson 95%)")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)
