"""What a sweep's ledger adds up to: the results table (methods x tasks x hands, a table and a heatmap), learning
curves (success vs number of demos, per method, task and hand) as a table and a plot, and the compute spent (wall
hours per stage and step).

A learning-curve point pools every finished training seed of one (policy, obs, task, hand, demos): its success
rate is the mean over those seeds' episodes (each seed evaluated on the same protocol seeds) with a Wilson 95%
interval over the pooled episodes, as the leaderboard's per-task cells. Only (policy, obs, task, hand) with at
least two demo counts make a curve.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from handbench.atomic import atomic_write_bytes, atomic_write_text
from handbench.errors import HandbenchError
from handbench.stats import wilson_interval
from handbench.sweep.plan import REFERENCE_POLICIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from handbench.sweep.runner import Sweep

CURVE_KEYS = ["policy", "obs", "task", "hand"]
CURVES_CSV, CURVES_MD, CURVES_PNG, COMPUTE_MD = ("learning-curves.csv", "learning-curves.md", "learning-curves.png",
                                                  "compute.md")
RESULTS_CSV, RESULTS_MD, RESULTS_PNG = "results.csv", "results.md", "results.png"


def ledger_frame(rows: Sequence[dict[str, str]]) -> pd.DataFrame:
    """Ledger rows (strings, as in runs.csv) -> typed columns plus ``successes``; a blank time (a reference run has
    no training) counts as 0 s.

    Raises:
        HandbenchError: a row's success_rate is not a number in [0, 1] or its episodes not a positive whole
            number (a hand-edited or damaged ledger): counting it as 0 successes would pass for a failed seed.
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    for column in ("train_seconds", "eval_seconds"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0.0)
    frame["success_rate"] = pd.to_numeric(frame["success_rate"], errors="coerce")
    episodes = pd.to_numeric(frame["episodes"], errors="coerce")
    bad = ~frame["success_rate"].between(0, 1) | ~(episodes > 0) | (episodes % 1 != 0)
    if bad.any():
        names = ", ".join(frame.loc[bad, "run_id"].astype(str).head(5)) + (" ..." if bad.sum() > 5 else "")
        raise HandbenchError(f"{bad.sum()} ledger row(s) lack a success_rate in [0, 1] or a positive number of "
                             f"episodes: {names}; rerun them or remove their rows")
    frame["episodes"] = episodes.astype(int)
    frame["demos"] = pd.to_numeric(frame["demos"], errors="coerce")
    frame["successes"] = (frame["success_rate"] * frame["episodes"]).round().astype(int)
    return frame


def pooled_points(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, obs, task, hand, demos), reference runs (no demos) included: seeds, episodes,
    success (pooled over the seeds' episodes), ci_low, ci_high (Wilson 95%) and the per-seed rates, by seed."""
    columns = [*CURVE_KEYS, "demos", "seeds", "episodes", "success", "ci_low", "ci_high", "per_seed"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    points = []
    for key, group in frame.groupby([*CURVE_KEYS, "demos"], sort=True, dropna=False):
        successes, episodes = int(group["successes"].sum()), int(group["episodes"].sum())
        low, high = wilson_interval(successes, episodes)
        by_seed = group.assign(seed_number=pd.to_numeric(group["seed"], errors="coerce")).sort_values("seed_number")
        per_seed = " ".join(f"{rate:.2f}" for rate in by_seed["success_rate"])
        demos = None if pd.isna(key[-1]) else int(key[-1])
        points.append([*key[:-1], demos, len(group), episodes, successes / episodes, low, high, per_seed])
    return pd.DataFrame(points, columns=columns).astype({"demos": "Int64"})  # whole numbers, blank for references


def learning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per curve point: CURVE_KEYS, demos, seeds, episodes, success (pooled), ci_low, ci_high and the
    per-seed rates; sorted by curve then demos. Rows of reference policies (no demos) are ignored."""
    table = pooled_points(frame)
    table = table[table["demos"].notna()].astype({"demos": int})
    counts = table.groupby(CURVE_KEYS)["demos"].transform("nunique")
    return table[counts >= 2].reset_index(drop=True)


def results_table(frame: pd.DataFrame, submitted_stages: Collection[str]) -> pd.DataFrame:
    """The sweep's results table: the pooled points (see :func:`pooled_points`) of the reference runs and of the
    trained runs of the stages that submit to the leaderboard (not the learning curves' other demo counts)."""
    if frame.empty:
        return pooled_points(frame)
    chosen = frame["demos"].isna() | frame["stage"].isin(list(submitted_stages))
    return pooled_points(frame[chosen]).reset_index(drop=True)


def ordered_policies(present: Collection[str], policy_order: Sequence[str]) -> list[str]:
    """The policies in ``present``: those of ``policy_order`` in its order, then any others alphabetically (a
    policy the plan does not name still shows)."""
    return [p for p in policy_order if p in present] + sorted(set(present) - set(policy_order))


def results_markdown(table: pd.DataFrame, policy_order: Sequence[str]) -> str:
    """One table per (obs, demos) of trained runs: rows task/hand, columns the reference policies then the trained
    ones in ``policy_order``; cells success % [Wilson 95%] and, for trained policies, the per-seed rates."""
    trained = table[table["demos"].notna()] if not table.empty else table
    if trained.empty:
        return "No trained run has finished yet.\n"
    references = table[table["demos"].isna()]
    sections = []
    for (obs, demos), group in trained.groupby(["obs", "demos"], sort=True):
        policies = ordered_policies(set(references["policy"]), policy_order)
        policies += ordered_policies(set(group["policy"]), policy_order)
        pairs = sorted(set(zip(group["task"], group["hand"], strict=True)))
        lines = [f"**{obs}, {int(demos)} demos**", "", "| task | hand | " + " | ".join(policies) + " |",
                 "| --- | --- | " + " | ".join("---" for _ in policies) + " |"]
        for task, hand in pairs:
            cells = []
            for policy in policies:
                source = references if policy in set(references["policy"]) else group
                point = source[(source["policy"] == policy) & (source["task"] == task) & (source["hand"] == hand)]
                cells.append(_result_cell(point.iloc[0], trained=source is group) if not point.empty else "")
            lines.append(f"| {task} | {hand} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    note = ("Success % pooled over a method's training seeds (each evaluated on the protocol's eval seeds), Wilson "
            "95% interval over the pooled episodes, then each seed's rate; the reference policies (scripted expert, "
            "random and hold floors) are one state-mode evaluation each, shown beside every table. An empty cell "
            "has no finished run; a cell with fewer seeds than the others is still partial.")
    return "\n\n".join(sections) + f"\n\n{note}\n"


def _result_cell(point: pd.Series, trained: bool) -> str:
    cell = f"{100 * point.success:.0f} [{100 * point.ci_low:.0f}, {100 * point.ci_high:.0f}]"
    if trained:
        cell += " (" + " / ".join(f"{100 * float(rate):.0f}" for rate in point.per_seed.split()) + ")"
    return cell


def _png(figure: Figure, empty_message: str | None) -> bytes:
    """The figure as PNG bytes (no software stamp, so the same data gives the same bytes); ``empty_message``
    replaces the first panel when there is nothing to plot."""
    import io

    if empty_message:
        axis = figure.axes[0]
        axis.text(0.5, 0.5, empty_message, ha="center", va="center")
        axis.set_axis_off()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def results_png(table: pd.DataFrame, policy_order: Sequence[str]) -> bytes:
    """A heatmap per (obs, demos) of trained runs: rows task/hand, columns policies (references first), cells the
    pooled success %, annotated, with "(k of n seeds)" where a method has fewer seeds than the most any has."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    trained = table[table["demos"].notna()] if not table.empty else table
    references = table[table["demos"].isna()] if not table.empty else table
    groups = list(trained.groupby(["obs", "demos"], sort=True)) if not trained.empty else []
    heights = [max(len(set(zip(g["task"], g["hand"], strict=True))), 1) for _, g in groups] or [1]
    figure = Figure(figsize=(8.0 * max(len(groups), 1), 0.4 * max(heights) + 1.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(groups), 1), squeeze=False)[0]
    for axis, ((obs, demos), group) in zip(axes, groups, strict=False):
        source = pd.concat([references, group])
        policies = ordered_policies(set(references["policy"]), policy_order)
        policies += ordered_policies(set(group["policy"]), policy_order)
        pairs = sorted(set(zip(group["task"], group["hand"], strict=True)))
        grid = pd.DataFrame(float("nan"), index=[f"{t} / {h}" for t, h in pairs], columns=policies)
        labels = pd.DataFrame("", index=grid.index, columns=policies)
        full = int(group["seeds"].max())
        for point in source.itertuples():
            label = f"{point.task} / {point.hand}"
            if label in grid.index:
                grid.loc[label, point.policy] = 100 * point.success
                partial = not pd.isna(point.demos) and point.seeds < full  # a trained cell short of seeds
                labels.loc[label, point.policy] = f"{100 * point.success:.0f}" + (
                    f"\n({point.seeds} of {full} seeds)" if partial else "")
        axis.imshow(grid.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        axis.set_xticks(range(len(policies)), policies)
        axis.set_yticks(range(len(grid.index)), list(grid.index))
        for row, column in ((r, c) for r in range(len(grid.index)) for c in range(len(policies))):
            value = grid.iat[row, column]
            if value == value:  # not NaN
                axis.text(column, row, labels.iat[row, column], ha="center", va="center", fontsize=8,
                          color="black" if value > 60 else "white")
        references_note = "" if obs == "state" else "; expert and floors: their state runs"
        axis.set_title(f"success % ({obs}, {int(demos)} demos; pooled over training seeds{references_note})")
    return _png(figure, empty_message=None if groups else "no trained run yet")


def curves_markdown(table: pd.DataFrame) -> str:
    """Rows: policy x task/hand (obs); columns: demo counts; cells: success % [Wilson 95%] (seeds)."""
    if table.empty:
        return "No learning curve yet: no method has finished runs at two or more demo counts.\n"
    demos = sorted(table["demos"].unique())
    lines = ["| method | task | hand | obs | " + " | ".join(f"{d} demos" for d in demos) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in demos) + " |"]
    for key, group in table.groupby(CURVE_KEYS, sort=True):
        cells = []
        for count in demos:
            point = group[group["demos"] == count]
            if point.empty:
                cells.append("")
                continue
            row = point.iloc[0]
            cells.append(f"{100 * row.success:.0f} [{100 * row.ci_low:.0f}, {100 * row.ci_high:.0f}] "
                         f"({row.seeds} seed{'s' if row.seeds != 1 else ''})")
        policy, obs, task, hand = key
        lines.append(f"| {policy} | {task} | {hand} | {obs} | " + " | ".join(cells) + " |")
    note = "Success % pooled over training seeds, Wilson 95% interval over the pooled episodes."
    return "\n".join(lines) + f"\n\n{note}\n"


def curves_png(table: pd.DataFrame) -> bytes:
    """One panel per (task, hand, obs): success vs demos (log axis), a line and a 95% band per policy."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(table.groupby(["task", "hand", "obs"], sort=True)) if not table.empty else []
    figure = Figure(figsize=(4.0 * max(len(panels), 1), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(panels), 1), squeeze=False)[0]
    colors = matplotlib.colormaps["tab10"]
    policies = sorted(table["policy"].unique()) if not table.empty else []
    for axis, ((task, hand, obs), panel) in zip(axes, panels, strict=False):
        for index, policy in enumerate(policies):
            curve = panel[panel["policy"] == policy].sort_values("demos")
            if curve.empty:
                continue
            color = colors(index)
            axis.plot(curve["demos"], 100 * curve["success"], marker="o", color=color, label=policy)
            axis.fill_between(curve["demos"], 100 * curve["ci_low"], 100 * curve["ci_high"], color=color, alpha=0.2)
        axis.set_xscale("log")
        ticks = sorted(panel["demos"].unique())
        axis.set_xticks(ticks, [str(t) for t in ticks])
        axis.minorticks_off()
        axis.set_ylim(0, 100)
        axis.set_title(f"{task} / {hand} ({obs})")
        axis.set_xlabel("demonstrations")
        axis.set_ylabel("success % (Wilson 95%)")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    return _png(figure, empty_message=None if panels else "no learning curve yet")


def compute_markdown(frame: pd.DataFrame, demos: Sequence[dict[str, str]]) -> str:
    """Wall hours per stage (training, evaluation) and for the demos, and the total, with where they ran."""
    lines = ["| stage | runs | training h | evaluation h | devices | hosts |", "| --- | --- | --- | --- | --- | --- |"]
    total = 0.0
    if not frame.empty:
        for stage, group in frame.groupby("stage", sort=False):
            train, evaluate = group["train_seconds"].sum() / 3600, group["eval_seconds"].sum() / 3600
            total += train + evaluate
            devices, hosts = (", ".join(sorted(group[column].unique())) for column in ("device", "host"))
            lines.append(f"| {stage} | {len(group)} | {train:.2f} | {evaluate:.2f} | {devices} | {hosts} |")
    demo_hours = sum(float(row["seconds"] or 0) for row in demos) / 3600
    total += demo_hours
    lines.append(f"| demos ({len(demos)} datasets) | | {demo_hours:.2f} (generation) | | | |")
    lines.append(f"\nTotal wall time: {total:.2f} h (the sum over runs; shards running side by side overlap).\n")
    return "\n".join(lines)


def write_report(sweep: Sweep) -> list[Path]:
    """Write the results table (csv, md, png), the learning curves (csv, md, png) and compute.md into
    ``<record_dir>/report/``."""
    frame = ledger_frame(list(sweep.run_ledger.rows().values()))
    table = learning_curves(frame)
    policy_order = [*REFERENCE_POLICIES, *sweep.plan.methods]
    results = results_table(frame, {stage.name for stage in sweep.plan.stages if stage.submit})
    folder = sweep.project / sweep.plan.record_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {CURVES_CSV: table.to_csv(index=False, float_format="%.4f"), CURVES_MD: curves_markdown(table),
               COMPUTE_MD: compute_markdown(frame, list(sweep.demo_ledger.rows().values())),
               RESULTS_CSV: results.to_csv(index=False, float_format="%.4f"),
               RESULTS_MD: results_markdown(results, policy_order)}
    written = []
    for name, text in outputs.items():
        atomic_write_text(folder / name, text)
        written.append(folder / name)
    for name, png in ((CURVES_PNG, curves_png(table)), (RESULTS_PNG, results_png(results, policy_order))):
        atomic_write_bytes(folder / name, png)
        written.append(folder / name)
    return written
