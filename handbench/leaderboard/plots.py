"""``leaderboard-<protocol>.png``: each method's success per task (Wilson 95%) and overall IQM (bootstrap 95%),
methods grouped by the task set they are ranked on.

Byte stability: the PNG carries no software or date metadata, so the same data and the same matplotlib give
the same bytes. Pixels can still differ between matplotlib/freetype versions, so the up-to-date check does not
compare pixels: the PNG embeds a fingerprint of exactly the data it draws (text chunk ``handbench-data``), and
the check compares that fingerprint. Bump ``PLOT_STYLE`` when the drawing code changes.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from handbench.leaderboard.scores import EntryScores, all_task_keys, rank_overall, task_label
from handbench.protocol import Protocol

PLOT_STYLE = 3
PANELS_PER_ROW = 5  # the overall IQM and then the task/hand pairs, wrapped into rows of this many
FINGERPRINT_KEY = "handbench-data"


def plot_file(protocol: str) -> str:
    """The plot of one protocol's entries."""
    return f"leaderboard-{protocol}.png"


def plot_label(text: str) -> str:
    """Submitter text as a literal matplotlib label ('$' would start mathtext)."""
    return text.replace("$", r"\$")


def plot_data(scores: Sequence[EntryScores], protocol: Protocol) -> dict:
    """Everything the figure shows, rounded as drawn; its hash is the PNG's fingerprint."""
    ranked = rank_overall(list(scores), protocol)
    panels = [{"title": "overall IQM", "points": [
        [s.entry.info.method, round(s.iqm.value, 4), round(s.iqm.low, 4), round(s.iqm.high, 4)] for s in ranked]}]
    for key in all_task_keys(ranked):
        panels.append({"title": task_label(key), "points": [
            [s.entry.info.method, round(s.tasks[key].success_rate, 4), round(s.tasks[key].ci_low, 4),
             round(s.tasks[key].ci_high, 4)] if key in s.tasks else [s.entry.info.method, None, None, None]
            for s in ranked]})
    return {"style": PLOT_STYLE, "protocol": protocol.name, "methods": [s.entry.info.method for s in ranked],
            "panels": panels}


def fingerprint(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def render_png(scores: Sequence[EntryScores], protocol: Protocol) -> bytes:
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = plot_data(scores, protocol)
    methods = data["methods"]
    with matplotlib.style.context("default"):
        if not methods:
            figure = Figure(figsize=(4, 1.5), dpi=100)
            FigureCanvasAgg(figure)
            figure.text(0.5, 0.5, "handbench leaderboard: no entries yet", ha="center", va="center")
            return _png_bytes(figure, data)
        panels = data["panels"]
        # Fixed margins from the label lengths (constrained layout would cost a second per render). Panels wrap
        # into rows of PANELS_PER_ROW, so a protocol with many tasks stays readable on a page and in a README.
        columns = min(len(panels), PANELS_PER_ROW)
        rows = -(-len(panels) // columns)
        label_width = 0.3 + 0.075 * max(len(method) for method in methods)
        axis_height, gap = 0.1 + 0.35 * len(methods), 0.8  # inches: one panel's plot area; x label + next title
        width = label_width + 2.6 * columns
        height = 0.6 + 0.5 + rows * axis_height + (rows - 1) * gap
        figure = Figure(figsize=(width, height), dpi=100)
        FigureCanvasAgg(figure)
        figure.subplots_adjust(left=label_width / width, right=1 - 0.15 / width, bottom=0.5 / height,
                               top=1 - 0.6 / height, wspace=0.12, hspace=gap / axis_height)
        figure.suptitle(f"handbench leaderboard ({data['protocol']}): success % with 95% intervals "
                        "(tasks: Wilson; overall IQM: stratified bootstrap)", fontsize=9)
        grid = figure.subplots(rows, columns, sharey=True, squeeze=False)
        axes = list(grid.flat)
        for unused in axes[len(panels):]:
            unused.set_visible(False)
        colors = matplotlib.colormaps["tab10"]
        for ax, panel in zip(axes, panels, strict=False):
            for row, (_, value, low, high) in enumerate(panel["points"]):
                if value is None:
                    continue
                ax.errorbar([100 * value], [row], xerr=[[100 * (value - low)], [100 * (high - value)]], fmt="o",
                            color=colors(row % 10), capsize=3, markersize=5)
            ax.set_title(panel["title"], fontsize=9)
            ax.set_xlim(-2, 102)
            ax.set_xlabel("success %", fontsize=8)
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(labelsize=8)
        axes[0].set_yticks(range(len(methods)), [plot_label(method) for method in methods])
        axes[0].set_ylim(len(methods) - 0.5, -0.5)  # best entry on top
        return _png_bytes(figure, data)


def _png_bytes(figure, data: dict) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None, FINGERPRINT_KEY: fingerprint(data)})
    return buffer.getvalue()


def png_fingerprint(path: str | Path) -> str | None:
    """The data fingerprint a leaderboard PNG was drawn from; None if absent or unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.info.get(FINGERPRINT_KEY)
    except (OSError, SyntaxError):
        return None
