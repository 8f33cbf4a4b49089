"""The generated tables: ``leaderboard.csv`` (machine-readable), ``README.md`` (ranked, for people) and the
terminal view. Everything is a pure function of the scored entries, so regenerating gives identical bytes.

Tables are per protocol. Method entries are ranked overall only among entries with the same task set (one table
per task set; ``rank`` in the CSV is the rank within ``task_set``); per task, everyone reporting the task is
ranked. Reference entries (scripted expert, random and hold floors) follow unranked: an empty ``rank`` and
``kind=reference`` in the CSV, a separate "Reference" table in the README, ``ref`` in the terminal. Submitter
text is escaped for Markdown (``markdown_text``)."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence

from handbench.leaderboard.plots import plot_file
from handbench.leaderboard.scores import (
    EntryScores,
    Interval,
    ProtocolBoard,
    TaskKey,
    all_task_keys,
    coverage_text,
    overall_ranks,
    protocol_task_set,
    rank_groups,
    rank_overall,
    rank_task,
    reference_entries,
    task_label,
    task_set,
    unreported_pairs,
)
from handbench.leaderboard.submissions import VERIFICATIONS_KEY
from handbench.protocol import Protocol

OVERALL = "overall"
WILSON = "wilson-95"
BOOTSTRAP = "stratified-bootstrap-95"
CSV_COLUMNS = ("protocol", "protocol_status", "task_set", "rank", "entry_id", "method", "obs_mode", "task", "hand",
               "training_seeds", "episodes", "success_rate", "ci_low", "ci_high", "interval", "seed_std", "iqm",
               "iqm_ci_low", "iqm_ci_high", "mean_return", "kind")
METHOD, REFERENCE = "method", "reference"  # the CSV's ``kind``: ranked method entry or unranked reference
REFERENCE_RANK = "ref"  # shown instead of a rank in the Markdown and terminal views
TERMINAL_TASK_COLUMNS = 6  # more per-task columns than this do not fit a terminal table


def _number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def _rank(rank: int | None) -> str:
    return "" if rank is None else str(rank)


def _kind(scores: EntryScores) -> str:
    return REFERENCE if scores.reference else METHOD


def _task_set_text(scores: EntryScores) -> str:
    return " ".join(task_label(key) for key in task_set(scores))


def overall_row(rank: int | None, scores: EntryScores, board: ProtocolBoard) -> dict[str, str]:
    return {"protocol": board.name, "protocol_status": board.standing, "task_set": _task_set_text(scores),
            "rank": _rank(rank),
            "entry_id": scores.entry_id, "method": scores.entry.info.method,
            "obs_mode": scores.obs_mode, "task": OVERALL,
            "hand": "", "training_seeds": str(scores.entry.training_seeds), "episodes": str(scores.episodes),
            "success_rate": _number(scores.mean.value), "ci_low": _number(scores.mean.low),
            "ci_high": _number(scores.mean.high), "interval": BOOTSTRAP, "seed_std": _number(scores.seed_std),
            "iqm": _number(scores.iqm.value), "iqm_ci_low": _number(scores.iqm.low),
            "iqm_ci_high": _number(scores.iqm.high), "mean_return": "", "kind": _kind(scores)}


def task_row(rank: int | None, scores: EntryScores, key: TaskKey, board: ProtocolBoard) -> dict[str, str]:
    score = scores.tasks[key]
    return {"protocol": board.name, "protocol_status": board.standing, "task_set": task_label(key),
            "rank": _rank(rank),
            "entry_id": scores.entry_id, "method": scores.entry.info.method,
            "obs_mode": scores.obs_mode, "task": score.task,
            "hand": score.hand, "training_seeds": str(score.training_seeds), "episodes": str(score.episodes),
            "success_rate": _number(score.success_rate), "ci_low": _number(score.ci_low),
            "ci_high": _number(score.ci_high), "interval": WILSON, "seed_std": _number(score.seed_std),
            "iqm": "", "iqm_ci_low": "", "iqm_ci_high": "", "mean_return": _number(score.mean_return),
            "kind": _kind(scores)}


def leaderboard_rows(board: ProtocolBoard, task: str | None = None) -> list[dict[str, str]]:
    """Rows of leaderboard.csv for one protocol: per method entry (in table order) its overall row, ranked within
    its task set, then one row per task, ranked among the methods reporting that task; then the reference
    entries' rows, unranked. With ``task``, only that task's rows: its ranking, then the references."""
    scores = list(board.scores)
    ranked, references = rank_overall(scores, board.protocol), reference_entries(scores)
    task_ranks = {key: {s.entry_id: i for i, s in enumerate(rank_task(ranked, key), 1)}
                  for key in all_task_keys(ranked)}
    if task is not None:
        return [row for key in all_task_keys(scores) if key[0] == task for row in (
            *(task_row(task_ranks[key][s.entry_id], s, key, board) for s in rank_task(ranked, key)),
            *(task_row(None, s, key, board) for s in reference_entries(references, key)))]
    ranks = overall_ranks(ranked)
    rows = []
    for entry_scores in ranked:
        rows.append(overall_row(ranks[entry_scores.entry_id], entry_scores, board))
        rows.extend(task_row(task_ranks[key][entry_scores.entry_id], entry_scores, key, board)
                    for key in entry_scores.tasks)
    for entry_scores in references:
        rows.append(overall_row(None, entry_scores, board))
        rows.extend(task_row(None, entry_scores, key, board) for key in entry_scores.tasks)
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


MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#$])")


def markdown_text(text: str) -> str:
    """Submitter text as literal Markdown (and so inert HTML): one line, every markup character escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))



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


def task_set_heading(tasks: Sequence[TaskKey], board: ProtocolBoard) -> str:
    full = protocol_task_set(board.protocol)
    names = ", ".join(f"`{task_label(key)}`" for key in tasks)
    if tuple(tasks) == full:
        return f"Ranked on the full {board.name} task set ({len(full)} task/hand pairs)"
    return f"Ranked on {names} ({len(tasks)} of the {len(full)} task/hand pairs of {board.name})"


CANNOT_VERIFY = "cannot be: no train command recorded"


def verified_cell(scores: EntryScores) -> str:
    """When the entry was last re-derived from its commands (``handbench leaderboard --verify``), and which run
    (``K of N runs`` or ``all N runs`` once several have been, the date the oldest of them; the runs re-evaluated
    from their checkpoints rather than retrained are counted); else whether it can be (runs whose checkpoints
    recorded no train command cannot be re-derived)."""
    entry = scores.entry
    record = entry.last_verification
    if record:
        latest = {str(r.get("run")): r for r in entry.meta.get(VERIFICATIONS_KEY, [])}  # each run's last record
        if len(latest) > 1:  # several runs: how many, the date the oldest of them was
            oldest = min(str(r.get("date")) for r in latest.values())
            evaluated = sum(r.get("kind") == "re-evaluated" for r in latest.values())
            runs = f"all {len(entry.runs)}" if len(latest) == len(entry.runs) else f"{len(latest)} of {len(entry.runs)}"
            how = ("" if not evaluated else ", re-evaluated from their checkpoints" if evaluated == len(latest)
                   else f", {evaluated} re-evaluated from their checkpoints")
            return f"{oldest} ({runs} runs{how})"
        how = ", re-evaluated from its checkpoint" if record.get("kind") == "re-evaluated" else ""
        return f"{record.get('date', '?')} ({record.get('run', '?')}{how})"
    able = entry.rederivable_runs
    if not able:
        return CANNOT_VERIFY
    if len(able) < len(entry.runs):
        return f"no; {len(able)} of {len(entry.runs)} runs can be ({', '.join(able)})"
    return "no"


def ranking_markdown(board: ProtocolBoard, entry_link_prefix: str = "submissions/") -> str:
    """One ranked table per task set: overall IQM and mean, then one column per (task, hand) of the set."""
    parts = []
    for group in rank_groups(list(board.scores), board.protocol):
        header = ["#", "Method", "Obs", "IQM", "Mean", *(f"`{task_label(key)}`" for key in group.tasks), "Seeds",
                  "Verified", "Authors", "Links"]
        rows = []
        for rank, entry_scores in enumerate(group.entries, 1):
            info = entry_scores.entry.info
            method = f"[{markdown_text(info.method)}]({entry_link_prefix}{entry_scores.entry_id}/)"
            rows.append([str(rank), method, entry_scores.obs_mode, interval_cell(entry_scores.iqm),
                         interval_cell(entry_scores.mean), *(_task_cell(entry_scores, key) for key in group.tasks),
                         str(entry_scores.entry.training_seeds), verified_cell(entry_scores),
                         markdown_text(info.authors), _links(entry_scores)])
        parts.append(f"**{task_set_heading(group.tasks, board)}**\n\n" + markdown_table(header, rows))
    return "\n".join(parts)


def reference_markdown(scores: Sequence[EntryScores], entry_link_prefix: str = "submissions/",
                       protocol: Protocol | None = None) -> str:
    """The reference entries, unranked, with the same task columns as their own results."""
    references = reference_entries(list(scores))
    keys = all_task_keys(references)
    header = ["Reference", "Obs", "IQM", "Mean", *(f"`{task_label(key)}`" for key in keys), "Tasks", "Episodes",
              "Verified", "Links"]
    rows = []
    for entry_scores in references:
        info = entry_scores.entry.info
        method = f"[{markdown_text(info.method)}]({entry_link_prefix}{entry_scores.entry_id}/)"
        rows.append([method, entry_scores.obs_mode, interval_cell(entry_scores.iqm),
                     interval_cell(entry_scores.mean), *(_task_cell(entry_scores, key) for key in keys),
                     coverage_text(entry_scores, protocol) if protocol else str(len(entry_scores.tasks)),
                     str(entry_scores.episodes), verified_cell(entry_scores), _links(entry_scores)])
    return markdown_table(header, rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


README_INTRO = """\
# handbench leaderboard

<!-- Generated from submissions/ by `handbench submit` and `handbench leaderboard --regenerate`.
     Do not edit by hand: CI regenerates this file and fails if it differs. -->

Entries are kept per protocol, newest first, and never ranked across protocols. An *open* protocol is not
released yet: its tasks may still change, so its entries are provisional. A protocol is *legacy* once a newer
released protocol has entries: its entries were made under the older rules and stay valid. Browse the tables,
the interval plots and the entries' videos side by side on the page: open [index.html](index.html).
"""

PROTOCOL_INTRO = """\
Every entry is evaluated on the protocol's fixed eval seeds of each task, once per training seed (at least
{training_seeds}). Success rates in %, 95% intervals in brackets. Overall ranks (by IQM) compare only entries
evaluated on the same task set: one table per task set. Per task, every entry reporting the task is ranked
(`handbench leaderboard --task TASK`).
"""

README_COLUMNS = """\
## Columns

- **IQM**: interquartile mean of the success rates of all (task × training seed) runs of the entry (the mean of
  the middle 50%), with a stratified-bootstrap 95% interval (runs resampled within each task; the rliable method).
  An IQM over one task set is not comparable with one over another: ranks are within a task set.
- **Mean**: the plain mean of the same scores, with the same kind of interval.
- **`task/hand`**: success over all episodes of all training seeds, with a Wilson 95% interval, then ± the
  standard deviation of the success rate across training seeds.
- **Obs**: the observation mode the policy was evaluated with (`state`: proprioception, object state and touch;
  `pixels`: camera images and proprioception).
- **Seeds**: number of training seeds (independently trained checkpoints) evaluated.
- **Verified**: when one run of the entry was last re-derived from its recorded commands (demos regenerated,
  policy retrained, re-evaluated, every episode identical) by `handbench leaderboard --verify ENTRY --run K`,
  and which run; once several runs have been, how many (`K of N runs`, `all N runs`) and the date of the oldest;
  runs re-evaluated from their own checkpoint (`--checkpoint PATH`) instead of retrained are said so; `no` if
  never.

`leaderboard.csv` has the same numbers as fractions, one row per entry and task plus an `overall` row
(`protocol`; `protocol_status`: `open` for a protocol not released yet, whose entries are provisional, `released`
for the current protocol, `legacy` for an older one; `task_set`, the set the `rank` is within; `interval`, the
interval's method). Compare two entries
with `handbench leaderboard --compare A B` (probability of improvement over their shared tasks, with a 95%
interval).

## What the checks guarantee

`handbench submit` and CI (`handbench leaderboard --check`) refuse, with one line saying why: results that do
not follow the protocol (every eval seed once per task and training seed, the protocol's task versions and
episode length, success consistent with the recorded steps, summaries recomputed from the episodes); library
versions outside the supported ones (handbench releases; handbench's own dependency floors; the same versions
across an entry's runs); a `model_hash` other than what the row's task, task version and hand compile to; an
observation mode, task or hand other than the checkpoint's training provenance; one checkpoint or bit-identical
results counted as several training seeds; absolute machine paths in the recorded commands; and reference rows
that the reference policy does not reproduce when a sample of their seeds is evaluated again. Method, authors
and notes are length-capped and escaped.

What no check can prove is that a method's checkpoints really produced its results: only re-deriving a run
does. `handbench leaderboard --verify ENTRY --run K` regenerates the demos, retrains from the recorded train
command, re-evaluates with the recorded eval command and compares every episode exactly (the first difference
is reported). The **Verified** column says which entries have been re-derived, when, and on which run.

## Submitting

Train one checkpoint per training seed (and per task, for single-task policies), evaluate each on the
protocol, then submit all the results directories at once, from the project folder (recorded paths are stored
relative to it, as `baselines/reproduce.sh` writes them):

    bash baselines/reproduce.sh lift-cube hb16 diffusion        # HANDBENCH_SEED=1 and 2 for the other seeds
    handbench submit experiments/results/diffusion-lift-cube-hb16 experiments/results/diffusion-lift-cube-hb16-s1 \\
        experiments/results/diffusion-lift-cube-hb16-s2 --method "My method" --authors "..." \\
        --paper-url https://... --code-url https://... --checkpoint-url https://...

`submit` copies the results (and the videos of the first protocol seeds, from `handbench eval --videos 2`) to
`submissions/<entry-id>/`, with the exact commands that produced them in `meta.json`, and regenerates this file,
`leaderboard.csv`, the plots and `index.html`. Open a pull request with the new folder and the regenerated
files; CI validates every submission again.

Reference policies go in as unranked reference entries, one evaluation per task and hand, with the same
protocol checks but no checkpoint or training seeds: the scripted expert (the upper reference) and the floors
(`random`, `hold`); `--reference` refuses any other policy:

    handbench eval --policy expert --task all --hand hb16 --videos 2 --out experiments/ref/expert-hb16
    handbench submit experiments/ref/expert-hb16 experiments/ref/expert-shadow --method "Scripted expert" --reference
"""


README_REFERENCE = """\
Not ranked. Reference policies are not trained: the scripted expert, which every dataset's demonstrations come
from, reads privileged simulator state (exact object and goal poses) and is shown for scale; the floors (random
actions, holding the initial pose) show what doing nothing useful scores. Each is evaluated once on the same
protocol seeds (one run per task and hand, no training seeds), so its overall IQM and mean have no interval; per
task, the Wilson interval is over its episodes. In `leaderboard.csv` their rows have `kind` = `reference` and an
empty `rank`.
"""


def protocol_heading(board: ProtocolBoard) -> str:
    return f"## {board.title}"


OPEN_NOTE = """\
**Open protocol.** {name} is not released yet: until it is, its tasks may still change (a change re-runs the
affected entries), so these entries are provisional{released}.
"""


def status_markdown(board: ProtocolBoard) -> str:
    """What the protocol's status means for its entries (open protocols), or nothing."""
    if board.released:
        return ""
    from handbench.errors import HandbenchError
    from handbench.protocol import latest_released

    try:
        newest = latest_released()
    except HandbenchError:  # no released protocol at all: nothing to point to
        newest = ""
    released = f"; {newest} is the released protocol until then" if newest and newest != board.name else ""
    return OPEN_NOTE.format(name=board.name, released=released) + older_hand_markdown(board)


def older_hand_markdown(board: ProtocolBoard) -> str:
    """The rows of an open protocol made with an older hand version than it now pins (waiting for a re-run)."""
    from handbench.leaderboard.provenance import older_hand_rows

    older: dict[str, dict[str, set[str]]] = {}
    for scores in board.scores:
        for run in scores.entry.runs:
            for task, hand, made, pinned in older_hand_rows(run, board.protocol):
                older.setdefault(f"{hand} v{made}, {board.name} now pins v{pinned}", {}).setdefault(
                    scores.entry_id, set()).add(task)
    return "".join(f"\n**Made with an older hand ({hand}), re-run pending:** "
                   + "; ".join(f"`{entry}` ({', '.join(sorted(tasks))})" for entry, tasks in sorted(entries.items()))
                   + ".\n" for hand, entries in sorted(older.items()))


def coverage_markdown(board: ProtocolBoard) -> str:
    """Which of the protocol's (task, hand) pairs have results at all: partial coverage said plainly."""
    full = protocol_task_set(board.protocol)
    missing = unreported_pairs(list(board.scores), board.protocol)
    if not board.scores or not missing:
        return ""
    return (f"Reported so far: {len(full) - len(missing)} of the {len(full)} task/hand pairs of {board.name}. No "
            f"entry reports {', '.join(f'`{task_label(key)}`' for key in missing)} yet.\n")


def protocol_markdown(board: ProtocolBoard) -> str:
    training_seeds = max((task.training_seeds for task in board.protocol.tasks.values()), default=1)
    parts = [protocol_heading(board) + "\n", PROTOCOL_INTRO.format(training_seeds=training_seeds)]
    parts.extend(text for text in (status_markdown(board), coverage_markdown(board)) if text)
    methods = rank_overall(list(board.scores), board.protocol)
    if methods:
        parts.append(ranking_markdown(board))
        parts.append(f"![{board.name}: success per task and overall IQM, with 95% intervals]"
                     f"({plot_file(board.name)})\n")
    elif board.scores:
        parts.append("No ranked entries yet: see *Submitting* below.\n")
    else:
        parts.append("No entries yet: see *Submitting* below.\n")
    if reference_entries(list(board.scores)):
        parts.append(f"### Reference ({board.name})\n")
        parts.append(README_REFERENCE)
        parts.append(reference_markdown(board.scores, protocol=board.protocol))
    if board.sweep_report:
        parts.append(sweep_report_markdown(board))
    return "\n".join(parts)


SWEEP_REPORT_INTRO = """\
The maintainers' entries above (the baselines and the reference rows) come from
`handbench sweep baselines/sweeps/{name}.toml`. Its report (`handbench sweep baselines/sweeps/{name}.toml --report`)
is not part of the leaderboard's checks: it reads the sweep's ledger, so it also shows runs of rows not complete
yet (fewer than 3 training seeds) and the learning curves (success vs number of demonstrations), which are not
entries.
"""


def sweep_report_markdown(board: ProtocolBoard) -> str:
    """Links to the protocol's reference sweep report and its plots (see :class:`SweepReport`)."""
    report = board.sweep_report
    assert report is not None
    tables = " · ".join(f"[{name}]({report.link}/{name})" for name in report.files if name.endswith(".md"))
    plots = "\n".join(f"![{name}]({report.link}/{name})" for name in report.files if name.endswith(".png"))
    heading, intro = f"### Reference sweep ({board.name})\n", SWEEP_REPORT_INTRO.format(name=board.name)
    return "\n".join((heading, intro, tables + "\n", plots + "\n"))


def readme_markdown(boards: Sequence[ProtocolBoard]) -> str:
    parts = [README_INTRO]
    parts.extend(protocol_markdown(board) for board in boards)
    parts.append(README_COLUMNS)
    return "\n".join(parts)


def task_markdown(board: ProtocolBoard, task: str) -> str:
    """The ranking of one task (all its hands), as a Markdown table."""
    rows = []
    for row in leaderboard_rows(board, task=task):
        success = percent_interval(float(row["success_rate"]), float(row["ci_low"]), float(row["ci_high"]))
        spread = f"{100 * float(row['seed_std']):.1f}" if row["seed_std"] else ""
        rows.append([row["rank"] or REFERENCE_RANK, markdown_text(row["method"]), row["obs_mode"], row["hand"], success,
                     spread, row["training_seeds"], row["mean_return"]])
    return markdown_table(["#", "Method", "Obs", "Hand", "Success", "± seeds", "Seeds", "Mean return"], rows)


# ------------------------------------------------------------------------------------------------- terminal
def rich_table(board: ProtocolBoard, task: str | None = None):
    """A rich Table of one protocol's overall ranking (ranks within task sets), or of one task's ranking."""
    from rich.markup import escape
    from rich.table import Table

    scores = list(board.scores)
    if task is not None:
        table = Table(title=f"handbench leaderboard {board.name}: {task} (success %, Wilson 95%)")
        for column in ("#", "entry", "method", "obs", "hand", "success [95% CI]", "± seeds", "seeds", "mean return"):
            table.add_column(column)
        for row in leaderboard_rows(board, task=task):
            spread = f"{100 * float(row['seed_std']):.1f}" if row["seed_std"] else ""
            table.add_row(row["rank"] or REFERENCE_RANK, row["entry_id"], escape(row["method"]), row["obs_mode"],
                          row["hand"],
                          percent_interval(float(row["success_rate"]), float(row["ci_low"]), float(row["ci_high"])),
                          spread, row["training_seeds"], row["mean_return"])
        return table
    ranked = rank_overall(scores, board.protocol)
    references = reference_entries(scores)
    ranks = overall_ranks(ranked)
    shown = [(str(ranks[s.entry_id]), s) for s in ranked] + [(REFERENCE_RANK, s) for s in references]
    # The ranked entries' tasks only (the references may cover more), and none when they would not fit a terminal
    # (the caption says where to see them).
    keys = all_task_keys(ranked) or all_task_keys(references)
    if len(keys) > TERMINAL_TASK_COLUMNS:
        keys = []
    hidden = len(set(all_task_keys(scores)) - set(keys))
    caption = (f"{hidden} task/hand result column(s) not shown: --task T or --format md" if hidden else None)
    status = f" ({board.status})" if board.status else ""
    notes = [caption] if caption else []
    missing = unreported_pairs(scores, board.protocol)
    if missing:
        notes.append(f"no entry reports {len(missing)} of the {len(protocol_task_set(board.protocol))} task/hand "
                     f"pairs yet: {', '.join(task_label(key) for key in missing)}")
    table = Table(title=f"handbench leaderboard {board.name}{status} (success %, 95% intervals; ranked by IQM "
                        f"within each task set; ref: not ranked)", caption="\n".join(notes) or None)
    for column in ("#", "entry", "method", "obs", "IQM", "mean", *(task_label(key) for key in keys), "seeds",
                   "tasks", "verified"):
        table.add_column(column)
    for rank, entry_scores in shown:
        table.add_row(rank, entry_scores.entry_id, escape(entry_scores.entry.info.method), entry_scores.obs_mode,
                      interval_cell(entry_scores.iqm), interval_cell(entry_scores.mean),
                      *(_task_cell(entry_scores, key) for key in keys), str(entry_scores.entry.training_seeds),
                      coverage_text(entry_scores, board.protocol), verified_cell(entry_scores))
    return table
