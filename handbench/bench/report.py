"""Figures, the bench's configuration and its report (table, JSON, CSV)."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

SECTIONS = ("physics", "render", "generate", "eval", "rollout", "planning", "inference", "train", "train-pixels",
            "protocol")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "protocol")  # the full protocol takes an hour: asked for only
WORKER_SPEEDUP_TARGET = 1.6  # 2 workers must give >= 1.6x the episodes/s of 1 worker


@dataclass
class Figure:
    """One measured number, with the target it is held to (``limit``) when there is one."""

    section: str
    measure: str
    value: float | None
    unit: str
    limit: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / limit (>= 1 meets the target when higher is better, <= 1 when lower is better)."""
        if self.value is None or self.limit is None:
            return None
        return self.value / self.limit

    @property
    def status(self) -> str:
        if self.value is None:
            return "not available"
        if self.ratio is None:
            return ""
        met = self.ratio >= 1.0 if self.higher_is_better else self.ratio <= 1.0
        return "ok" if met else "MISSED"

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "status": self.status}


@dataclass
class BenchConfig:
    sections: tuple[str, ...] = DEFAULT_SECTIONS
    quick: bool = False
    tasks: tuple[str, ...] | None = None  # None: every task (physics); the first task elsewhere
    hands: tuple[str, ...] | None = None  # None: every hand (physics); hb16 elsewhere
    profile: bool = False  # profile env.step even when the physics target is met
    # rollout section: lane widths compared, the first the batched one (default: the default protocol's, and 1)
    lanes: tuple[int, ...] = field(default_factory=lambda: default_lanes())
    device: str = "cpu"  # rollout section: where the policies run (cpu, cuda)
    policies: tuple[str, ...] | None = None  # rollout section: baselines to measure (None: diffusion, act, ibc)
    checkpoints: int = 3  # protocol section: checkpoints per task and hand (a full protocol has 3)
    rounds: int = 2  # rollout section: alternating rounds per measure, the best of them kept

    @property
    def physics_steps(self) -> int:
        return 50 if self.quick else 300

    @property
    def repeats(self) -> int:
        return 2 if self.quick else 3

    @property
    def episodes(self) -> int:
        return 3 if self.quick else 12


@dataclass
class BenchReport:
    figures: list[Figure] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # measure -> hot path text
    machine: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "figures": [f.row() for f in self.figures], "profiles": self.profiles}


def default_lanes() -> tuple[int, ...]:
    """The default protocol's lane width (hb-v2: 32) and 1, the one-episode-per-query path."""
    from handbench.protocol import load_protocol

    return (load_protocol().lanes, 1)


def machine_info() -> dict[str, Any]:
    import mujoco

    import handbench

    return {"handbench": handbench.__version__, "mujoco": mujoco.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "mujoco_gl": os.environ.get("MUJOCO_GL"),
            "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "load_average_start": load_average()}


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none): how shared the machine was."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def first_task(config: BenchConfig) -> str:
    from handbench.registry import task_names

    return (config.tasks or ("lift-cube" if "lift-cube" in task_names() else task_names()[0],))[0]


def first_hand(config: BenchConfig) -> str:
    return (config.hands or ("hb16",))[0]


def _format_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def print_report(report: BenchReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    loads = [report.machine.get(f"load_average_{when}") for when in ("start", "end")]
    load = ", load average " + " -> ".join(f"{values[0]:g}" for values in loads if values) if any(loads) else ""
    table = Table(title=f"handbench bench ({report.machine.get('cpu_count')} CPU cores, "
                        f"MUJOCO_GL={report.machine.get('mujoco_gl')}{load})")
    for column in ("section", "measure", "value", "unit", "target", "value / target", "status", "note"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "MISSED": "bold red", "not available": "yellow", "": ""}
    for figure in report.figures:
        target = "" if figure.limit is None else f"{'>=' if figure.higher_is_better else '<='} {figure.limit:g}"
        ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}"
        status = f"[{colours[figure.status]}]{figure.status}[/]" if figure.status else ""
        table.add_row(figure.section, figure.measure, _format_value(figure.value), figure.unit, target, ratio,
                      status, figure.note)
    console.print(table)
    for measure, text in report.profiles.items():
        console.print(f"\n[bold]hot path of env.step[/] ({measure}), cProfile by own time:\n{text}")


def write_report(report: BenchReport, out_dir: str | os.PathLike) -> list[str]:
    """``bench.json`` (everything) and ``bench.csv`` (one row per figure) in ``out_dir``, written atomically."""
    import json

    import pandas as pd

    from handbench.atomic import atomic_write_text, ensure_writable_dir

    directory = ensure_writable_dir(out_dir)
    json_path, csv_path = directory / "bench.json", directory / "bench.csv"
    atomic_write_text(json_path, json.dumps(report.as_dict(), indent=2))
    frame = pd.DataFrame([figure.row() for figure in report.figures])
    atomic_write_text(csv_path, frame.to_csv(index=False))
    return [str(json_path), str(csv_path)]


