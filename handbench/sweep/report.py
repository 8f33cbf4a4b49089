"""What a sweep's ledger adds up to: the results table (methods x tasks x hands, a table and a heatmap), learning
curves (success vs number of demos, per method, task and hand) as a table and a plot, and the compute spent (wall
hours per stage and step).

A learning-curve point pools every finished training seed of one (policy, obs, task, hand, demos): its success
rate is the mean over those seeds' episodes (each seed evaluated on the same protocol seeds) with a Wilson 95%
interval over the pooled episodes, as the leaderboard's per-task cells. Only (policy, obs, task, hand) with at
least two demo counts make a curve.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
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


@dataclass(frozen=True)
class ResultsSection:
    """One (obs, demos) table of the results: its task/hand rows, its policy columns (the reference policies
    first) and the pooled point (a row of :func:`pooled_points`) of each filled cell."""

    obs: str
    demos: int
    pairs: list[tuple[str, str]]
    policies: list[str]
    points: dict[tuple[str, str, str], pd.Series]  # (task, hand, policy) -> pooled point
    full_seeds: int  # the most training seeds any trained cell of the section pools


def results_sections(table: pd.DataFrame, policy_order: Sequence[str]) -> list[ResultsSection]:
    """The results table (:func:`results_table`) split per (obs, demos) of its trained runs, each section with the
    reference runs of its task/hand pairs beside them; policies ordered as :func:`ordered_policies`."""
    if table.empty:
        return []
    trained, references = table[table["demos"].notna()], table[table["demos"].isna()]
    sections = []
    for (obs, demos), group in trained.groupby(["obs", "demos"], sort=True):
        pairs = sorted(set(zip(group["task"], group["hand"], strict=True)))
        policies = (ordered_policies(set(references["policy"]), policy_order)
                    + ordered_policies(set(group["policy"]), policy_order))
        points = {(point.task, point.hand, point.policy): point
                  for _, point in pd.concat([references, group]).iterrows() if (point.task, point.hand) in pairs}
        sections.append(ResultsSection(obs, int(demos), pairs, policies, points, int(group["seeds"].max())))
    return sections


def results_markdown(table: pd.DataFrame, policy_order: Sequence[str]) -> str:
    """One table per (obs, demos) of trained runs: rows task/hand, columns the reference policies then the trained
    ones in ``policy_order``; cells success % [Wilson 95%] and, for trained policies, the per-seed rates."""
    sections = results_sections(table, policy_order)
    if not sections:
        return "No trained run has finished yet.\n"
    texts = []
    for section in sections:
        lines = [f"**{section.obs}, {section.demos} demos**", "",
                 "| task | hand | " + " | ".join(section.policies) + " |",
                 "| --- | --- | " + " | ".join("---" for _ in section.policies) + " |"]
        for task, hand in section.pairs:
            cells = [_result_cell(section.points[task, hand, policy]) if (task, hand, policy) in section.points
                     else "" for policy in section.policies]
            lines.append(f"| {task} | {hand} | " + " | ".join(cells) + " |")
        texts.append("\n".join(lines))
    note = ("Success % pooled over a method's training seeds (each evaluated on the protocol's eval seeds), Wilson "
            "95% interval over the pooled episodes, then each seed's rate; the reference policies (scripted expert, "
            "random and hold floors) are one state-mode evaluation each, shown beside every table. An empty cell "
            "has no finished run; a cell with fewer seeds than the others is still partial.")
    return "\n\n".join(texts) + f"\n\n{note}\n"


def _result_cell(point: pd.Series) -> str:
    """success % [Wilson 95%], and for a trained policy (one with demos) each seed's rate."""
    cell = f"{100 * point.success:.0f} [{100 * point.ci_low:.0f}, {100 * point.ci_high:.0f}]"
    if not pd.isna(point.demos):
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

    sections = results_sections(table, policy_order)
    height = max((len(section.pairs) for section in sections), default=1)
    figure = Figure(figsize=(8.0 * max(len(sections), 1), 0.4 * height + 1.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(sections), 1), squeeze=False)[0]
    for axis, section in zip(axes, sections, strict=False):
        grid = np.full((len(section.pairs), len(section.policies)), np.nan)
        for (row, (task, hand)), (column, policy) in itertools.product(enumerate(section.pairs),
                                                                       enumerate(section.policies)):
            point = section.points.get((task, hand, policy))
            if point is None:
                continue
            grid[row, column] = 100 * point.success
            partial = not pd.isna(point.demos) and point.seeds < section.full_seeds  # a trained cell short of seeds
            label = f"{100 * point.success:.0f}" + (f"\n({point.seeds} of {section.full_seeds} seeds)"
                                                    if partial else "")
            axis.text(column, row, label, ha="center", va="center", fontsize=8,
                      color="black" if grid[row, column] > 60 else "white")
        axis.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        axis.set_xticks(range(len(section.policies)), section.policies)
        axis.set_yticks(range(len(section.pairs)), [f"{task} / {hand}" for task, hand in section.pairs])
        references_note = "" if section.obs == "state" else "; expert and floors: their state runs"
        axis.set_title(f"success % ({section.obs}, {section.demos} demos; pooled over training seeds"
                       f"{references_note})")
    return _png(figure, empty_message=None if sections else "no trained run yet")


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


def compute_markdown(frame: pd.DataFrame, demos: Sequence[dict[str, str]],
                     planned: Mapping[str, Collection[str]]) -> str:
    """Wall hours per stage (training, evaluation) and for the demos, and the total, with where they ran.

    ``planned``: each stage's run ids in the plan, in plan order; every planned stage gets a row (one not started
    yet shows 0 of its runs; only planned runs count as its finished ones, while its hours are every ledger row's),
    then any stage the ledger has and the plan no longer names.
    """
    lines = ["| stage | runs finished | training h | evaluation h | devices | hosts |",
             "| --- | --- | --- | --- | --- | --- |"]
    groups = {} if frame.empty else {str(stage): group for stage, group in frame.groupby("stage", sort=False)}
    total = 0.0
    for stage in [*planned, *(stage for stage in groups if stage not in planned)]:
        group = groups.get(stage)
        if stage in planned:
            finished = 0 if group is None else int(group["run_id"].isin(list(planned[stage])).sum())
            runs = f"{finished} of {len(planned[stage])}"
        else:
            runs = str(len(group))
        if group is None:
            lines.append(f"| {stage} | {runs} | 0.00 | 0.00 | | |")
            continue
        train, evaluate = group["train_seconds"].sum() / 3600, group["eval_seconds"].sum() / 3600
        total += train + evaluate
        devices, hosts = (", ".join(sorted(group[column].unique())) for column in ("device", "host"))
        lines.append(f"| {stage} | {runs} | {train:.2f} | {evaluate:.2f} | {devices} | {hosts} |")
    demo_hours = sum(float(row["seconds"] or 0) for row in demos) / 3600
    total += demo_hours
    lines.append(f"| demos ({len(demos)} datasets) | | {demo_hours:.2f} (generation) | | | |")
    lines.append(f"\nTotal wall time: {total:.2f} h (the sum over runs; shards running side by side overlap).\n")
    return "\n".join(lines)


def planned_run_ids(sweep: Sweep) -> dict[str, list[str]]:
    """Each stage's run ids in the plan, in plan order."""
    planned: dict[str, list[str]] = {}
    for run in sweep.plan_runs:
        planned.setdefault(run.stage, []).append(run.id)
    return planned


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
               COMPUTE_MD: compute_markdown(frame, list(sweep.demo_ledger.rows().values()),
                                          planned_run_ids(sweep)),
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
