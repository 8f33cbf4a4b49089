"""The leaderboard page, ``leaderboard/index.html``: static HTML that opens from disk without a server.

Generated with the README table (same command, checked up to date the same way), from the same scored entries:
per protocol (newest first; open and legacy protocols marked, with what it means; which of the protocol's task/hand
pairs no entry reports yet), the ranked tables (one per task set, sortable by any column), the intervals plot, one
table per task and hand, the reference rows, and for each task and hand the videos of the same first protocol
seeds for every entry side by side, each marked success or failure from the stored episode results. Videos are the
evaluator's (``handbench eval --videos N``), stored with the entry's run; an entry without videos says so and how
to add them, or that its run cannot be re-derived. Submitter text is HTML-escaped; URLs are validated on
submission. The page's only script sorts tables.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

from handbench.leaderboard.plots import plot_file
from handbench.leaderboard.scores import (
    EntryScores,
    ProtocolBoard,
    TaskKey,
    all_task_keys,
    coverage_text,
    protocol_task_set,
    rank_groups,
    rank_task,
    reference_entries,
    task_label,
    unreported_pairs,
)
from handbench.leaderboard.submissions import RUN_DIR_PREFIX, SUBMISSIONS_DIR, VIDEOS_DIR
from handbench.leaderboard.tables import (
    SWEEP_REPORT_INTRO,
    interval_cell,
    percent_interval,
    status_markdown,
    verified_cell,
)

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
th.sortable { cursor: pointer; } th.sortable::after { content: " \\2195"; color: #999; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.legacy { color: #8a5a00; } .open { color: #1a5fb4; } .note { color: #555; }
.status { border-left: 4px solid #1a5fb4; padding: 0.3em 0.8em; background: #f2f6fc; }
.videos td { text-align: center; } video { width: 160px; height: 120px; background: #000; display: block; }
.ok { color: #137333; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.missing { width: 160px; color: #777; font-size: 12px; }
img.plot { max-width: 100%; border: 1px solid #eee; }
.scroll { overflow-x: auto; }
.tasks { display: flex; flex-wrap: wrap; gap: 0 2em; } .tasks h4 { margin: 0.8em 0 0; }
"""

# Sort a table by the clicked column: numbers (data-sort) numerically, text alphabetically; click again to reverse.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th.sortable").forEach(function (header, column) {
    header.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var ascending = header.getAttribute("data-order") !== "ascending";
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
        var result = (x !== null && y !== null) ? parseFloat(x) - parseFloat(y)
          : a.cells[column].textContent.localeCompare(b.cells[column].textContent);
        return ascending ? result : -result;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      header.setAttribute("data-order", ascending ? "ascending" : "descending");
    });
  });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(text: str, sort: float | None = None, numeric: bool = False) -> str:
    attributes = ""
    if sort is not None and not math.isnan(sort):
        attributes += f' data-sort="{sort:.6f}"'
    if numeric:
        attributes += ' class="num"'
    return f"<td{attributes}>{_e(text)}</td>"


def _sortable_table(header: list[str], rows: list[str]) -> str:
    head = "".join(f'<th class="sortable">{_e(name)}</th>' for name in header)
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>\n' +
            "\n".join(rows) + "\n</tbody></table></div>")


def _links(scores: EntryScores) -> str:
    info = scores.entry.info
    links = [f'<a href="{_e(url)}">{name}</a>' for name, url in
             (("paper", info.paper_url), ("code", info.code_url), ("checkpoints", info.checkpoint_url)) if url]
    return "<td>" + " · ".join(links) + "</td>"


def _method(scores: EntryScores) -> str:
    return (f'<td><a href="{SUBMISSIONS_DIR}/{_e(scores.entry_id)}/">{_e(scores.entry.info.method)}</a></td>')


def _task_cell(scores: EntryScores, key: TaskKey) -> str:
    if key not in scores.tasks:
        return '<td class="num">—</td>'
    score = scores.tasks[key]
    spread = "" if math.isnan(score.seed_std) else f" ±{100 * score.seed_std:.1f}"
    return _cell(percent_interval(score.success_rate, score.ci_low, score.ci_high) + spread, score.success_rate,
                 numeric=True)


def ranking_tables(board: ProtocolBoard) -> str:
    parts = []
    full = protocol_task_set(board.protocol)
    for group in rank_groups(list(board.scores), board.protocol):
        if group.tasks == full:
            title = f"Ranked on the full {board.name} task set ({len(full)} task/hand pairs)"
        else:
            title = f"Ranked on {group.label} ({len(group.tasks)} of the {len(full)} task/hand pairs)"
        header = ["#", "Method", "Obs", "IQM", "Mean", *(task_label(key) for key in group.tasks), "Seeds",
                  "Verified", "Authors", "Links"]
        rows = []
        for rank, s in enumerate(group.entries, 1):
            rows.append("<tr>" + _cell(str(rank), rank, numeric=True) + _method(s) + _cell(s.obs_mode) +
                        _cell(interval_cell(s.iqm), s.iqm.value, numeric=True) +
                        _cell(interval_cell(s.mean), s.mean.value, numeric=True) +
                        "".join(_task_cell(s, key) for key in group.tasks) +
                        _cell(str(s.entry.training_seeds), s.entry.training_seeds, numeric=True) +
                        _cell(verified_cell(s)) + _cell(s.entry.info.authors) + _links(s) + "</tr>")
        parts.append(f"<h3>{_e(title)}</h3>\n" + _sortable_table(header, rows))
    return "\n".join(parts)


def reference_table(board: ProtocolBoard) -> str:
    references = reference_entries(list(board.scores))
    if not references:
        return ""
    keys = all_task_keys(references)
    header = ["Reference", "Policy", "IQM", "Mean", *(task_label(key) for key in keys), "Tasks", "Episodes",
              "Verified"]
    rows = ["<tr>" + _method(s) + _cell(s.entry.runs[0].policy) + _cell(interval_cell(s.iqm), s.iqm.value, True) +
            _cell(interval_cell(s.mean), s.mean.value, True) + "".join(_task_cell(s, key) for key in keys) +
            _cell(coverage_text(s, board.protocol), len(s.tasks), numeric=True) +
            _cell(str(s.episodes), s.episodes, numeric=True) + _cell(verified_cell(s)) + "</tr>" for s in references]
    return ("<h3>Reference rows (not ranked)</h3>\n<p class=note>Reference policies are not trained: the scripted "
            "expert (privileged state; the demonstrations' source) for scale, the random and hold floors for what "
            "doing nothing useful scores.</p>\n" + _sortable_table(header, rows))


def task_tables(board: ProtocolBoard) -> str:
    parts = []
    scores = list(board.scores)
    for key in all_task_keys(scores):
        rows = []
        ranked = rank_task([s for s in scores if not s.reference], key)
        shown = [(str(rank), s) for rank, s in enumerate(ranked, 1)] + [
            ("ref", s) for s in reference_entries(scores, key)]
        for rank, s in shown:
            score = s.tasks[key]
            spread = "" if math.isnan(score.seed_std) else f"{100 * score.seed_std:.1f}"
            rows.append("<tr>" + _cell(rank, float(rank) if rank != "ref" else math.inf, numeric=True) + _method(s) +
                        _cell(s.obs_mode) +
                        _cell(percent_interval(score.success_rate, score.ci_low, score.ci_high), score.success_rate,
                              numeric=True) +
                        _cell(spread, score.seed_std, numeric=True) +
                        _cell(str(score.training_seeds), score.training_seeds, numeric=True) +
                        _cell(f"{score.mean_return:.2f}", score.mean_return, numeric=True) + "</tr>")
        parts.append(f'<div class="task"><h4>{_e(task_label(key))}</h4>\n' + _sortable_table(
            ["#", "Method", "Obs", "Success % [Wilson 95%]", "± seeds", "Seeds", "Mean return"], rows) + "</div>")
    return '<div class="tasks">' + "\n".join(parts) + "</div>"


def video_for(scores: EntryScores, key: TaskKey, seed: int) -> tuple[str | None, bool | None, str]:
    """(page-relative video path or None, the episode's success, the run's folder name) for one entry."""
    run = scores.entry.runs_by_task[key][0]  # the first training seed's run of this task
    index = scores.entry.runs.index(run)
    run_name = f"{RUN_DIR_PREFIX}{index}"
    episodes = run.episodes
    row = episodes[(episodes["task"] == key[0]) & (episodes["hand"] == key[1]) & (episodes["seed"] == seed)]
    success = bool(row["success"].iloc[0]) if not row.empty else None
    outcome = "success" if success else "failure"
    name = f"{key[0]}-{key[1]}-seed{seed}-{outcome}.mp4"
    path = run.source / VIDEOS_DIR / name
    if not path.is_file():
        return None, success, run_name
    return f"{SUBMISSIONS_DIR}/{scores.entry_id}/{run_name}/{VIDEOS_DIR}/{name}", success, run_name


def filmed_seeds(board: ProtocolBoard, key: TaskKey) -> list[int]:
    """The first protocol seeds that at least one entry has a video of (the evaluator films the first N)."""
    seeds = list(board.protocol.task(key[0]).eval_seeds)
    filmed = [seed for seed in seeds[:8] if any(video_for(s, key, seed)[0] for s in board.scores if key in s.tasks)]
    return seeds[: len(filmed)] if filmed else []


def missing_video_note(scores: EntryScores, run_name: str) -> str:
    """Why a run has no video, and how to add one (HTML)."""
    command = (f"handbench leaderboard --verify {scores.entry_id} --run {run_name.removeprefix(RUN_DIR_PREFIX)}")
    if scores.reference:
        return f"no video yet: <code>{_e(command)}</code> re-evaluates the run and adds its videos"
    if run_name in scores.entry.rederivable_runs:
        return (f"no video: the checkpoints are not in the repository; <code>{_e(command)}</code> re-derives the run "
                f"and adds its videos")
    return (f"no video: the checkpoint is not in the repository and the run records no train command, so it cannot "
            f"be re-derived; whoever holds the checkpoint can add them: <code>{_e(command)} --checkpoint PATH</code>")


def video_tables(board: ProtocolBoard) -> str:
    scores = list(board.scores)
    ordered = [s for group in rank_groups(scores, board.protocol) for s in group.entries] + reference_entries(scores)
    parts = []
    for key in all_task_keys(scores):
        seeds = filmed_seeds(board, key)
        if not seeds:
            parts.append(f"<h4>{_e(task_label(key))}</h4>\n<p class=note>No entry has videos of this task yet.</p>")
            continue
        header = "".join(f"<th>seed {seed}</th>" for seed in seeds)
        rows = []
        for s in ordered:
            if key not in s.tasks:
                continue
            cells = []
            for seed in seeds:
                path, success, run_name = video_for(s, key, seed)
                mark = ('<span class="ok">✓ success</span>' if success else '<span class="fail">✗ failure</span>')
                if path is None:
                    cells.append(f'<td><div class="missing">{mark}<br>{missing_video_note(s, run_name)}</div></td>')
                else:
                    cells.append(f'<td><video src="{_e(path)}" controls muted loop playsinline preload="metadata">'
                                 f'</video>{mark}</td>')
            rows.append(f"<tr><td>{_e(s.entry.info.method)}<br><span class=note>{_e(run_name)}</span></td>"
                        + "".join(cells) + "</tr>")
        parts.append(f"<h4>{_e(task_label(key))}</h4>\n<div class=scroll><table class=videos><thead><tr><th>Entry"
                     f"</th>{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")
    return "\n".join(parts)


def status_html(board: ProtocolBoard) -> str:
    """The open protocol's note (what provisional means) and which task/hand pairs no entry reports yet."""
    parts = []
    note = status_markdown(board).replace("**Open protocol.**", "").strip()
    if note:
        parts.append(f'<p class="status"><b>Open protocol.</b> {_e(" ".join(note.split()))}</p>')
    missing = unreported_pairs(list(board.scores), board.protocol)
    if board.scores and missing:
        full = protocol_task_set(board.protocol)
        parts.append(f"<p class=note>Reported so far: {len(full) - len(missing)} of the {len(full)} task/hand pairs of "
                     f"{_e(board.name)}. No entry reports {_e(', '.join(task_label(key) for key in missing))} yet."
                     f"</p>")
    return "\n".join(parts)


def sweep_report_html(board: ProtocolBoard) -> str:
    """The protocol's reference sweep report: links to its tables, its plots inline."""
    report = board.sweep_report
    assert report is not None
    intro = re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(" ".join(SWEEP_REPORT_INTRO.format(name=board.name).split())))
    links = " · ".join(f'<a href="{_e(report.link)}/{_e(name)}">{_e(name)}</a>' for name in report.files
                       if name.endswith(".md"))
    plots = "\n".join(f'<img class="plot" src="{_e(report.link)}/{_e(name)}" alt="{_e(name)}">' for name in report.files
                      if name.endswith(".png"))
    return f"<h3>Reference sweep ({_e(board.name)})</h3>\n<p class=note>{intro}</p>\n<p>{links}</p>\n{plots}"


def protocol_section(board: ProtocolBoard) -> str:
    style = "open" if not board.released else "legacy" if board.legacy else ""
    parts = [f'<section id="{_e(board.name)}"><h2 class="{style}">{_e(board.title)}</h2>']
    if status_html(board):
        parts.append(status_html(board))
    if not board.scores:
        parts.append("<p>No entries yet.</p></section>")
        return "\n".join(parts)
    parts.append("<p class=note>Success rates in %, 95% intervals in brackets. Overall ranks (by IQM) compare only "
                 "entries evaluated on the same task set; per task, every entry reporting the task is ranked. Click "
                 "a column header to sort.</p>")
    if any(not s.reference for s in board.scores):
        parts.append(ranking_tables(board))
        parts.append(f'<img class="plot" src="{_e(plot_file(board.name))}" alt="{_e(board.name)}: success per task '
                     f'and overall IQM with 95% intervals">')
    parts.append(reference_table(board))
    if board.sweep_report:
        parts.append(sweep_report_html(board))
    parts.append("<h3>Per task</h3>\n" + task_tables(board))
    parts.append("<h3>Videos: the same first protocol seeds for every entry</h3>\n<p class=note>Each entry's first "
                 "training seed; success or failure from its stored episode results.</p>\n" + video_tables(board))
    parts.append("</section>")
    return "\n".join(parts)


def page_html(boards: Sequence[ProtocolBoard]) -> str:
    """The page of a leaderboard's protocol boards (newest protocol first)."""
    sections = "\n".join(protocol_section(board) for board in boards)
    contents = " · ".join(f'<a href="#{_e(board.name)}">{_e(board.name)}'
                          f'{" (open)" if not board.released else " (legacy)" if board.legacy else ""}</a>'
                          for board in boards)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>handbench leaderboard</title>
<!-- Generated from submissions/ by `handbench leaderboard --regenerate` (and `handbench submit`); do not edit. -->
<style>{STYLE}</style>
</head>
<body>
<h1>handbench leaderboard</h1>
<p class=note>Protocols, newest first: {contents}. Every number is recomputed from the stored per-episode results
in <code>submissions/</code>; see <a href="README.md">README.md</a> for what the checks guarantee and how to
re-derive an entry (<code>handbench leaderboard --verify ENTRY --run K</code>).</p>
{sections}
<script>{SCRIPT}</script>
</body>
</html>
"""
