"""Regenerate the leaderboard's derived files from the submissions, and check that they are up to date.

Entries are kept per protocol (each entry names the protocol it was evaluated under and is validated against
that protocol's manifest), never mixed in one table. The newest protocol comes first. An *open* protocol (not
released yet) is marked so: its tasks may still change, so its entries are provisional. An older protocol is shown
as *legacy* (made under the older rules, still valid) once a newer *released* protocol has entries; while the newer
one is still open, the older one stays the current released protocol.

``leaderboard.csv``, ``README.md`` and ``index.html`` must match their regeneration byte for byte. Each
``leaderboard-<protocol>.png`` must carry the fingerprint of the data it would be drawn from now (see ``plots``),
since its pixels depend on the installed matplotlib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from handbench.atomic import atomic_write_bytes, ensure_writable_dir
from handbench.leaderboard.plots import fingerprint, plot_data, plot_file, png_fingerprint, render_png
from handbench.leaderboard.scores import EntryScores, ProtocolBoard, SweepReport, score_entry
from handbench.leaderboard.submissions import entry_protocol_name, load_entries, submissions_dir
from handbench.protocol import load_protocol

CSV_FILE = "leaderboard.csv"
README_FILE = "README.md"
PAGE_FILE = "index.html"
GITKEEP = ".gitkeep"
# A protocol's reference sweep writes its report (`handbench sweep baselines/sweeps/<protocol>.toml --report`) here,
# relative to the project folder, the leaderboard folder's parent.
SWEEP_REPORTS = "baselines/sweeps/{protocol}/report"
REPORT_ORDER = ("results", "learning-curves", "compute")  # the report's files first in this order, then the rest


def default_protocol_name() -> str:
    """The protocol commands use unless told otherwise."""
    from handbench.protocol import DEFAULT_PROTOCOL

    return DEFAULT_PROTOCOL


def find_sweep_report(directory: Path, protocol: str) -> SweepReport | None:
    """The protocol's reference sweep report beside the leaderboard folder ``directory`` (its tables and plots,
    ``*.md`` and ``*.png``), or None where the project has none."""
    relative = SWEEP_REPORTS.format(protocol=protocol)
    folder = directory.resolve().parent / relative
    names = [path.name for path in folder.glob("*") if path.suffix in (".md", ".png") and path.is_file()]
    files = tuple(sorted(names, key=lambda name: (REPORT_ORDER.index(Path(name).stem)
                                                  if Path(name).stem in REPORT_ORDER else len(REPORT_ORDER), name)))
    return SweepReport(f"../{relative}", files) if files else None


def protocol_order(name: str) -> tuple[int, str]:
    """Sort key, newest first: hb-v2 before hb-v1."""
    match = re.search(r"(\d+)$", name)
    return (-(int(match.group(1)) if match else 0), name)


@dataclass(frozen=True)
class Leaderboard:
    """Scored entries of a leaderboard directory, per protocol, newest protocol first (every entry re-validated
    on load against its own protocol)."""

    directory: Path
    boards: list[ProtocolBoard]

    @staticmethod
    def load(directory: str | Path, without: str | None = None, rerun_references: bool = True) -> Leaderboard:
        """Every entry, validated; ``without`` skips one (the entry that a submission replaces). Views of the
        leaderboard pass ``rerun_references=False``: every check but the re-run of the reference rows' sampled
        seeds, which ``submit``, ``--regenerate`` and ``--check`` (CI) always do."""
        entries = load_entries(directory, without=without, rerun_references=rerun_references)
        return Leaderboard.from_scores(directory, [score_entry(entry) for entry in entries])

    @staticmethod
    def from_scores(directory: str | Path, scores: list[EntryScores]) -> Leaderboard:
        by_protocol: dict[str, list[EntryScores]] = {}
        for entry_scores in scores:
            by_protocol.setdefault(entry_protocol_name(entry_scores.entry), []).append(entry_scores)
        # Protocols with entries; an empty leaderboard shows the default protocol's (empty) tables.
        names = set(by_protocol) or {default_protocol_name()}
        ordered = sorted(names, key=protocol_order)
        boards, newer_released_has_entries = [], False
        for name in ordered:
            members, protocol = by_protocol.get(name, []), load_protocol(name)
            boards.append(ProtocolBoard(protocol, members, legacy=newer_released_has_entries,
                                        sweep_report=find_sweep_report(Path(directory), name)))
            newer_released_has_entries = newer_released_has_entries or (bool(members) and protocol.released)
        return Leaderboard(Path(directory), boards)

    @property
    def scores(self) -> list[EntryScores]:
        return [s for board in self.boards for s in board.scores]

    def board(self, name: str | None = None) -> ProtocolBoard:
        """One protocol's board; by default the newest protocol with entries (else the newest)."""
        from handbench.errors import unknown_choice

        if name is None:
            return next((board for board in self.boards if board.scores), self.boards[0])
        for board in self.boards:
            if board.name == name:
                return board
        raise unknown_choice("protocol on the leaderboard", name, [board.name for board in self.boards])

    def text_files(self) -> dict[str, bytes]:
        from handbench.leaderboard.page import page_html
        from handbench.leaderboard.tables import leaderboard_rows, readme_markdown, render_csv

        return {CSV_FILE: render_csv([row for board in self.boards for row in leaderboard_rows(board)]).encode(),
                README_FILE: readme_markdown(self.boards).encode(),
                PAGE_FILE: page_html(self.boards).encode()}

    def plots(self) -> dict[str, dict]:
        """File name -> drawn data, one plot per protocol with entries."""
        return {plot_file(board.name): plot_data(board.scores, board.protocol) for board in self.boards
                if board.scores}


def regenerate(directory: str | Path) -> list[Path]:
    """Rewrite leaderboard.csv, README.md, index.html and the plots (each atomically); returns their paths."""
    return write_generated(Leaderboard.load(directory))


def write_generated(board: Leaderboard) -> list[Path]:
    ensure_writable_dir(submissions_dir(board.directory))
    gitkeep = submissions_dir(board.directory) / GITKEEP
    if not gitkeep.exists():
        gitkeep.write_bytes(b"")
    files = dict(board.text_files())
    for protocol_board in board.boards:
        if protocol_board.scores:
            files[plot_file(protocol_board.name)] = render_png(protocol_board.scores, protocol_board.protocol)
    written = []
    for name, data in files.items():
        atomic_write_bytes(board.directory / name, data)
        written.append(board.directory / name)
    for stale in stale_plots(board):
        stale.unlink()
    return written


def stale_plots(board: Leaderboard) -> list[Path]:
    """Plot files of protocols that have no entries (any more)."""
    keep = set(board.plots())
    return sorted(path for path in board.directory.glob("leaderboard*.png") if path.name not in keep)


def outdated_files(directory: str | Path) -> list[str]:
    """One line per generated file that is missing or does not match the submissions; empty when up to date."""
    board = Leaderboard.load(directory)
    problems = []
    for name, data in board.text_files().items():
        path = board.directory / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_bytes() != data:
            problems.append(f"{path} differs from its regeneration")
    for name, data in board.plots().items():
        plot = board.directory / name
        if not plot.is_file():
            problems.append(f"{plot} is missing")
        elif png_fingerprint(plot) != fingerprint(data):
            problems.append(f"{plot} was drawn from other data than the submissions")
    problems.extend(f"{path} belongs to no protocol with entries" for path in stale_plots(board))
    return problems
