"""Predictive sampling: a planning expert phase for skills a phase machine cannot script (in-hand manipulation).

Every control step the planner perturbs its current plan (a spline of finger targets) with Gaussian noise,
rolls every candidate out on a copy of the model with ``mujoco.rollout`` (batched, in C), scores each
rollout with the task's named cost terms, and keeps the cheapest; the first control of the kept plan is the
action. The plan is then shifted by one control step and warm-starts the next search. This is the
"predictive sampling" planner of MuJoCo MPC (Howell et al., "Predictive Sampling: Real-time Behaviour
Synthesis with MuJoCo", arXiv:2212.00541), written for handbench's Hand interface.

Determinism: the noise comes from a generator the caller seeds from the episode seed, every rollout starts
from the same full state and solver warm start whatever thread runs it, and ties keep the lowest sample
index, so the chosen actions do not depend on the thread count.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import mujoco
import mujoco.rollout
import numpy as np

from handbench.errors import HandbenchError

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS
# A rollout is unstable when MuJoCo reset it (its clock jumps back) or a velocity exceeds this bound.
UNSTABLE_SPEED = 50.0
INTEGRATORS = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "rk4": mujoco.mjtIntegrator.mjINT_RK4,
               "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
               "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}
CONES = {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL, "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC}


@dataclass(frozen=True)
class PhysicsView:
    """Batched simulator quantities a cost term reads: leading dims ``(...)`` then the model's sizes.

    ``qpos`` (..., nq), ``qvel`` (..., nv), ``sensordata`` (..., nsensordata) and ``ctrl`` (..., nu). A live
    ``MjData`` gives leading shape ``()`` (:meth:`of_data`); a batch of rollouts gives (samples, steps).
    """

    qpos: np.ndarray
    qvel: np.ndarray
    sensordata: np.ndarray
    ctrl: np.ndarray

    @classmethod
    def of_data(cls, data: mujoco.MjData) -> PhysicsView:
        return cls(data.qpos, data.qvel, data.sensordata, data.ctrl)


@dataclass(frozen=True)
class CostTerm:
    """One named, weighted term of a task's cost: ``weight * function(view)``, shape ``view``'s leading dims.

    The task's dense reward uses the same terms (negated), so the expert optimizes what the task scores.
    """

    name: str
    weight: float
    function: Callable[[PhysicsView], np.ndarray]

    def __call__(self, view: PhysicsView) -> np.ndarray:
        return self.weight * np.asarray(self.function(view), dtype=np.float64)


def total_cost(terms: Sequence[CostTerm], view: PhysicsView) -> np.ndarray:
    """Sum of the weighted terms, shape ``view``'s leading dims."""
    return sum((term(view) for term in terms), np.zeros(view.qpos.shape[:-1]))


@dataclass(frozen=True)
class PlannerConfig:
    """Predictive-sampling settings; times in seconds, ``noise`` as a fraction of each joint's ctrl span.

    ``control_dt`` is the env's control period; rollouts hold each control for ``control_dt`` of simulated
    time, stepped at ``planning_timestep`` (coarser than the env's physics step, for speed).
    """

    samples: int = 32
    horizon: float = 0.3
    knots: int = 3
    planning_timestep: float = 0.01
    noise: float = 0.15
    threads: int = 0
    replan_every: int = 1  # control steps between searches; in between, the kept plan plays on
    iterations: int = 1  # searches per control step, each around the previous one's best plan
    noise_density: float = 1.0  # chance that a sample perturbs a given actuator (the rest keep the plan's)
    # The planning model's integrator, one of INTEGRATORS; "" keeps the env model's. "implicit" costs more per
    # step than "implicitfast" but stays stable, and predicts the env better, at a coarse planning_timestep.
    integrator: str = ""
    # The planning model's friction cone, one of CONES; "" keeps the env model's. With the in-hand scenes' elliptic
    # cones, contacts were two thirds of a Shadow hand rollout's time; "pyramidal" halves it.
    cone: str = ""
    # False: the planning model's joints have no dry friction (frictionloss), each of which adds a constraint row
    # to every step's solve (the Shadow hand's 0.001 N m on its 30 joints: 30 of about 40 rows).
    frictionloss: bool = True
    # Control steps of the chosen plan replayed on the env's own model (its timestep and integrator) from the
    # live state before acting; a plan that fails there (see PredictiveSampler.fails_in_env) gives way to the
    # next cheapest, up to verify_candidates of them (the cheapest if none passes). 0: no check.
    verify_steps: int = 0
    verify_candidates: int = 8
    # While the expert retries a stalled search (handbench.inhand.PlanningExpert), it may plan over a longer
    # horizon with more knots (a regrasp may not fit in the usual horizon); 0 keeps horizon and knots.
    retry_horizon: float = 0.0
    retry_knots: int = 0

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise HandbenchError(f"planner samples must be >= 2, got {self.samples}")
        if self.knots < 2:
            raise HandbenchError(f"planner knots must be >= 2, got {self.knots}")
        if not 0 < self.planning_timestep <= self.horizon:
            raise HandbenchError(f"planner needs 0 < planning_timestep <= horizon, got {self.planning_timestep} "
                                 f"and {self.horizon}")
        if self.noise < 0:
            raise HandbenchError(f"planner noise must be >= 0, got {self.noise}")
        if self.replan_every < 1:
            raise HandbenchError(f"planner replan_every must be >= 1 control step, got {self.replan_every}")
        if self.iterations < 1:
            raise HandbenchError(f"planner iterations must be >= 1, got {self.iterations}")
        if not 0 < self.noise_density <= 1:
            raise HandbenchError(f"planner noise_density must be in (0, 1], got {self.noise_density}")
        if self.integrator and self.integrator not in INTEGRATORS:
            raise HandbenchError(f"planner integrator must be one of {', '.join(INTEGRATORS)} (or '' for the "
                                 f"model's), got {self.integrator!r}")
        if self.cone and self.cone not in CONES:
            raise HandbenchError(f"planner cone must be one of {', '.join(CONES)} (or '' for the model's), got "
                                 f"{self.cone!r}")
        if self.threads < 0:
            raise HandbenchError(f"planner threads must be >= 0 (0: the calling thread), got {self.threads}")
        if self.verify_steps < 0:
            raise HandbenchError(f"planner verify_steps must be >= 0 (0: no check), got {self.verify_steps}")
        if self.retry_horizon < 0 or self.retry_knots < 0 or (self.retry_knots == 1):
            raise HandbenchError(f"planner retry_horizon must be >= 0 and retry_knots 0 or >= 2, got "
                                 f"{self.retry_horizon} and {self.retry_knots}")
        if self.verify_candidates < 1:
            raise HandbenchError(f"planner verify_candidates must be >= 1, got {self.verify_candidates}")

    def for_retry(self) -> PlannerConfig | None:
        """The settings of the stalled-search retry, or None when it keeps the usual horizon and knots."""
        if not (self.retry_horizon or self.retry_knots):
            return None
        return replace(self, horizon=self.retry_horizon or self.horizon, knots=self.retry_knots or self.knots,
                       retry_horizon=0.0, retry_knots=0)


class PredictiveSampler:
    """Plans finger targets for one episode on a private copy of ``model`` (sizes and masses as reset).

    ``free`` (nu bools) marks the actuators the planner may move; the others stay at ``fixed`` (e.g. the
    wrist at its initial targets). Shapes: ``fixed`` (nu,), actions (nu,), the plan (knots, n_free).
    """

    def __init__(self, model: mujoco.MjModel, control_dt: float, free: np.ndarray, fixed: np.ndarray,
                 terms: Sequence[CostTerm], config: PlannerConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.terms = tuple(terms)
        self.rng = rng
        self.env_model = model  # the env's own model (not copied: it holds the episode's sizes and masses)
        self.frame_skip = max(1, int(round(control_dt / model.opt.timestep)))
        self._check = mujoco.MjData(model)
        self.model = copy.copy(model)
        self.model.opt.timestep = config.planning_timestep
        self.substeps = max(1, int(round(control_dt / config.planning_timestep)))
        self.model.opt.timestep = control_dt / self.substeps
        if config.integrator:
            self.model.opt.integrator = INTEGRATORS[config.integrator]
        if config.cone:
            self.model.opt.cone = CONES[config.cone]
        if not config.frictionloss:
            self.model.dof_frictionloss[:] = 0.0
        self.control_dt = control_dt
        self.steps = max(1, int(round(config.horizon / control_dt)))  # control steps in the horizon
        self.free = np.asarray(free, dtype=bool)
        self.fixed = np.asarray(fixed, dtype=np.float64)
        low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
        self.low, self.high = low[self.free], high[self.free]
        self.sigma = config.noise * (self.high - self.low)
        self.knot_times = np.linspace(0.0, self.steps * control_dt, config.knots)
        self.plan = np.tile(self.fixed[self.free], (config.knots, 1))
        self._datas = [mujoco.MjData(self.model) for _ in range(max(1, config.threads))]
        self._runner = mujoco.rollout.Rollout(nthread=config.threads)
        self._state = np.empty(mujoco.mj_stateSize(model, STATE_SPEC))
        self.last_cost = np.inf
        self.rejected = 0  # chosen plans the env-model check turned down, over the episode
        self._since_search = 0

    def close(self) -> None:
        self._runner.close()

    def set_plan(self, targets: np.ndarray) -> None:
        """Replace the plan by constant targets for the free actuators, shape (n_free,)."""
        self.plan = np.tile(np.clip(targets, self.low, self.high), (self.config.knots, 1))

    def _controls(self, plans: np.ndarray) -> np.ndarray:
        """(samples, knots, n_free) plans -> (samples, steps * substeps, nu) zero-order-hold controls."""
        times = np.arange(self.steps) * self.control_dt
        right = np.clip(np.searchsorted(self.knot_times, times, side="right"), 1, len(self.knot_times) - 1)
        left = right - 1
        span = self.knot_times[right] - self.knot_times[left]
        alpha = ((times - self.knot_times[left]) / span)[None, :, None]
        free = (1 - alpha) * plans[:, left] + alpha * plans[:, right]
        controls = np.broadcast_to(self.fixed, (len(plans), self.steps, len(self.fixed))).copy()
        controls[:, :, self.free] = free
        return np.repeat(controls, self.substeps, axis=1)

    def act(self, data: mujoco.MjData, noise_scale: float = 1.0) -> np.ndarray:
        """Search from the live state in ``data`` (untouched) and return the action (nu,) to apply now.

        ``noise_scale`` widens (or narrows) this search's noise, e.g. to escape a plan that makes no progress."""
        cfg = self.config
        if self._since_search % cfg.replan_every:
            self._since_search += 1
            action = self._controls(self.plan[None])[0, 0].copy()
            self.plan = self._shift(self.plan)
            return action
        self._since_search = 1
        mujoco.mj_getState(self.model, data, self._state, STATE_SPEC)
        warmstart = data.qacc_warmstart[None].copy()
        plan = self.plan
        for _ in range(cfg.iterations):
            noise = self.rng.normal(size=(cfg.samples - 1, *plan.shape)) * (noise_scale * self.sigma)
            if cfg.noise_density < 1:
                noise *= self.rng.random(size=(cfg.samples - 1, 1, plan.shape[1])) < cfg.noise_density
            plans = np.concatenate([plan[None], np.clip(plan[None] + noise, self.low, self.high)])
            controls = self._controls(plans)
            states, sensors = self._runner.rollout(
                self.model, self._datas, self._state[None], controls,
                initial_warmstart=warmstart, control_spec=int(mujoco.mjtState.mjSTATE_CTRL))
            costs = self._score(states, sensors, controls)
            best = self._safest_cheapest(data, costs, controls)
            plan = plans[best]
        self.last_cost = float(costs[best])
        self.plan = self._shift(plan)
        return controls[best, 0].copy()

    def _safest_cheapest(self, data: mujoco.MjData, costs: np.ndarray, controls: np.ndarray) -> int:
        """Index of the cheapest candidate (ties: the lowest index, the current plan first) whose first
        ``verify_steps`` controls do not fail on the env's model; the cheapest one if none of the first
        ``verify_candidates`` passes (or with no check)."""
        order = np.argsort(costs, kind="stable")
        if not self.config.verify_steps:
            return int(order[0])
        for index in order[: self.config.verify_candidates]:
            if not np.isfinite(costs[index]):
                break
            if not self.fails_in_env(data, controls[index, :: self.substeps][: self.config.verify_steps]):
                return int(index)
            self.rejected += 1
        return int(order[0])

    def fails_in_env(self, data: mujoco.MjData, controls: np.ndarray) -> bool:
        """Whether applying ``controls`` (steps, nu), one per control step, from the state in ``data``
        (untouched) on the env's own model ends in a physics failure: MuJoCo resets the simulation (its clock
        jumps back, as on any of its instability warnings), a non-finite state or a speed above UNSTABLE_SPEED.
        The env steps the same model the same way, so this predicts its next steps exactly."""
        check = self._check
        mujoco.mj_copyData(check, self.env_model, data)
        for control in controls:
            before = check.time
            check.ctrl[:] = control
            mujoco.mj_step(self.env_model, check, nstep=self.frame_skip)
            mujoco.mj_forward(self.env_model, check)  # as the env does after every step (solver warm start)
            if (check.time < before or not np.all(np.isfinite(check.qvel))
                    or np.any(np.abs(check.qvel) >= UNSTABLE_SPEED)):
                return True
        return False

    def _score(self, states: np.ndarray, sensors: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Sum of the cost terms at the end of every control step; infinite for an unstable rollout."""
        m = self.model
        ends = states[:, self.substeps - 1:: self.substeps]
        nq, nv = m.nq, m.nv
        view = PhysicsView(qpos=ends[..., 1:1 + nq], qvel=ends[..., 1 + nq:1 + nq + nv],
                           sensordata=sensors[:, self.substeps - 1:: self.substeps],
                           ctrl=controls[:, self.substeps - 1:: self.substeps])
        costs = total_cost(self.terms, view).sum(axis=1)
        expected_time = self._state[0] + np.arange(1, states.shape[1] + 1) * m.opt.timestep
        clock_ok = np.all(np.abs(states[..., 0] - expected_time) < 0.5 * m.opt.timestep, axis=1)
        speed = states[..., 1 + nq:1 + nq + nv]
        finite = np.all(np.isfinite(states), axis=(1, 2)) & np.all(np.abs(speed) < UNSTABLE_SPEED, axis=(1, 2))
        return np.where(clock_ok & finite & np.isfinite(costs), costs, np.inf)

    def _shift(self, plan: np.ndarray) -> np.ndarray:
        """The plan one control step later, the last knot held."""
        times = np.minimum(self.knot_times + self.control_dt, self.knot_times[-1])
        return np.stack([np.array([np.interp(t, self.knot_times, plan[:, j]) for j in range(plan.shape[1])])
                         for t in times])
