"""Regenerate the leaderboard's derived files from the submissions, and check that they are up to date.

``leaderboard.csv`` and ``README.md`` must match their regeneration byte for byte. ``leaderboard.png`` must
carry the fingerprint of the data it would be drawn from now (see ``plots``), since its pixels depend on the
installed matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from handbench.atomic import atomic_write_bytes, ensure_writable_dir
from handbench.leaderboard.plots import fingerprint, plot_data, png_fingerprint, render_png
from handbench.leaderboard.scores import EntryScores, score_entry
from handbench.leaderboard.submissions import load_entries, submissions_dir
from handbench.leaderboard.tables import PLOT_FILE, leaderboard_rows, readme_markdown, render_csv
from handbench.leaderboard.validate import current_protocol
from handbench.protocol import Protocol

CSV_FILE = "leaderboard.csv"
README_FILE = "README.md"
GITKEEP = ".gitkeep"


@dataclass(frozen=True)
class Leaderboard:
    """Scored entries of a leaderboard directory (every entry re-validated on load)."""

    directory: Path
    protocol: Protocol
    scores: list[EntryScores]

    @staticmethod
    def load(directory: str | Path, protocol: Protocol | None = None, without: str | None = None) -> Leaderboard:
        """Every entry, validated; ``without`` skips one (the entry that a submission replaces)."""
        protocol = protocol or current_protocol()
        entries = load_entries(directory, protocol, without)
        return Leaderboard(Path(directory), protocol, [score_entry(entry) for entry in entries])

    def text_files(self) -> dict[str, bytes]:
        training_seeds = max((task.training_seeds for task in self.protocol.tasks.values()), default=1)
        return {CSV_FILE: render_csv(leaderboard_rows(self.scores)).encode(),
                README_FILE: readme_markdown(self.scores, self.protocol.name, training_seeds).encode()}


def regenerate(directory: str | Path, protocol: Protocol | None = None) -> list[Path]:
    """Rewrite leaderboard.csv, README.md and leaderboard.png (each atomically); returns their paths."""
    return write_generated(Leaderboard.load(directory, protocol))


def write_generated(board: Leaderboard) -> list[Path]:
    ensure_writable_dir(submissions_dir(board.directory))
    gitkeep = submissions_dir(board.directory) / GITKEEP
    if not gitkeep.exists():
        gitkeep.write_bytes(b"")
    written = []
    for name, data in {**board.text_files(), PLOT_FILE: render_png(board.scores, board.protocol.name)}.items():
        atomic_write_bytes(board.directory / name, data)
        written.append(board.directory / name)
    return written


def outdated_files(directory: str | Path, protocol: Protocol | None = None) -> list[str]:
    """One line per generated file that is missing or does not match the submissions; empty when up to date."""
    board = Leaderboard.load(directory, protocol)
    problems = []
    for name, data in board.text_files().items():
        path = board.directory / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_bytes() != data:
            problems.append(f"{path} differs from its regeneration")
    plot = board.directory / PLOT_FILE
    if not plot.is_file():
        problems.append(f"{plot} is missing")
    elif png_fingerprint(plot) != fingerprint(plot_data(board.scores, board.protocol.name)):
        problems.append(f"{plot} was drawn from other data than the submissions")
    return problems
