"""Physics (raw ``mj_step`` against ``env.step``, same model and frame skip) and rendering (ms per frame)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time

import numpy as np

from handbench.bench.report import BenchConfig, BenchReport, Figure, first_hand, first_task
from handbench.seeding import stream_rng

ENV_OVER_RAW_TARGET = 0.70  # env.step/s must reach 70% of raw mj_step/s


def _random_actions(env, steps: int, seed: int = 0) -> np.ndarray:
    rng = stream_rng("benchmark", seed)
    space = env.action_space
    return rng.uniform(space.low, space.high, (steps, space.shape[0])).astype(np.float32)


def measure_physics(task: str, hand: str, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` control steps/s: raw ``mj_step(nstep=frame_skip)`` and ``env.step``.

    Both loops start from the same state and apply the same seeded random actions, so they simulate the
    same trajectory; the rounds alternate so a load spike on a shared machine hits both alike.
    """
    import mujoco

    from handbench.registry import make_env

    env = make_env(task, hand, obs_mode="state")
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
    from handbench.registry import make_env

    env = make_env(task, hand, obs_mode="state")
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


def render_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.registry import make_env

    task, hand = first_task(config), first_hand(config)
    sizes = [(64, 64), (128, 128)] if config.quick else [(64, 64), (96, 96), (128, 128), (240, 320)]
    frames = 5 if config.quick else 30
    env = make_env(task, hand, obs_mode="state")
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
