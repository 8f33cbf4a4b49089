"""Demo generation: steady-state expert demos/s with 1 and 2 workers, and ``generate-demos`` end to end."""

from __future__ import annotations

import os
import time
from pathlib import Path

from handbench.bench.report import WORKER_SPEEDUP_TARGET, BenchConfig, BenchReport, Figure, first_hand, first_task


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
    task, hand = first_task(config), first_hand(config)
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
