"""The generated tables: ``leaderboard.csv`` (machine-readable), ``README.md`` (ranked, for people) and the
terminal view. Everything is a pure function of the scored entries, so regenerating gives identical bytes.

Method entries are ranked; reference entries (the scripted expert) follow them unranked: an empty ``rank``
and ``kind=reference`` in the CSV, a separate "Reference" table in the README, ``ref`` in the terminal."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from handbench.leaderboard.scores import (
    EntryScores,
    Interval,
    TaskKey,
    all_task_keys,
    rank_overall,
    rank_task,
    reference_entries,
    task_label,
)

OVERALL = "overall"
WILSON = "wilson-95"
BOOTSTRAP = "stratified-bootstrap-95"
CSV_COLUMNS = ("rank", "entry_id", "method", "obs_mode", "task", "hand", "training_seeds", "episodes", "success_rate",
               "ci_low", "ci_high", "interval", "seed_std", "iqm", "iqm_ci_low", "iqm_ci_high", "mean_return",
               "kind")
PLOT_FILE = "leaderboard.png"
METHOD, REFERENCE = "method", "reference"  # the CSV's ``kind``: ranked method entry or unranked reference
REFERENCE_RANK = "ref"  # shown instead of a rank in the Markdown and terminal views


def _number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def _rank(rank: int | None) -> str:
    return "" if rank is None else str(rank)


def _kind(scores: EntryScores) -> str:
    return REFERENCE if scores.reference else METHOD


def overall_row(rank: int | None, scores: EntryScores) -> dict[str, str]:
    return {"rank": _rank(rank), "entry_id": scores.entry_id, "method": scores.entry.info.method,
            "obs_mode": scores.obs_mode, "task": OVERALL,
            "hand": "", "training_seeds": str(scores.entry.training_seeds), "episodes": str(scores.episodes),
            "success_rate": _number(scores.mean.value), "ci_low": _number(scores.mean.low),
            "ci_high": _number(scores.mean.high), "interval": BOOTSTRAP, "seed_std": _number(scores.seed_std),
            "iqm": _number(scores.iqm.value), "iqm_ci_low": _number(scores.iqm.low),
            "iqm_ci_high": _number(scores.iqm.high), "mean_return": "", "kind": _kind(scores)}


def task_row(rank: int | None, scores: EntryScores, key: TaskKey) -> dict[str, str]:
    score = scores.tasks[key]
    return {"rank": _rank(rank), "entry_id": scores.entry_id, "method": scores.entry.info.method,
            "obs_mode": scores.obs_mode, "task": score.task,
            "hand": score.hand, "training_seeds": str(score.training_seeds), "episodes": str(score.episodes),
            "success_rate": _number(score.success_rate), "ci_low": _number(score.ci_low),
            "ci_high": _number(score.ci_high), "interval": WILSON, "seed_std": _number(score.seed_std),
            "iqm": "", "iqm_ci_low": "", "iqm_ci_high": "", "mean_return": _number(score.mean_return),
            "kind": _kind(scores)}


def leaderboard_rows(scores: Sequence[EntryScores], task: str | None = None) -> list[dict[str, str]]:
    """Rows of leaderboard.csv: per method entry (overall rank order) its overall row, then one row per task,
    each ranked among the methods reporting that task; then the reference entries' rows, unranked. With
    ``task``, only that task's rows: its ranking, then the references."""
    scores = list(scores)
    ranked, references = rank_overall(scores), reference_entries(scores)
    task_ranks = {key: {s.entry_id: i for i, s in enumerate(rank_task(ranked, key), 1)}
                  for key in all_task_keys(ranked)}
    if task is not None:
        return [row for key in all_task_keys(scores) if key[0] == task for row in (
            *(task_row(task_ranks[key][s.entry_id], s, key) for s in rank_task(ranked, key)),
            *(task_row(None, s, key) for s in reference_entries(references, key)))]
    rows = []
    for rank, entry_scores in enumerate(ranked, 1):
        rows.append(overall_row(rank, entry_scores))
        rows.extend(task_row(task_ranks[key][entry_scores.entry_id], entry_scores, key) for key in entry_scores.tasks)
    for entry_scores in references:
        rows.append(overall_row(None, entry_scores))
        rows.extend(task_row(None, entry_scores, key) for key in entry_scores.tasks)
    return rows


def render_csv(rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------- markdown
def percent_interval(value: float, low: float, high: float) -> str:
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _links(scores: EntryScores) -> str:
    info = scores.entry.info
    links = [f"[{name}]({url})" for name, url in
             (("paper", info.paper_url), ("code", info.code_url), ("checkpoints", info.checkpoint_url)) if url]
    return " · ".join(links)


def _task_cell(scores: EntryScores, key: TaskKey) -> str:
    if key not in scores.tasks:
        return "—"
    score = scores.tasks[key]
    spread = "" if math.isnan(score.seed_std) else f" ±{100 * score.seed_std:.1f}"
    return percent_interval(score.success_rate, score.ci_low, score.ci_high) + spread


def interval_cell(interval: Interval) -> str:
    """Percent with its interval in brackets, or the bare percent where the interval is undefined."""
    if math.isnan(interval.low):  # one run per task (a reference entry): no interval to show
        return f"{100 * interval.value:.1f}"
    return percent_interval(interval.value, interval.low, interval.high)


def ranking_markdown(scores: Sequence[EntryScores], entry_link_prefix: str = "submissions/") -> str:
    """The ranked table: one row per entry, overall IQM and mean, then one column per (task, hand)."""
    ranked = rank_overall(list(scores))
    keys = all_task_keys(ranked)
    header = ["#", "Method", "Obs", "IQM", "Mean", *(f"`{task_label(key)}`" for key in keys), "Seeds", "Authors",
              "Links"]
    rows = []
    for rank, entry_scores in enumerate(ranked, 1):
        info = entry_scores.entry.info
        method = f"[{_cell_text(info.method)}]({entry_link_prefix}{entry_scores.entry_id}/)"
        rows.append([str(rank), method, entry_scores.obs_mode, interval_cell(entry_scores.iqm),
                     interval_cell(entry_scores.mean), *(_task_cell(entry_scores, key) for key in keys),
                     str(entry_scores.entry.training_seeds), _cell_text(info.authors), _links(entry_scores)])
    return markdown_table(header, rows)


def reference_markdown(scores: Sequence[EntryScores], entry_link_prefix: str = "submissions/") -> str:
    """The reference entries, unranked, with the same task columns as their own results."""
    references = reference_entries(list(scores))
    keys = all_task_keys(references)
    header = ["Reference", "Obs", "IQM", "Mean", *(f"`{task_label(key)}`" for key in keys), "Episodes", "Links"]
    rows = []
    for entry_scores in references:
        info = entry_scores.entry.info
        method = f"[{_cell_text(info.method)}]({entry_link_prefix}{entry_scores.entry_id}/)"
        rows.append([method, entry_scores.obs_mode, interval_cell(entry_scores.iqm),
                     interval_cell(entry_scores.mean), *(_task_cell(entry_scores, key) for key in keys),
                     str(entry_scores.episodes), _links(entry_scores)])
    return markdown_table(header, rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


README_INTRO = """\
# handbench leaderboard

<!-- Generated from submissions/ by `handbench submit` and `handbench leaderboard --regenerate`.
     Do not edit by hand: CI regenerates this file and fails if it differs. -->

Protocol **{protocol}**: every entry is evaluated on the protocol's fixed eval seeds of each task, once per
training seed (at least {training_seeds}). Success rates in %, 95% intervals in brackets; ranked by IQM.
"""

README_COLUMNS = """\
## Columns

- **IQM**: interquartile mean of the success rates of all (task × training seed) runs of the entry (the mean of
  the middle 50%), with a stratified-bootstrap 95% interval (runs resampled within each task; the rliable method).
- **Mean**: the plain mean of the same scores, with the same kind of interval.
- **`task/hand`**: success over all episodes of all training seeds, with a Wilson 95% interval, then ± the
  standard deviation of the success rate across training seeds. — means the entry does not report that task.
- **Obs**: the observation mode the policy was evaluated with (`state`: proprioception, object state and touch;
  `pixels`: camera images and proprioception).
- **Seeds**: number of training seeds (independently trained checkpoints) evaluated.
- Entries reporting different tasks are ranked on different task sets; compare them per task.

`leaderboard.csv` has the same numbers as fractions, one row per entry and task plus an `overall` row
(`interval` names the interval's method). Compare two entries with
`handbench leaderboard --compare A B` (probability of improvement, with a 95% interval).

## Submitting

Train one checkpoint per training seed (and per task, for single-task policies), evaluate each on the
protocol, then submit all the results directories at once:

    handbench eval --policy diffusion --checkpoint runs/s0/policy.pt --task lift-cube --out results/lift-cube-s0
    ...                                      # the same for seeds 1 and 2 (and for every other task)
    handbench submit results/lift-cube-s0 results/lift-cube-s1 results/lift-cube-s2 --method "My method" \\
        --authors "..." --paper-url https://... --code-url https://... --checkpoint-url https://...

`submit` refuses results that do not follow the protocol exactly (every eval seed once per task and training
seed, the protocol's task versions and episode length, success consistent with the recorded steps, complete
provenance, a distinct checkpoint per training seed, summaries that match the episodes) and says why in one
line. It copies the results to `submissions/<entry-id>/` (with the exact commands that produced them in
`meta.json`) and regenerates this file, `leaderboard.csv` and `leaderboard.png`. Open a pull request with
the new folder and the regenerated files; CI validates every submission again.

The scripted expert goes in as an unranked reference entry, one evaluation per task and hand, with the same
protocol checks but no checkpoint or training seeds (`--reference` refuses any other policy):

    handbench eval --policy expert --task all --hand hb16 --out results/expert-hb16   # and --hand shadow
    handbench submit results/expert-hb16 results/expert-shadow --method "Scripted expert" --reference
"""


README_REFERENCE = """\
## Reference

Not ranked. The scripted expert is the policy every dataset's demonstrations come from: it reads privileged
simulator state (exact object and goal poses) and is not trained, so it is shown for scale, not as a
competitor. It is evaluated once on the same protocol seeds (one run per task and hand, no training seeds),
so its overall IQM and mean have no interval; per task, the Wilson interval is over its episodes.
In `leaderboard.csv` its rows have `kind` = `reference` and an empty `rank`.
"""


def readme_markdown(scores: Sequence[EntryScores], protocol: str, training_seeds: int) -> str:
    parts = [README_INTRO.format(protocol=protocol, training_seeds=training_seeds)]
    methods = rank_overall(list(scores))
    if methods:
        parts.append(ranking_markdown(methods))
        parts.append(f"![Success per task and overall IQM, with 95% intervals]({PLOT_FILE})\n")
    elif reference_entries(list(scores)):
        parts.append("No ranked entries yet: see *Submitting* below.\n")
    else:
        parts.append("No entries yet: see *Submitting* below.\n")
    if reference_entries(list(scores)):
        parts.append(README_REFERENCE)
        parts.append(reference_markdown(scores))
    parts.append(README_COLUMNS)
    return "\n".join(parts)


def task_markdown(scores: Sequence[EntryScores], task: str) -> str:
    """The ranking of one task (all its hands), as a Markdown table."""
    rows = []
    for row in leaderboard_rows(scores, task=task):
        success = percent_interval(float(row["success_rate"]), float(row["ci_low"]), float(row["ci_high"]))
        spread = f"{100 * float(row['seed_std']):.1f}" if row["seed_std"] else ""
        rows.append([row["rank"] or REFERENCE_RANK, _cell_text(row["method"]), row["obs_mode"], row["hand"], success,
                     spread, row["training_seeds"], row["mean_return"]])
    return markdown_table(["#", "Method", "Obs", "Hand", "Success", "± seeds", "Seeds", "Mean return"], rows)


# ------------------------------------------------------------------------------------------------- terminal
def rich_table(scores: Sequence[EntryScores], task: str | None = None):
    """A rich Table of the overall ranking, or of one task's ranking."""
    from rich.table import Table

    if task is not None:
        table = Table(title=f"handbench leaderboard: {task} (success %, Wilson 95%)")
        for column in ("#", "entry", "method", "obs", "hand", "success [95% CI]", "± seeds", "seeds", "mean return"):
            table.add_column(column)
        for row in leaderboard_rows(scores, task=task):
            spread = f"{100 * float(row['seed_std']):.1f}" if row["seed_std"] else ""
            table.add_row(row["rank"] or REFERENCE_RANK, row["entry_id"], row["method"], row["obs_mode"], row["hand"],
                          percent_interval(float(row["success_rate"]), float(row["ci_low"]), float(row["ci_high"])),
                          spread, row["training_seeds"], row["mean_return"])
        return table
    ranked = rank_overall(list(scores))
    references = reference_entries(list(scores))
    shown = [(str(rank), s) for rank, s in enumerate(ranked, 1)] + [(REFERENCE_RANK, s) for s in references]
    # The ranked entries' tasks only: the reference covers every task and hand, which would not fit a terminal
    # (the caption says where to see the rest).
    keys = all_task_keys(ranked) or all_task_keys(references)
    hidden = len(set(all_task_keys(references)) - set(keys))
    caption = (f"the reference's {hidden} other task/hand results: --task T or --format md" if hidden else None)
    table = Table(title="handbench leaderboard (success %, 95% intervals; ranked by IQM; ref: not ranked)",
                  caption=caption)
    for column in ("#", "entry", "method", "obs", "IQM", "mean", *(task_label(key) for key in keys), "seeds"):
        table.add_column(column)
    for rank, entry_scores in shown:
        table.add_row(rank, entry_scores.entry_id, entry_scores.entry.info.method, entry_scores.obs_mode,
                      interval_cell(entry_scores.iqm), interval_cell(entry_scores.mean),
                      *(_task_cell(entry_scores, key) for key in keys), str(entry_scores.entry.training_seeds))
    return table
