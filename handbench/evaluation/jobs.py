"""One evaluation episode as a job, and the code that runs it inside a worker.

An episode's outcome depends only on (task version, hand, seed, policy): the env is reset with the
seed, the global RNGs a policy might use (numpy, random, torch) are seeded from it, and the policy is
reset. So results are identical whatever the number of workers or the order of episodes. A policy that
raises or returns a NaN, mis-shaped or out-of-range action fails that episode with the reason in
``error``; the run goes on. So does a physics failure (``info["physics_error"]``, see HandEnv.step).
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from handbench.evaluation.videos import VIDEO_CAMERA, VIDEO_SIZE, encode_mp4

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.evaluation.policies import PolicySource

ACTION_TOLERANCE = 1e-4  # fraction of each actuator's range an action may overshoot (float32 rounding)


@dataclass(frozen=True)
class EpisodeJob:
    task: str
    hand: str
    seed: int
    episode_steps: int
    stop_on_success: bool = True
    record_video: bool = False


@dataclass
class EpisodeOutcome:
    """What a worker sends back: the result row and, for video seeds, the encoded mp4."""

    row: dict[str, Any]
    video: bytes | None = None
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class PolicyFailure(Exception):
    """The policy misbehaved: the episode fails with this message."""


class PhysicsFailure(Exception):
    """The simulation became unstable: the episode fails with this message."""


def seed_global_rngs(seed: int) -> None:
    """Seed the global RNGs a policy may draw from (diffusion noise, dropout), per episode."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def check_action(action: Any, env: HandEnv, step: int) -> np.ndarray:
    try:
        array = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyFailure(f"step {step}: action is not numeric ({exc})") from exc
    space = env.action_space
    if array.shape != space.shape:
        raise PolicyFailure(f"step {step}: action shape {array.shape}, expected {space.shape}")
    if not np.all(np.isfinite(array)):
        raise PolicyFailure(f"step {step}: action contains NaN or inf")
    slack = ACTION_TOLERANCE * (space.high - space.low)
    outside = (array < space.low - slack) | (array > space.high + slack)
    if outside.any():
        index = int(np.argmax(outside))
        raise PolicyFailure(f"step {step}: action[{index}]={array[index]:.4g} outside "
                            f"[{space.low[index]:.4g}, {space.high[index]:.4g}]")
    return array


def run_episode(env: HandEnv, source: PolicySource, job: EpisodeJob) -> EpisodeOutcome:
    """Run one protocol episode; never raises for policy faults (they become the ``error`` column)."""
    start = time.perf_counter()
    physics_time = policy_time = 0.0
    total_return, steps, success, last_success = 0.0, 0, False, False
    time_to_success: int | None = None
    frames: list[np.ndarray] = []
    error = ""
    obs, _ = env.reset(seed=job.seed)
    if job.record_video:
        frames.append(env.render_camera(VIDEO_CAMERA, VIDEO_SIZE))
    try:
        seed_global_rngs(job.seed)
        tic = time.perf_counter()
        try:
            policy = source.policy_for(env, job.seed)
            policy.reset()
        except (Exception, SystemExit) as exc:  # a broken policy fails its episode, not the run (sys.exit too)
            raise PolicyFailure(f"building/resetting the policy raised {type(exc).__name__}: {exc}") from exc
        policy_time += time.perf_counter() - tic
        for step in range(job.episode_steps):
            tic = time.perf_counter()
            try:
                raw = policy.act(obs)
            except (Exception, SystemExit) as exc:
                raise PolicyFailure(f"step {step}: policy raised {type(exc).__name__}: {exc}") from exc
            action = check_action(raw, env, step)
            toc = time.perf_counter()
            obs, reward, terminated, _, info = env.step(action)
            physics_time += time.perf_counter() - toc
            policy_time += toc - tic
            steps = step + 1
            if info.get("physics_error"):
                raise PhysicsFailure(f"step {step}: physics error: {info['physics_error']}")
            total_return += float(reward)
            last_success = bool(info["is_success"])
            if last_success and time_to_success is None:
                time_to_success = steps
                success = True
            if job.record_video:
                frames.append(env.render_camera(VIDEO_CAMERA, VIDEO_SIZE))
            if terminated and job.stop_on_success:
                break
    except (PolicyFailure, PhysicsFailure) as exc:
        error, success, last_success = str(exc).replace("\n", " ")[:500], False, False
        time_to_success = None
    row = {
        "task": job.task, "hand": job.hand, "seed": job.seed,
        "success": success, "success_at_end": last_success, "steps": steps, "return": round(total_return, 6),
        "time_to_success": time_to_success,
        "wall_time": round(time.perf_counter() - start, 4),
        "physics_time": round(physics_time, 4), "policy_time": round(policy_time, 4),
        "error": error,
    }
    video = encode_mp4(frames, fps=1.0 / env.dt) if frames else None
    return EpisodeOutcome(row=row, video=video, frames=len(frames))
