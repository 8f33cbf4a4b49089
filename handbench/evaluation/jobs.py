"""Evaluation episodes as jobs, and the rows a worker sends back for them.

An episode's outcome depends only on (task version, hand, seed, policy) and the protocol's rollout
rules (lane width, policy noise; see :mod:`handbench.rollout`), so results are identical whatever the
number of workers or the order of episodes. A policy that raises or returns a NaN, mis-shaped or
out-of-range action fails that episode with the reason in ``error``; the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handbench.evaluation.videos import VIDEO_CAMERA, VIDEO_SIZE
from handbench.rollout import EpisodeRequest, EpisodeTrace

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.evaluation.policies import PolicySource


@dataclass(frozen=True)
class EpisodeJob:
    task: str
    hand: str
    seed: int
    episode_steps: int
    stop_on_success: bool = True
    record_video: bool = False
    task_version: int | None = None  # the version the protocol pins (None: the newest registered)
    hand_version: int | None = None  # the hand version the protocol pins (None: the newest registered)

    def request(self) -> EpisodeRequest:
        video = (VIDEO_CAMERA, VIDEO_SIZE) if self.record_video else None
        return EpisodeRequest(seed=self.seed, max_steps=self.episode_steps, stop_on_success=self.stop_on_success,
                              video=video)


@dataclass
class EpisodeOutcome:
    """What a worker sends back: the result row and, for video seeds, the encoded mp4."""

    row: dict[str, Any]
    video: bytes | None = None
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def outcome_of(job: EpisodeJob, trace: EpisodeTrace, fps: float) -> EpisodeOutcome:
    """The result row of a finished episode (and its video, encoded here in the worker)."""
    from handbench.evaluation.videos import encode_mp4

    row = {
        "task": job.task, "hand": job.hand, "seed": job.seed,
        "success": trace.success, "success_at_end": trace.success_at_end, "steps": trace.steps,
        "return": round(trace.total_return, 6), "time_to_success": trace.time_to_success,
        "wall_time": round(trace.wall_time, 4),
        "physics_time": round(trace.physics_time, 4), "policy_time": round(trace.policy_time, 4),
        "error": trace.error,
    }
    video = encode_mp4(trace.frames, fps=fps) if trace.frames else None
    return EpisodeOutcome(row=row, video=video, frames=len(trace.frames))


def run_episode(env: HandEnv, source: PolicySource, job: EpisodeJob) -> EpisodeOutcome:
    """One job on one env, one episode per query with the policy's fixed noise seed (protocol hb-v1's rules)."""
    from handbench.rollout import run_lanes

    (trace,) = run_lanes([env], source.lane_driver(env, 1, "fixed"), [job.request()])
    return outcome_of(job, trace, fps=1.0 / env.dt)
