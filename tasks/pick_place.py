"""pick-place: grasp a cube and carry it to a random 3D goal in the air, then hold it there."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from handbench.tasks.lift_cube import CubeParams

from handbench import rewards, rules
from handbench.expert import Expert, WristMotion
from handbench.hands import yaw_quat
from handbench.rewards import Term
from handbench.scene import (
    DERIVED_MODEL_FIELDS,
    EpisodeMass,
    add_free_box,
    add_goal_marker,
    bind_free_object,
    set_body_mass,
    set_box_half_size,
)
from handbench.task import StepScore, Task

GOAL_TOLERANCE = 0.03  # metres between cube centre and goal
HOLD_STEPS = 5
GRASP_HEIGHT = 0.01  # grasp site above the cube centre at the end of the descent
LOST_DISTANCE = 0.045  # cube this far below / away from the grasp site means the grasp failed
CLOSE_FOLLOW_STEP = 0.008  # metres per step the hand may shift to follow the cube while closing
ARC_HEIGHT = 0.05  # the 'arc' carry passes this far above the goal before coming down onto it
MIN_GOAL_DISTANCE = 0.10  # the goal is never closer than this to the cube's start (no success at reset)
GOAL_LOW = np.array([-0.12, -0.08, 0.07])
GOAL_HIGH = np.array([0.12, 0.08, 0.16])


@dataclass(frozen=True)
class PickPlaceParams(CubeParams):
    """lift-cube's cube (its fields first, in its order) and the goal."""

    goal: np.ndarray  # (3,) m, where the cube centre must be held


class PickPlace(Task):
    name = "pick-place"
    order = 30
    version = 0
    skill = "grasp, transport and place at a 3D goal"
    description = ("Grasp a cube of random pose, size and mass and carry it to a random goal point in the air "
                   "(the translucent green sphere), then hold it there.")
    success_rule = (f"cube centre within {GOAL_TOLERANCE} m of the goal for {HOLD_STEPS} consecutive steps")
    reward_terms = (
        Term("reach", 1.0, "1 - tanh(10 * |grasp site - cube|)"),
        Term("grasp", 1.0, "0.25 per touching digit (max 1)"),
        Term("place", 2.0, "1 - tanh(5 * |cube - goal|)"),
        Term("success", 5.0, "1 on success"),
    )
    max_episode_steps = 100
    state_size = 20  # cube pose (7), velocity (6), half size, goal (3), goal - cube (3)
    params_type = PickPlaceParams
    model_fields = ("geom_size", "geom_rbound", "geom_aabb", "body_mass", "body_inertia")  # cube size and mass

    def build(self, spec: mujoco.MjSpec) -> None:
        add_free_box(spec, "cube", 0.025, rgba=[0.2, 0.45, 0.85, 1], mass=0.1)
        add_goal_marker(spec, "goal", GOAL_TOLERANCE)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        cube = bind_free_object(model, "cube")
        self.cube_body, self.cube_geom, self.cube_qpos, self.cube_qvel = cube.body, cube.geom, cube.qpos, cube.qvel
        self.goal_mocap = model.body_mocapid[model.body("goal").id]

    def sample(self, rng: np.random.Generator) -> PickPlaceParams:
        cube_xy = rng.uniform([-0.10, -0.06], [0.10, 0.06])
        half = float(rng.uniform(0.021, 0.026))
        # Rejection sampling from the same stream keeps the draw a pure function of the seed.
        while True:
            goal = rng.uniform(GOAL_LOW, GOAL_HIGH)
            if np.linalg.norm(goal - [*cube_xy, half]) >= MIN_GOAL_DISTANCE:
                break
        return PickPlaceParams(
            cube_xy=cube_xy,
            cube_yaw=float(rng.uniform(-np.pi / 4, np.pi / 4)),
            cube_half_size=half,
            cube_mass=float(rng.uniform(0.05, 0.15)),
            goal=goal,
        )

    def apply(self, data: mujoco.MjData, params: PickPlaceParams) -> None:
        half = params.cube_half_size
        set_box_half_size(self.model, self.cube_geom, half)
        set_body_mass(self.model, self.cube_body, params.cube_mass)
        data.qpos[self.cube_qpos] = [*params.cube_xy, half, *yaw_quat(params.cube_yaw)]
        data.mocap_pos[self.goal_mocap] = params.goal
        self.goal = np.asarray(params.goal, dtype=np.float64)
        self.hold_steps = 0

    def cube_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.cube_qpos][:3]

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        goal = data.mocap_pos[self.goal_mocap]
        return np.concatenate([data.qpos[self.cube_qpos], data.qvel[self.cube_qvel],
                               [self.model.geom_size[self.cube_geom, 0]], goal, goal - self.cube_position(data)])

    def at_goal(self, data: mujoco.MjData, distance: float) -> bool:
        """Whether this step counts toward the hold window (v1 also asks that the hand holds the cube)."""
        return distance <= GOAL_TOLERANCE

    def score(self, data: mujoco.MjData) -> StepScore:
        cube = self.cube_position(data)
        distance = float(np.linalg.norm(cube - self.goal))
        self.hold_steps = self.hold_steps + 1 if self.at_goal(data, distance) else 0
        success = self.hold_steps >= HOLD_STEPS
        touching = float(np.sum(self.hand.digit_touch(data) > 0.01))
        return self.step_score({
            "reach": rewards.reach(np.linalg.norm(self.hand.grasp_site_pos(data) - cube)),
            "grasp": rewards.contact(touching, 0.25),
            "place": rewards.reach(distance, sharpness=5.0),
            "success": rewards.flag(success),
        }, success)


class PickPlaceV1(rules.HeldObjectTask, PickPlace):
    """hb-v2: the cube must be held by the hand at the goal through the hold window."""

    version = 1
    expert_noise_limit = 0.005  # check-experts --split demo --action-noise (README, 'Action noise')
    success_rule = (f"cube centre within {GOAL_TOLERANCE} m of the goal for {HOLD_STEPS} consecutive steps, "
                    f"{rules.HeldObjectTask.HELD}")

    def at_goal(self, data: mujoco.MjData, distance: float) -> bool:
        return distance <= GOAL_TOLERANCE and self.held(data, self.cube_geom, self.cube_qvel,
                                                        self.cube_position(data))


class PickPlaceV2(EpisodeMass, PickPlaceV1):
    """hb-v2: v1's rule, and the cube's drawn mass and size reach the whole dynamics (``EpisodeMass``): in v1 a
    cube heavier than the compiled mass fell faster than g and a lighter one slower."""

    version = 2
    object_geoms = ("cube_geom",)
    model_fields = PickPlaceV1.model_fields + DERIVED_MODEL_FIELDS


class PickPlaceExpert(Expert["PickPlace"]):
    """Top-down power grasp, lift, carry, hold. Strategy: which pair of cube faces the digits close on
    (front-back or left-right) and the carry route (straight to the goal, or an arc through a point above it).

    The carry is closed-loop on the cube itself: the grasp-site target is the goal minus the cube's
    current offset in the hand, plus an integral correction near the goal, so the cube lands on the goal.
    """

    strategies = ("front-back-direct", "front-back-arc", "left-right-direct", "left-right-arc")

    def on_reset(self) -> None:
        self.motion = WristMotion(self.hand.grasp_site_pos(self.data))
        self.correction = np.zeros(3)
        self.above_goal = False

    def _grasp_yaw(self) -> float:
        yaw = float(self.params.cube_yaw)
        if self.strategy.startswith("left-right"):  # the quarter turn that keeps the wrist yaw small
            yaw += -np.pi / 2 if yaw > 0 else np.pi / 2
        return yaw

    def _carry_target(self, goal: np.ndarray, cube: np.ndarray) -> np.ndarray:
        """Where the cube should head now: the goal, or first the point above it for the arc route."""
        if self.strategy.endswith("arc") and not self.above_goal:
            waypoint = goal + [0, 0, ARC_HEIGHT]
            if np.linalg.norm(waypoint - cube) < 0.02:
                self.above_goal = True
            return waypoint
        return goal

    def plan(self) -> np.ndarray:
        if self.phase == "start":
            self.goto("approach")
        task = self.task
        cube = task.cube_position(self.data).copy()
        rotation = yaw_quat(self._grasp_yaw())
        fingers = self.hand.synergy("open", 0.0)
        if self.phase == "approach":
            remaining = self.motion.toward(cube + [0, 0, 0.09], rotation)
            if remaining < 0.01:
                self.goto("descend")
        elif self.phase == "descend":
            remaining = self.motion.toward(cube + [0, 0, GRASP_HEIGHT], rotation, max_step=0.008)
            if remaining < 0.004 and self.phase_steps > 3:
                self.goto("close")
        elif self.phase == "close":
            fingers = self.hand.synergy("power", min(1.0, (self.phase_steps + 1) / 8))
            # Follow the cube while the digits close, so a cube nudged by the first contact stays centred.
            self.motion.toward(cube + [0, 0, GRASP_HEIGHT], rotation, max_step=CLOSE_FOLLOW_STEP)
            if self.phase_steps >= 10:
                # The cube was squeezed out of the closing hand: open up and grasp it again.
                held = np.linalg.norm(cube - self.hand.grasp_site_pos(self.data)) < LOST_DISTANCE
                self.goto("lift" if held else "approach")
        elif self.phase in ("lift", "carry"):
            fingers = self.hand.synergy("power")
            site = self.hand.grasp_site_pos(self.data)
            if self.phase == "lift":
                self.motion.toward(self.motion.position + [0, 0, 0.2], rotation, max_step=0.01)
                if cube[2] > task.goal[2] - 0.02 or self.phase_steps >= 6:
                    self.goto("carry")
            else:
                target = self._carry_target(task.goal, cube)
                error = target - cube
                if self.above_goal or not self.strategy.endswith("arc"):
                    if np.linalg.norm(error) < 0.05:
                        self.correction += 0.3 * error
                self.motion.toward(target - (cube - site) + self.correction, rotation, max_step=0.012)
            if site[2] - cube[2] > LOST_DISTANCE:  # the cube slipped out: try again
                self.correction[:] = 0
                self.above_goal = False
                self.goto("approach")
        wrist = self.hand.wrist_ik(self.data, self.motion.position, self.motion.rotation)
        return self.hand.action(wrist, fingers)


PickPlace.expert = PickPlaceExpert  # declared once the expert class exists
TASKS = (PickPlace, PickPlaceV1, PickPlaceV2)  # v0: hb-v1; v2: hb-v2 (v1: hb-v2 before 2026-11-30)
