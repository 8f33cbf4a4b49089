"""The rollout engine: every episode handbench runs (demos, evaluation, expert checks, gallery, bench) runs here.

``run_lanes`` steps a group of episodes in lockstep, one env per lane, and asks the policy for the
actions of all live lanes in one call per control step; when an episode ends, its lane takes the next
one. A policy with the batched form (:class:`handbench.policy.BatchPolicy`, the four baselines) answers
that call with one batched forward pass; a simple policy (``reset``/``act``) runs one lane.

What an episode's result may depend on (the protocol fixes it):

- ``lanes``: the batch width of every policy query. Batched inference is not batch-size invariant
  (a query alone and the same query as row 0 of a batch differ by ~5e-7 with torch on the CPU), so the
  width is constant for a whole run: idle lanes are padded, never dropped, and a row's output does not
  depend on what the other rows hold. hb-v1 uses width 1, hb-v2 width 32.
- ``policy_noise``: ``"fixed"`` (hb-v1) re-seeds the policy's sampling noise with its fixed seed (0) at
  every episode start; ``"episode"`` (hb-v2) seeds each episode's noise with :func:`policy_noise_seed`
  of its episode seed, a stream of its own.

So results never depend on worker count, scheduling or which lane an episode lands in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from handbench.policy import BatchPolicy, Policy
from handbench.seeding import POLICY_NOISE_MODES, policy_noise_seed, seed_global_rngs

if TYPE_CHECKING:
    from handbench.env import HandEnv

ACTION_TOLERANCE = 1e-4  # fraction of each actuator's range an action may overshoot (float32 rounding)
POLICY_NOISES = POLICY_NOISE_MODES  # "fixed" (hb-v1), "episode" (hb-v2)

# Marks an episode that failed because the simulation became unstable (a failure, not a fault of the run).
PHYSICS_ERROR_MARK = "physics error: "


class PolicyFailure(Exception):
    """The policy misbehaved: the episode fails with this message (the run goes on)."""


def check_action(action: Any, env: HandEnv, step: int) -> np.ndarray:
    """``action`` as float64, or PolicyFailure naming what is wrong (shape, NaN, outside the ctrl range)."""
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


@dataclass(frozen=True)
class EpisodeRequest:
    """One episode to run: its seed, length, and what to keep of it."""

    seed: int
    max_steps: int
    stop_on_success: bool = True  # end the episode when the env terminates (the task succeeded)
    record: bool = False  # keep states, state observations and images (demonstrations); actions, rewards always
    video: tuple[str, tuple[int, int]] | None = None  # (camera, (H, W)): keep a frame per step
    check_actions: bool = True  # fail the episode on a NaN, mis-shaped or out-of-range action


@dataclass
class EpisodeTrace:
    """What happened in one episode. ``policy_time`` is the episode's share of the batched queries (s)."""

    seed: int
    steps: int = 0
    success: bool = False  # succeeded at some step
    success_at_end: bool = False  # is_success at the last step
    time_to_success: int | None = None
    total_return: float = 0.0
    truncated: bool = False
    error: str = ""
    physics_error: str = ""  # the simulation became unstable (info["physics_error"]): the episode failed
    strategy: str = ""
    episode_params: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    physics_time: float = 0.0
    policy_time: float = 0.0
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)  # recorded: the simulator state before each action
    observations: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]] = field(default_factory=list)
    # recorded: (env.state_observation(), camera frames or None) before each action, and after the last one
    final_observation: tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None] | None = None
    final_state: np.ndarray | None = None  # recorded: the simulator state after the last action
    frames: list[np.ndarray] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- drivers
class LaneDriver:
    """How the engine talks to a policy: start an episode in a lane, then one call per step for all lanes."""

    width: int = 1

    def start(self, lane: int, env: HandEnv, seed: int) -> str:
        """Begin an episode; returns the policy's strategy label (or "")."""
        raise NotImplementedError

    def act(self, observations: list[dict[str, Any] | None]) -> list[Any]:
        """One entry per lane: the raw action, an Exception the policy raised, or None for idle lanes."""
        raise NotImplementedError


class BatchDriver(LaneDriver):
    """A :class:`BatchPolicy` queried over a fixed ``width`` of lanes (idle lanes padded by the policy)."""

    def __init__(self, policy: BatchPolicy, width: int, policy_noise: str = "fixed") -> None:
        if width < 1:
            raise ValueError(f"lane width must be >= 1, got {width}")
        if policy_noise not in POLICY_NOISES:
            raise ValueError(f"policy_noise must be one of {POLICY_NOISES}, got {policy_noise!r}")
        self.policy, self.width, self.policy_noise = policy, width, policy_noise

    def start(self, lane: int, env: HandEnv, seed: int) -> str:
        if self.width == 1:  # as one-episode evaluation always did (protocol hb-v1)
            seed_global_rngs(seed)
        self.policy.reset_lane(lane, policy_noise_seed(seed, "episode") if self.policy_noise == "episode" else None)
        return ""

    def act(self, observations: list[dict[str, Any] | None]) -> list[Any]:
        try:
            actions = self.policy.act_batch(observations)
        except (Exception, SystemExit) as exc:  # every live lane fails with it
            return [None if obs is None else exc for obs in observations]
        return [None if obs is None else actions[i] for i, obs in enumerate(observations)]


class EpisodeDriver(LaneDriver):
    """Simple policies, one per lane, built for each episode by ``policy_for(env, seed)`` (e.g. the expert).

    Global RNGs are seeded with the episode seed before the policy is built: a simple policy that draws
    from them is deterministic only at width 1, which is what the engine gives policies without the
    batched form unless the caller knows better (the scripted expert draws from no global RNG).
    """

    def __init__(self, policy_for: Callable[[HandEnv, int], Policy], width: int = 1) -> None:
        self.policy_for, self.width = policy_for, width
        self.policies: list[Policy | None] = [None] * width

    def start(self, lane: int, env: HandEnv, seed: int) -> str:
        seed_global_rngs(seed)
        policy = self.policy_for(env, seed)
        policy.reset()
        self.policies[lane] = policy
        return str(getattr(policy, "strategy", "") or "")

    def act(self, observations: list[dict[str, Any] | None]) -> list[Any]:
        results: list[Any] = []
        for policy, obs in zip(self.policies, observations, strict=True):
            if obs is None or policy is None:
                results.append(None)
                continue
            try:
                results.append(policy.act(obs))
            except (Exception, SystemExit) as exc:
                results.append(exc)
        return results


# ---------------------------------------------------------------------------------------------- engine
@dataclass
class _Running:
    request: EpisodeRequest
    trace: EpisodeTrace
    env: HandEnv
    observation: dict[str, Any]
    started: float


def _start(lane: int, env: HandEnv, driver: LaneDriver, request: EpisodeRequest) -> _Running | EpisodeTrace:
    """Reset ``env`` for ``request`` and start the policy's episode; a finished trace if the policy fails."""
    started = time.perf_counter()
    trace = EpisodeTrace(seed=int(request.seed))
    observation, _ = env.reset(seed=int(request.seed))
    trace.episode_params = env.episode.params.to_attrs()
    if request.video is not None:
        trace.frames.append(env.render_camera(*request.video))
    tic = time.perf_counter()
    try:
        trace.strategy = driver.start(lane, env, int(request.seed))
    except (Exception, SystemExit) as exc:  # a broken policy fails its episode, not the run
        trace.error = _one_line(f"building/resetting the policy raised {type(exc).__name__}: {exc}")
        trace.wall_time = time.perf_counter() - started
        return trace
    trace.policy_time += time.perf_counter() - tic
    return _Running(request, trace, env, observation, started)


def _one_line(text: str) -> str:
    return text.replace("\n", " ")[:500]


def _fail(running: _Running, message: str) -> EpisodeTrace:
    trace = running.trace
    trace.error, trace.success, trace.success_at_end, trace.time_to_success = _one_line(message), False, False, None
    return trace


def run_lanes(envs: Sequence[HandEnv], driver: LaneDriver, requests: Iterable[EpisodeRequest],
              env_threads: int = 1) -> Iterator[EpisodeTrace]:
    """Run every request on ``envs`` (one per lane, ``len(envs) == driver.width``), yielding traces as episodes end.

    Each step, the driver gets one observation per lane (None for a lane without an episode) and returns
    their actions; each live lane's env then steps. An episode ends when ``max_steps`` are done, when the
    env truncates, or when it terminates with ``stop_on_success``. A policy that raises or returns a bad
    action fails its episode with the reason in ``error``; the others go on.

    ``env_threads`` > 1 steps the live lanes' envs in that many threads (MuJoCo releases the GIL in
    ``mj_step``, so the physics of several lanes runs on several cores); each env steps exactly as it would
    alone, and the lanes are then finished and refilled in lane order, so every episode's result is the same
    as with one thread (``tests/test_rollout.py``). Rendering (videos) and recording stay in this thread.
    """
    if env_threads < 1:
        raise ValueError(f"env_threads must be >= 1, got {env_threads}")
    if len(envs) != driver.width:
        raise ValueError(f"{len(envs)} envs for a driver of width {driver.width}")
    pending = iter(requests)
    lanes: list[_Running | None] = [None] * driver.width

    def fill(lane: int) -> Iterator[EpisodeTrace]:
        """Start the next request in ``lane`` (yielding those that fail at once); leave it idle when none is left."""
        lanes[lane] = None
        for request in pending:
            started = _start(lane, envs[lane], driver, request)
            if isinstance(started, EpisodeTrace):
                yield started
                continue
            lanes[lane] = started
            return

    pool = ThreadPoolExecutor(max_workers=env_threads, thread_name_prefix="handbench-lane") if env_threads > 1 else None
    try:
        for lane in range(driver.width):
            yield from fill(lane)
        while any(running is not None for running in lanes):
            observations = [None if running is None else running.observation for running in lanes]
            tic = time.perf_counter()
            actions = driver.act(observations)
            live = sum(running is not None for running in lanes)
            share = (time.perf_counter() - tic) / live
            if pool is None:
                steps = _serial_steps(lanes, actions, share)
            else:
                steps = _threaded_steps(pool, lanes, actions, share)
            for lane, running, finished in steps:
                if finished is not None:
                    finished.wall_time = time.perf_counter() - running.started
                    yield finished
                    yield from fill(lane)
    finally:
        if pool is not None:
            pool.shutdown()


def _serial_steps(lanes: Sequence[_Running | None], actions: Sequence[Any],
                  share: float) -> Iterator[tuple[int, _Running, EpisodeTrace | None]]:
    """(lane, its episode, the trace if it ended) for every live lane in turn: each is stepped only after the
    previous one was finished (and its lane refilled) by the caller."""
    for lane, running in enumerate(lanes):
        if running is not None:
            running.trace.policy_time += share
            yield lane, running, _step(running, actions[lane])


def _threaded_steps(pool: ThreadPoolExecutor, lanes: Sequence[_Running | None], actions: Sequence[Any],
                    share: float) -> Iterator[tuple[int, _Running, EpisodeTrace | None]]:
    """(lane, its episode, the trace if it ended) for every live lane: all checked and recorded in this thread,
    their ``env.step`` calls run in ``pool`` at once, then each booked in lane order."""
    prepared: dict[int, tuple[_Running, Any]] = {}
    for lane, running in enumerate(lanes):
        if running is not None:
            running.trace.policy_time += share
            prepared[lane] = (running, _prepare(running, actions[lane]))
    stepping = {lane: pool.submit(_timed_step, running.env, action)
                for lane, (running, action) in prepared.items() if not isinstance(action, EpisodeTrace)}
    for lane, (running, action) in prepared.items():
        yield lane, running, action if isinstance(action, EpisodeTrace) else _finish_step(running,
                                                                                          stepping[lane].result())


def _step(running: _Running, raw: Any) -> EpisodeTrace | None:
    """Apply one action to a lane; the trace when its episode has ended, else None."""
    action = _prepare(running, raw)
    if isinstance(action, EpisodeTrace):
        return action
    return _finish_step(running, _timed_step(running.env, action))


def _prepare(running: _Running, raw: Any) -> np.ndarray | Any | EpisodeTrace:
    """The checked action to apply (states and observations recorded first), or the failed trace."""
    request, trace, env = running.request, running.trace, running.env
    step = trace.steps
    if isinstance(raw, BaseException):
        return _fail(running, f"step {step}: policy raised {type(raw).__name__}: {raw}")
    if request.check_actions:
        try:
            action = check_action(raw, env, step)
        except PolicyFailure as exc:
            return _fail(running, str(exc))
    else:
        action = raw
    if request.record:
        trace.states.append(env.full_state())
        trace.observations.append((env.state_observation(), running.observation.get("pixels")))
    trace.actions.append(raw)
    return action


def _timed_step(env: HandEnv, action: Any) -> tuple[tuple, float]:
    tic = time.perf_counter()
    result = env.step(action)
    return result, time.perf_counter() - tic


def _finish_step(running: _Running, stepped: tuple[tuple, float]) -> EpisodeTrace | None:
    """Book one env step into the lane's trace; the trace when its episode has ended, else None."""
    (observation, reward, terminated, truncated, info), seconds = stepped
    request, trace, env = running.request, running.trace, running.env
    step = trace.steps
    trace.physics_time += seconds
    running.observation = observation
    trace.steps = step + 1
    trace.rewards.append(float(reward))
    if info.get("physics_error"):  # the state is MuJoCo's reset, not the episode's: it failed here
        trace.physics_error, trace.truncated = str(info["physics_error"]), True
        _record_final(running)
        return _fail(running, f"step {step}: {PHYSICS_ERROR_MARK}{info['physics_error']}")
    trace.total_return += float(reward)
    trace.success_at_end = bool(info["is_success"])
    if trace.success_at_end and trace.time_to_success is None:
        trace.time_to_success, trace.success = trace.steps, True
    if request.video is not None:
        trace.frames.append(env.render_camera(*request.video))
    trace.truncated = bool(truncated)
    if (terminated and request.stop_on_success) or truncated or trace.steps >= request.max_steps:
        _record_final(running)
        return trace
    return None


def _record_final(running: _Running) -> None:
    """Keep the observation and state after the last action (a dataset's ``next_obs`` of its last step)."""
    if running.request.record:
        env = running.env
        running.trace.final_observation = (env.state_observation(), running.observation.get("pixels"))
        running.trace.final_state = env.full_state()


def driver_for(policy: Policy | BatchPolicy, width: int, policy_noise: str = "fixed") -> LaneDriver:
    """The driver of an already built policy: batched when it implements BatchPolicy, else one lane."""
    if isinstance(policy, BatchPolicy):
        return BatchDriver(policy, width, policy_noise)
    return EpisodeDriver(lambda env, seed: policy, 1)


def run_episode(env: HandEnv, policy: Policy | BatchPolicy, request: EpisodeRequest) -> EpisodeTrace:
    """One episode with one policy on one env (width 1, noise seeded as protocol hb-v1)."""
    return next(run_lanes([env], driver_for(policy, 1), [request]))


def lane_dependent_rows(policy: BatchPolicy, observations: Sequence[Any], noise_seeds: Sequence[int]) -> list[int]:
    """The lanes in which one row's action is not bit-identical to the same row queried in lane 0.

    Row 0 (``observations[0]`` with the noise stream ``noise_seeds[0]``) is moved through every lane of a query of
    width ``len(observations)``, the other rows, each with its own stream, filling the remaining lanes in order.
    An empty list means that at this width, on this machine, an episode's result cannot depend on the lane the
    grouping of episodes puts it in: what a protocol's width needs (see the module docstring). Costs one query of
    the full width per lane. Raises ValueError when the two sequences differ in length."""
    if len(observations) != len(noise_seeds):
        raise ValueError(f"{len(observations)} observations but {len(noise_seeds)} noise seeds")
    width = len(observations)
    actions = []
    for lane in range(width):
        order = [*range(1, lane + 1), 0, *range(lane + 1, width)]  # indices into observations, lane by lane
        for position, index in enumerate(order):
            policy.reset_lane(position, noise_seed=noise_seeds[index])
        actions.append(np.asarray(policy.act_batch([observations[index] for index in order])[lane]))
    return [lane for lane in range(width) if not np.array_equal(actions[lane], actions[0])]
