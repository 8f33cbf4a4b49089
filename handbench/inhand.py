"""What the in-hand tasks share: the upturned palm, the wrist-still rule, and their planning expert.

An in-hand episode starts with the wrist rolled half a turn about the axis along the fingers (palm up, the
hand's :attr:`~handbench.hands.HandSpec.palm_up_joint`) and an object resting on the palm. The wrist must stay
at its initial targets: a task's success is void for the episode once any wrist joint leaves its start by
more than a small tolerance. The expert holds the wrist and plans the fingers by predictive sampling over the
task's own cost terms (:mod:`handbench.planning`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import mujoco
import numpy as np

from handbench import rewards, rules
from handbench.expert import Expert
from handbench.hands import get_hand
from handbench.hands.hb16 import FINGER_TORQUE, WRIST_LIMITS
from handbench.planning import CostTerm, PhysicsView, PlannerConfig, PredictiveSampler, total_cost
from handbench.rewards import Term
from handbench.scene import EpisodeMass
from handbench.task import StepScore, Task

PALM_UP_ROLL = np.pi
ROLL_RANGE_MARGIN = 0.2
WRIST_SLIDE_TOLERANCE = 0.01  # m
WRIST_HINGE_TOLERANCE = 0.05  # rad
DROP_TOLERANCE = 0.015  # object centre more than this below its start height: it left the palm
PALM_RADIUS = 0.05  # ... or more than this from its start, horizontally
# The planner's edge term grows once the object is further than this from its start, or this much lower.
SAFE_RADIUS = 0.025  # m
SAFE_DROP = 0.005  # m
FLING_SPEED = 0.5  # m/s: the planner's fling term grows above this object speed
FLING_SPIN = 0.02  # m/s per rad/s: how much the object's angular speed counts in its fling speed
OFFSET_CAP = 0.1  # m: the position terms read the object's offset clipped to this per axis (it is long lost by then)
REACH_CAP = 0.3  # m: ... and the reach term each fingertip's distance clipped to this
FLING_CAP = 10.0  # m/s: ... up to this much above it (a physics failure's absurd speeds keep the reward bounded)
# The in-hand scenes of task version 1 (hb-v2): see StablePhysics.
OBJECT_SOLREF = (0.005, 1.0)  # s, damping ratio: the object's contacts (MuJoCo's default is 0.02 s)
OBJECT_SOLMIX = 1e6  # the object's weight when MuJoCo mixes a contact's solref/solimp: its own values apply
FINGER_NO_LOAD_SPEED = 9.0  # rad/s, as hb16 v1's fingers (FINGER_TORQUE over hb16's finger damping 0.1)
# The expert's retry: no progress (task cost lower by STALL_PROGRESS) in STALL_STEPS control steps -> noise
# x BOOST_NOISE for BOOST_STEPS steps.
STALL_STEPS = 20
STALL_PROGRESS = 0.05
BOOST_NOISE = 2.0
BOOST_STEPS = 10


def object_terms(noun: str) -> tuple[Term, ...]:
    """The reward (and planning cost) terms every in-hand task scores its object with, described with the
    object's ``noun`` ("cube", "block"): keep it near its start (``position``), away from the palm's rim
    (``edge``), not flung (``fling``), and the fingertips on it (``reach``). Their functions are
    :meth:`InHandTask.object_cost_functions`."""
    return (
        Term("position", -4.0, f"{noun}'s horizontal distance from its start plus depth below it (m, at most "
                               f"{OFFSET_CAP:g} each)"),
        Term("edge", -30.0, f"how far the {noun} is past {SAFE_RADIUS * 100:g} cm from its start or "
                            f"{SAFE_DROP * 1000:g} mm below it (m)"),
        Term("fling", -10.0, f"{noun} speed (m/s, plus {FLING_SPIN:g} x its angular speed in rad/s) above "
                             f"{FLING_SPEED:g} m/s, at most {FLING_CAP:g}"),
        Term("reach", -2.0, f"mean distance from the fingertips to the {noun}'s centre (m, each at most "
                            f"{REACH_CAP:g})"),
    )


def hand_of_scene(spec: mujoco.MjSpec):
    """The HandSpec a scene was made for (``handbench.scene.make_scene`` names the model after it)."""
    return get_hand(spec.modelname.removeprefix("handbench-"))


def allow_palm_up(spec: mujoco.MjSpec) -> None:
    """Widen the palm-up joint's range (and its actuator's) in this scene so it can roll half a turn."""
    hand = hand_of_scene(spec)
    joint = spec.joint(hand.palm_up_joint)
    limits = [float(joint.range[0]), PALM_UP_ROLL + ROLL_RANGE_MARGIN]
    joint.range = limits
    spec.actuator(hand.palm_up_actuator).ctrlrange = limits


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (rad, in [0, pi]) of the rotation between unit quaternions ``a`` and ``b``, over leading dims."""
    dot = np.abs(np.sum(np.asarray(a) * np.asarray(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


class InHandTask(rules.BoundedWristTask, Task):
    """Base of the palm-up tasks: one free object (qpos slice ``object_qpos``) on the palm, the wrist still.

    Subclasses build the object, set ``object_qpos``/``object_qvel`` in ``bind``, call :meth:`start` in
    ``apply``, and define :meth:`cost_functions` and :meth:`aligned` (the goal is reached this step). The expert
    is :class:`PlanningExpert` (declared below the class). The
    dense reward and the expert's planning cost are the same terms: every ``reward_terms`` entry named like a
    cost function is that function's value (the weights are negative), plus ``wrist`` and ``success`` flags.
    """

    hold_steps_needed: ClassVar[int] = 5
    # The end of every in-hand task's success rule: what holds for the consecutive steps, then the wrist-still rule.
    STILL_WRIST_RULE: ClassVar[str] = (f"for {hold_steps_needed} consecutive steps; void for the episode once a "
                                       f"wrist joint leaves its start by more than 0.01 m / 0.05 rad")
    min_goal_distance: ClassVar[float]  # rad: how far from the start every goal is, at least
    planner: ClassVar[PlannerConfig] = PlannerConfig()
    WRIST_TERMS: ClassVar[tuple[Term, ...]] = (
        Term("wrist", -1.0, "1 once the wrist moved"),
        Term("success", 5.0, "1 on success"),
    )

    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)
        # Fingertip positions as sensors, so batched rollouts return them for the planner's reach term.
        for finger, site in hand_of_scene(spec).fingertip_sites.items():
            spec.add_sensor(name=f"{finger}_tip_position", type=mujoco.mjtSensor.mjSENS_FRAMEPOS,
                            objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.tip_sensors = np.concatenate([np.arange(3) + model.sensor(f"{finger}_tip_position").adr[0]
                                           for finger in hand.spec.fingers])
        self.roll_index = list(hand.spec.wrist_joints).index(hand.spec.palm_up_joint)
        still = self.still_joints()
        joint_ids = [model.joint(name).id for name in still]
        self.still_qpos = model.jnt_qposadr[joint_ids]
        is_slide = model.jnt_type[joint_ids] == mujoco.mjtJoint.mjJNT_SLIDE
        self.wrist_tolerance = np.where(is_slide, WRIST_SLIDE_TOLERANCE, WRIST_HINGE_TOLERANCE)
        actuated = list(hand.spec.wrist_joints) + list(hand.spec.finger_joints)  # the action layout
        self.still_actuators = np.array([name in still for name in actuated])

    def still_joints(self) -> tuple[str, ...]:
        """The joints the wrist-still rule covers and the expert holds at their start: the wrist's (the arm's)."""
        return tuple(self.hand.spec.wrist_joints)

    def start(self, data: mujoco.MjData, position: np.ndarray, quat: np.ndarray) -> None:
        """Turn the palm up, put the object at ``position`` with orientation ``quat``, reset the counters."""
        hand = self.hand
        wrist = data.qpos[hand.wrist_qpos].copy()
        wrist[self.roll_index] = PALM_UP_ROLL
        data.qpos[hand.wrist_qpos] = wrist
        data.ctrl[: hand.n_wrist] = wrist
        data.qpos[self.object_qpos] = [*position, *quat]
        self.start_position = np.asarray(position, dtype=np.float64).copy()
        self.start_wrist = wrist
        self.start_still = data.qpos[self.still_qpos].copy()
        self.hold_steps = 0
        self.wrist_moved = False

    def palm_rest(self, half_height: float) -> np.ndarray:
        """Where an object of this half height rests on the upturned palm (world frame)."""
        x, y, top = self.hand.spec.palm_up_centre
        return np.array([x, y, top + half_height + 0.0005])

    # ------------------------------------------------------------------ rules
    def on_palm(self, qpos: np.ndarray) -> np.ndarray:
        """The object is still on the palm (over leading dims of ``qpos``)."""
        position = np.asarray(qpos)[..., self.object_qpos][..., :3]
        return ((position[..., 2] > self.start_position[2] - DROP_TOLERANCE)
                & (np.linalg.norm(position[..., :2] - self.start_position[:2], axis=-1) < PALM_RADIUS))

    def wrist_within_tolerance(self, data: mujoco.MjData) -> bool:
        drift = np.abs(data.qpos[self.still_qpos] - self.start_still)
        return bool(np.all(drift <= self.wrist_tolerance))

    def aligned(self, data: mujoco.MjData) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------------ cost terms (reward and planner)
    def cost_functions(self) -> dict[str, Callable[[PhysicsView], np.ndarray]]:
        """name -> unweighted cost over a view's leading dims; each name is also a ``reward_terms`` entry."""
        raise NotImplementedError

    def cost_terms(self) -> tuple[CostTerm, ...]:
        """The planner's cost: the reward terms that have a cost function, with their weights negated."""
        functions = self.cost_functions()
        return tuple(CostTerm(term.name, -term.weight, functions[term.name])
                     for term in self.reward_terms if term.name in functions)

    def object_offset(self, view: PhysicsView) -> np.ndarray:
        """Object position minus its start (m), each axis clipped to +-OFFSET_CAP (so a physics failure's absurd
        positions keep the reward bounded), shape (..., 3)."""
        offset = view.qpos[..., self.object_qpos][..., :3] - self.start_position
        return np.clip(offset, -OFFSET_CAP, OFFSET_CAP)

    def position_error(self, view: PhysicsView) -> np.ndarray:
        """Horizontal distance from the start plus depth below it (m)."""
        offset = self.object_offset(view)
        return np.linalg.norm(offset[..., :2], axis=-1) + np.maximum(-offset[..., 2], 0.0)

    def edge_distance(self, view: PhysicsView) -> np.ndarray:
        """How far (m) the object is past the palm's safe zone: 0 near its start, growing toward the edge."""
        offset = self.object_offset(view)
        return (np.maximum(np.linalg.norm(offset[..., :2], axis=-1) - SAFE_RADIUS, 0.0)
                + np.maximum(-offset[..., 2] - SAFE_DROP, 0.0))

    def fingertip_reach(self, view: PhysicsView) -> np.ndarray:
        """Mean distance (m) from the fingertips to the object's centre, each clipped to REACH_CAP."""
        tips = view.sensordata[..., self.tip_sensors].reshape(*view.sensordata.shape[:-1], -1, 3)
        centre = view.qpos[..., self.object_qpos][..., None, :3]
        return np.minimum(np.linalg.norm(tips - centre, axis=-1), REACH_CAP).mean(axis=-1)

    def object_fling(self, view: PhysicsView) -> np.ndarray:
        """How much faster than FLING_SPEED the object moves (m/s; its angular speed counts 0.02 m/s per rad/s): 0
        in any ordinary manipulation, so it never discourages a push, but a pinch that would fling the object costs."""
        velocity = view.qvel[..., self.object_qvel]
        speed = (np.linalg.norm(velocity[..., :3], axis=-1)
                 + FLING_SPIN * np.linalg.norm(velocity[..., 3:], axis=-1))
        return np.clip(speed - FLING_SPEED, 0.0, FLING_CAP)

    def object_cost_functions(self) -> dict[str, Callable[[PhysicsView], np.ndarray]]:
        """The functions of :func:`object_terms`, by name; a task's :meth:`cost_functions` adds its goal's."""
        return {"position": self.position_error, "edge": self.edge_distance, "fling": self.object_fling,
                "reach": self.fingertip_reach}

    def planner_config(self) -> PlannerConfig:
        """The task's planner settings with the hand's overrides (``HandSpec.planner_overrides``)."""
        return dataclasses.replace(self.planner, **dict(self.hand.spec.planner_overrides))

    def score(self, data: mujoco.MjData) -> StepScore:
        self.wrist_moved = self.wrist_moved or not self.wrist_within_tolerance(data)
        ok = self.aligned(data) and bool(self.on_palm(data.qpos)) and not self.wrist_moved
        self.hold_steps = self.hold_steps + 1 if ok else 0
        success = self.hold_steps >= self.hold_steps_needed
        view = PhysicsView.of_data(data)
        values = {name: float(function(view)) for name, function in self.cost_functions().items()}
        values.update(wrist=rewards.flag(self.wrist_moved), success=rewards.flag(success))
        return self.step_score(values, success)


class StablePhysics(EpisodeMass):
    """Mixin for the in-hand tasks' version 1 (hb-v2): physics that stays plausible when a light object is
    squeezed or spun in the hand. Put it before the task class in the bases; the task names its object's
    collision geoms in ``object_geoms``.

    In version 0 the random floor blew objects up without any MuJoCo warning (issue 12; ``handbench
    check-physics``): (1) MuJoCo's contacts are soft in proportion to the bodies' masses (``solref`` 0.02 s), so a
    30-80 g object pressed between palm and fingers sank 10-20 mm into them and was shot out at 20 m/s by the
    deep box penetration; the object's contacts here are four times stiffer (``OBJECT_SOLREF``, deepest
    penetration of the random floor 3-6 mm instead of 20-57 mm). (2) The ``implicitfast`` integrator leaves
    out the velocity derivative of the Coriolis and gyroscopic forces, so an object spinning at tens of rad/s
    gained speed with no contact at all; ``implicit`` keeps it. (3) Every hand gets hb16 v1's actuator limits
    (finger joints stall at ``FINGER_TORQUE`` with a no-load speed of ``FINGER_NO_LOAD_SPEED``; the wrist,
    the arm, stalls at ``handbench.rules`` bounds with no-load speeds of 1 m/s and pi rad/s): a no-op for hb16
    v1; the Shadow hand's servos (its only version, which the scripted tasks keep) have none, and flicked cubes
    up to 0.83 m. Limits are only ever tightened: damping and force bounds already stronger stay. (4) The
    episode's object mass and size reached only part of the dynamics: MuJoCo keeps a free body's mass matrix from
    compilation (``dof_M0``) and version 0 did not recompute it (``mujoco.mj_setConst``), so a 30-80 g object
    moved as if it weighed the compiled 50 g while gravity pulled on its real mass (it fell at 5.9-15.7 m/s^2),
    and its inertia ignored its size; here its inertia is its box's and the model's constants are recomputed
    (``handbench.scene.EpisodeMass``).
    """


    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)  # type: ignore[misc]
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICIT
        for name in self.object_geoms:
            geom = spec.geom(name)
            geom.solref = list(OBJECT_SOLREF)
            geom.solmix = OBJECT_SOLMIX
        hand = hand_of_scene(spec)
        actuators = {actuator.target: actuator for actuator in spec.actuators}
        for name in hand.wrist_joints:
            joint = spec.joint(name)
            force, speed = WRIST_LIMITS[joint.type]
            _bound(joint, actuators[name], force, speed)
        for name in hand.finger_joints:
            _bound(spec.joint(name), actuators[name], FINGER_TORQUE, FINGER_NO_LOAD_SPEED)



class FittedToHand:
    """Mixin for the in-hand tasks' version 2 (hb-v2): the start, the wrist-still rule and the planner fitted to each
    hand's build (``HandSpec.palm_up_start_offset``, ``palm_joints`` and ``fitted_planner_overrides``). Put it before
    the task class in the bases.

    Versions 0 and 1 start the object at the palm's centre and hold only the arm's joints. The Shadow hand's palm
    ends 7 mm past that point toward the fingers, and its fingers pushed the object 2-3 cm toward the wrist, out of
    their reach; its planner also flexed the hand's own wrist (WRJ1, WRJ0: finger joints in its action layout) by
    up to 1.4 rad, tilting the palm under the object. Here the object starts where the hand's fingers reach it, a
    hand's own wrist joints count as wrist (the expert holds them and the rule voids success once they move), and
    the planner takes the hand's ``fitted_planner_overrides`` on top of its ``planner_overrides``.
    """

    STILL_WRIST_RULE: ClassVar[str] = (f"for {InHandTask.hold_steps_needed} consecutive steps; void for the "
                                       f"episode once a wrist joint (the arm's, or the hand's own wrist where it "
                                       f"has one) leaves its start by more than 0.01 m / 0.05 rad")

    def still_joints(self) -> tuple[str, ...]:
        return tuple(self.hand.spec.wrist_joints) + tuple(self.hand.spec.palm_joints)  # type: ignore[attr-defined]

    def palm_rest(self, half_height: float) -> np.ndarray:
        rest = super().palm_rest(half_height)  # type: ignore[misc]
        rest[:2] += self.hand.spec.palm_up_start_offset  # type: ignore[attr-defined]
        return rest

    def planner_config(self) -> PlannerConfig:
        config = super().planner_config()  # type: ignore[misc]
        return dataclasses.replace(config, **dict(self.hand.spec.fitted_planner_overrides))  # type: ignore[attr-defined]


def _bound(joint: mujoco.MjsJoint, actuator: mujoco.MjsActuator, force: float, speed: float) -> None:
    """Tighten an actuator to at most ``force`` (N or N m) and its joint to at most ``speed`` without load."""
    if not (actuator.forcelimited == mujoco.mjtLimited.mjLIMITED_TRUE and actuator.forcerange[1] <= force):
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-force, force]
    damping = np.array(joint.damping, dtype=np.float64)
    damping[0] = max(damping[0], force / speed)
    joint.damping = damping


class PlanningExpert(Expert[InHandTask]):
    """Holds the wrist at its initial targets and plans the fingers by predictive sampling on the task's cost.

    The noise stream is the expert's own (``Expert.rng``, from the episode seed), so demonstrations are
    reproducible; the planner's thread count does not change them. The planner works on the episode's model
    (``task.model``, sizes and masses as the episode set them) from the live state, built at the first action.
    """

    version = 1  # 1: plans checked on the env's own model before acting (PlannerConfig.verify_steps)

    def on_reset(self) -> None:
        self.sampler: PredictiveSampler | None = None
        self.retry_sampler: PredictiveSampler | None = None
        self.active: PredictiveSampler | None = None
        self.costs: list[float] = []
        self.boost_steps = 0

    def _make_sampler(self, config: PlannerConfig) -> PredictiveSampler:
        task, hand = self.task, self.hand
        free = ~task.still_actuators
        fixed = hand.action(task.start_wrist, hand.synergy("open", 0.0))
        control_dt = task.model.opt.timestep * task.frame_skip
        return PredictiveSampler(task.model, control_dt, free, fixed, task.cost_terms(), config, self.rng)

    def plan(self) -> np.ndarray:
        if self.sampler is None:
            config = self.task.planner_config()
            self.sampler = self._make_sampler(config)
            retry = config.for_retry()
            self.retry_sampler = None if retry is None else self._make_sampler(retry)
        # Retry: when the task's cost has not improved for STALL_STEPS steps, explore with wider noise (and, if the
        # config says so, over a longer horizon) for a while.
        self.costs.append(float(total_cost(self.sampler.terms, PhysicsView.of_data(self.data))))
        if self.boost_steps == 0 and len(self.costs) > STALL_STEPS:
            if min(self.costs[-STALL_STEPS:]) > min(self.costs[:-STALL_STEPS]) - STALL_PROGRESS:
                self.boost_steps = BOOST_STEPS
                self.costs.clear()
        scale = BOOST_NOISE if self.boost_steps else 1.0
        sampler = self.retry_sampler if self.boost_steps and self.retry_sampler is not None else self.sampler
        self.boost_steps = max(self.boost_steps - 1, 0)
        if sampler is not self.active:  # start (or switch planners) from the targets applied now
            sampler.set_plan(self.data.ctrl[~self.task.still_actuators].copy())
            self.active = sampler
        return sampler.act(self.data, noise_scale=scale)


InHandTask.expert = PlanningExpert  # declared once the expert class exists
