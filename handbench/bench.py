"""``handbench bench``: measured speed of every stage, each against its target where one exists.

Sections: ``physics`` (raw ``mj_step`` against ``env.step`` in state mode, same model and frame skip),
``render`` (ms per frame per image size), ``generate`` (expert demos/s with 1 and 2 Ray workers),
``eval`` (evaluation episodes/s with 1 and 2 workers), ``inference`` (ms per action per baseline, CPU,
batch 1) and ``train`` (optimizer steps/s per baseline). A section whose module is missing is reported
as "not available" instead of failing the run. Nothing here is hard-coded: every figure is measured.
"""

from __future__ import annotations

import cProfile
import importlib
import importlib.util
import io
import os
import platform
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from handbench.errors import HandbenchError

SECTIONS = ("physics", "render", "generate", "eval", "inference", "train")
ENV_OVER_RAW_TARGET = 0.70  # env.step/s must reach 70% of raw mj_step/s
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
    sections: tuple[str, ...] = SECTIONS
    quick: bool = False
    tasks: tuple[str, ...] | None = None  # None: every task (physics); the first task elsewhere
    hands: tuple[str, ...] | None = None  # None: every hand (physics); hb16 elsewhere
    profile: bool = False  # profile env.step even when the physics target is met

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


def machine_info() -> dict[str, Any]:
    import mujoco

    import handbench

    return {"handbench": handbench.__version__, "mujoco": mujoco.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "mujoco_gl": os.environ.get("MUJOCO_GL"),
            "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}


def not_available(section: str, what: str, reason: str) -> Figure:
    return Figure(section, what, None, "", note=f"not available: {reason}")


# ---------------------------------------------------------------------------------------------- physics
def _random_actions(env, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = env.action_space
    return rng.uniform(space.low, space.high, (steps, space.shape[0])).astype(np.float32)


def measure_physics(task: str, hand: str, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` control steps/s: raw ``mj_step(nstep=frame_skip)`` and ``env.step``.

    Both loops start from the same state and apply the same seeded random actions, so they simulate the
    same trajectory; the rounds alternate so a load spike on a shared machine hits both alike.
    """
    import mujoco

    from handbench.env import HandEnv

    env = HandEnv(task, hand, obs_mode="state")
    try:
        env.reset(seed=0)
        start = env.full_state()
        actions = _random_actions(env, steps)
        model, frame_skip = env.model, env.frame_skip
        data = mujoco.MjData(model)
        raw_best = env_best = float("inf")
        for _ in range(repeats):
            mujoco.mj_setState(model, data, start, mujoco.mjtState.mjSTATE_INTEGRATION)
            tic = time.perf_counter()
            for action in actions:
                data.ctrl[:] = action
                mujoco.mj_step(model, data, nstep=frame_skip)
            raw_best = min(raw_best, time.perf_counter() - tic)
            env.set_full_state(start)
            tic = time.perf_counter()
            for action in actions:
                env.step(action)
            env_best = min(env_best, time.perf_counter() - tic)
        return steps / raw_best, steps / env_best
    finally:
        env.close()


def profile_env_step(task: str, hand: str, steps: int, top: int = 12) -> str:
    """cProfile of an ``env.step`` loop: the functions where the time goes, by own time."""
    from handbench.env import HandEnv

    env = HandEnv(task, hand, obs_mode="state")
    env.reset(seed=0)
    actions = _random_actions(env, steps)
    profiler = cProfile.Profile()
    profiler.enable()
    for action in actions:
        env.step(action)
    profiler.disable()
    env.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:])


def physics_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.hands import HANDS
    from handbench.registry import task_names

    for task in config.tasks or tuple(task_names()):
        for hand in config.hands or tuple(HANDS):
            raw, env = measure_physics(task, hand, config.physics_steps, config.repeats)
            label = f"{task} / {hand}"
            report.figures.append(Figure("physics", f"raw mj_step x frame_skip: {label}", raw, "steps/s"))
            report.figures.append(Figure("physics", f"env.step (state): {label}", env, "steps/s"))
            share = Figure("physics", f"env / raw: {label}", env / raw, "fraction", limit=ENV_OVER_RAW_TARGET)
            report.figures.append(share)
            if share.status == "MISSED" or config.profile:
                report.profiles[share.measure] = profile_env_step(task, hand, config.physics_steps)


# ---------------------------------------------------------------------------------------------- render
def render_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.env import HandEnv

    task, hand = _first_task(config), _first_hand(config)
    sizes = [(64, 64), (128, 128)] if config.quick else [(64, 64), (96, 96), (128, 128), (240, 320)]
    frames = 5 if config.quick else 30
    env = HandEnv(task, hand, obs_mode="state")
    try:
        env.reset(seed=0)
        for size in sizes:
            env.render_camera("overview", size)  # create the GL context and renderer once
            tic = time.perf_counter()
            for _ in range(frames):
                env.render_camera("overview", size)
            ms = 1000 * (time.perf_counter() - tic) / frames
            report.figures.append(Figure("render", f"overview camera {size[0]}x{size[1]}: {task} / {hand}", ms,
                                         "ms/frame", higher_is_better=False,
                                         note=f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}"))
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------- generate
def measure_generation(task: str, hand: str, workers: int, episodes: int) -> float:
    """Steady-state expert demos/s through generate-demos' worker pool (Ray start and warm-up excluded)."""
    from handbench.generate import EnvConfig, ExpertRunner
    from handbench.parallel import WorkerPool

    env_config = EnvConfig(task, hand)
    with WorkerPool(ExpertRunner, (), workers, workers + episodes) as pool:
        list(pool.map_unordered("record", iter([(env_config, seed, 0.0) for seed in range(workers)])))
        seeds = range(workers, workers + episodes)
        tic = time.perf_counter()
        done = list(pool.map_unordered("record", iter([(env_config, seed, 0.0) for seed in seeds])))
        elapsed = time.perf_counter() - tic
    return len(done) / elapsed


def measure_generate_demos(task: str, hand: str, workers: int, demos: int) -> float:
    """Wall seconds of a whole ``generate-demos`` run (Ray start, episode files, dataset assembly)."""
    import tempfile

    from handbench.generate import EnvConfig, GenerateConfig, generate_demos

    with tempfile.TemporaryDirectory() as directory:
        config = GenerateConfig(EnvConfig(task, hand), demos, workers=workers, out=Path(directory) / "demos.hdf5",
                                progress=False)
        tic = time.perf_counter()
        generate_demos(config)
        return time.perf_counter() - tic


def generate_section(config: BenchConfig, report: BenchReport) -> None:
    if importlib.util.find_spec("handbench.generate") is None:
        report.figures.append(not_available("generate", "demo generation", "handbench.generate is missing"))
        return
    task, hand = _first_task(config), _first_hand(config)
    rates = {}
    for workers in (1, 2):
        rates[workers] = measure_generation(task, hand, workers, 3 * config.episodes * workers)
        report.figures.append(Figure("generate", f"expert demos, {workers} worker(s): {task} / {hand}",
                                     rates[workers], "episodes/s", note="steady state, Ray start excluded"))
    report.figures.append(Figure("generate", "speed-up, 2 workers over 1", rates[2] / rates[1], "x",
                                 limit=WORKER_SPEEDUP_TARGET, note=f"{os.cpu_count()} CPU cores on this machine"))
    demos = 5 * config.episodes
    for workers in (0, 1, 2):
        seconds = measure_generate_demos(task, hand, workers, demos)
        report.figures.append(Figure("generate", f"generate-demos end to end, {demos} demos, {workers} worker(s)",
                                     demos / seconds, "demos/s", note="Ray start included" if workers else
                                     "in this process, no Ray"))


# ---------------------------------------------------------------------------------------------- eval
def eval_section(config: BenchConfig, report: BenchReport) -> None:
    try:
        from handbench.evaluation.bench import measure_eval_throughput
    except ImportError as exc:
        report.figures.append(not_available("eval", "evaluation", f"handbench.evaluation.bench ({exc})"))
        return
    task, hand = _first_task(config), _first_hand(config)
    result = measure_eval_throughput(task=task, hand=hand, episodes=config.episodes * 2, worker_counts=(1, 2))
    label = f"{task} / {hand}, {result.policy}"
    report.figures.append(Figure("eval", f"in-process: {label}", result.in_process_episodes_per_s, "episodes/s"))
    report.figures.append(Figure("eval", "evaluator overhead beyond physics and policy",
                                 result.overhead_ms_per_episode, "ms/episode", higher_is_better=False))
    steady = result.ray_steady_episodes_per_s or result.ray_episodes_per_s
    for workers in sorted(steady):
        report.figures.append(Figure("eval", f"{workers} Ray worker(s): {label}", steady[workers], "episodes/s",
                                     note="steady state (after each actor's first episode)"))
    if 1 in steady and 2 in steady:
        report.figures.append(Figure("eval", "speed-up, 2 workers over 1", steady[2] / steady[1], "x",
                                     limit=WORKER_SPEEDUP_TARGET, note=f"{os.cpu_count()} CPU cores on this machine"))


# ---------------------------------------------------------------------------------------------- baselines
def _baseline_timing(section: str, function_name: str) -> Callable[..., Any] | str:
    """The training package's timing function, or the reason it is not available.

    Expected interface: ``handbench.training.timing.inference_ms_per_action(policy, quick=False)``
    (CPU, batch 1, ms per ``act`` call averaged over an episode) and
    ``handbench.training.timing.train_steps_per_s(policy, quick=False)`` (optimizer steps/s).
    """
    try:
        module = importlib.import_module("handbench.training.timing")
    except ImportError as exc:
        return f"handbench.training.timing is missing ({exc})"
    function = getattr(module, function_name, None)
    if function is None:
        return f"handbench.training.timing has no {function_name}()"
    return function


def _baseline_names() -> list[str]:
    from handbench.baselines import BASELINES

    return list(BASELINES)


# The bounds on one model query at batch 1 on the reference 2-core CPU (BC has none).
INFERENCE_LIMITS_MS = {"act": 5.0, "diffusion": 50.0, "ibc": 50.0}


def _baseline_section(section: str, function_name: str, config: BenchConfig, report: BenchReport,
                      figure: Callable[[str, float], Figure]) -> None:
    """One figure per baseline from a timing function of handbench.training.timing."""
    timing = _baseline_timing(section, function_name)
    if isinstance(timing, str):
        report.figures.append(not_available(section, f"{section} per baseline", timing))
        return
    for policy in _baseline_names():
        try:
            value = float(timing(policy, quick=config.quick))
        except (HandbenchError, NotImplementedError) as exc:
            report.figures.append(not_available(section, f"{policy}: CPU", str(exc)))
            continue
        report.figures.append(figure(policy, value))


def inference_section(config: BenchConfig, report: BenchReport) -> None:
    _baseline_section("inference", "inference_ms_per_action", config, report, lambda policy, ms: Figure(
        "inference", f"{policy}: CPU, batch 1, one model query", ms, "ms/action",
        limit=INFERENCE_LIMITS_MS.get(policy), higher_is_better=False))


def train_section(config: BenchConfig, report: BenchReport) -> None:
    _baseline_section("train", "train_steps_per_s", config, report,
                      lambda policy, rate: Figure("train", f"{policy}: CPU", rate, "steps/s"))


# ---------------------------------------------------------------------------------------------- driver
def _first_task(config: BenchConfig) -> str:
    from handbench.registry import task_names

    return (config.tasks or ("lift-cube" if "lift-cube" in task_names() else task_names()[0],))[0]


def _first_hand(config: BenchConfig) -> str:
    return (config.hands or ("hb16",))[0]


SECTION_RUNNERS: dict[str, Callable[[BenchConfig, BenchReport], None]] = {
    "physics": physics_section, "render": render_section, "generate": generate_section, "eval": eval_section,
    "inference": inference_section, "train": train_section,
}


def parse_sections(text: str | None) -> tuple[str, ...]:
    if not text:
        return SECTIONS
    sections = tuple(part.strip() for part in text.split(",") if part.strip())
    for section in sections:
        if section not in SECTIONS:
            raise HandbenchError(f"unknown bench section {section!r}; valid: {', '.join(SECTIONS)}")
    return sections


def run_bench(config: BenchConfig, on_section: Callable[[str], None] | None = None) -> BenchReport:
    """Run the selected sections in order. A section that crashes is reported, and the others still run."""
    report = BenchReport(machine=machine_info())
    for section in config.sections:
        if on_section:
            on_section(section)
        try:
            SECTION_RUNNERS[section](config, report)
        except HandbenchError:
            raise
        except Exception as exc:  # one broken stage must not hide the figures of the others
            report.figures.append(not_available(section, section, f"{type(exc).__name__}: {str(exc)[:160]}"))
    return report


def _format_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def print_report(report: BenchReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    table = Table(title=f"handbench bench ({report.machine.get('cpu_count')} CPU cores, "
                        f"MUJOCO_GL={report.machine.get('mujoco_gl')})")
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


def validate_names(tasks: Sequence[str] | None, hands: Sequence[str] | None) -> None:
    from handbench.errors import unknown_choice
    from handbench.hands import HANDS
    from handbench.registry import get_task_class

    for task in tasks or ():
        get_task_class(task)
    for hand in hands or ():
        if hand not in HANDS:
            raise unknown_choice("hand", hand, HANDS)
