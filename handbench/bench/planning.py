"""The in-hand tasks' planning expert: wall and CPU seconds per episode on one core, against a 10 s target."""

from __future__ import annotations

import os
import time

from handbench.bench.report import BenchConfig, BenchReport, Figure

PLANNING_EPISODE_TARGET_S = 10.0  # a planning expert's episode must take <= 10 s on one core


def measure_planning_expert(task: str, hand: str, episodes: int) -> tuple[float, float, float]:
    """(wall s, CPU s, steps) per expert episode, in this process on one thread, on the first demo seeds.

    CPU seconds (``time.process_time``) are what the expert costs on a core of its own; wall seconds also
    count the time other processes on a shared machine took from it.
    """
    from handbench.generate import run_expert_episode
    from handbench.registry import make_env

    env = make_env(task, hand)
    wall = cpu = steps = 0.0
    try:
        for seed in range(episodes):
            tic, cpu_tic = time.perf_counter(), time.process_time()
            episode = run_expert_episode(env, seed, record=False)
            wall += time.perf_counter() - tic
            cpu += time.process_time() - cpu_tic
            steps += len(episode.actions)
    finally:
        env.close()
    return wall / episodes, cpu / episodes, steps / episodes


def planning_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.inhand import InHandTask
    from handbench.registry import get_task_class, task_names

    planned = [name for name in task_names() if issubclass(get_task_class(name), InHandTask)]
    tasks = [name for name in (config.tasks or planned) if name in planned]
    if not tasks:
        report.figures.append(Figure("planning", "planning expert", None, "", note="no planning task selected"))
        return
    episodes = 2 if config.quick else 5
    for task in tasks:
        for hand in config.hands or ("hb16", "shadow"):
            wall, cpu, steps = measure_planning_expert(task, hand, episodes)
            note = (f"{episodes} episodes, {steps:.0f} steps each on average, {1000 * cpu / steps:.0f} ms CPU per "
                    f"step; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            report.figures.append(Figure("planning", f"planning expert wall time per episode, one core: {task} / "
                                         f"{hand}", wall, "s", limit=PLANNING_EPISODE_TARGET_S,
                                         higher_is_better=False, note=note))
            report.figures.append(Figure("planning", f"planning expert CPU time per episode: {task} / {hand}", cpu,
                                         "s", limit=PLANNING_EPISODE_TARGET_S, higher_is_better=False,
                                         note="time.process_time: independent of other processes' load"))
