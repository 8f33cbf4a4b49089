"""lift-cube: power grasp a cube and lift it at least 10 cm, then hold it there."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from handbench import rewards, rules
from handbench.expert import Expert, WristMotion
from handbench.hands import yaw_quat
from handbench.rewards import Term
from handbench.scene import (
    DERIVED_MODEL_FIELDS,
    EpisodeMass,
    add_free_box,
    bind_free_object,
    set_body_mass,
    set_box_half_size,
)
from handbench.task import EpisodeParams, StepScore, Task

LIFT_HEIGHT = 0.10
HOLD_STEPS = 10
GRASP_HEIGHT = 0.004  # grasp site this far above the cube centre when the fingers close
CLOSE_STEPS = 8
SETTLE_TOLERANCE = 0.005  # the wrist servo lags the command; close only once the hand is really there
SETTLE_TIMEOUT = 16  # ... or once it has stopped getting closer (it rests on the cube)
APPROACH_ABOVE = 0.09  # the grasp site comes down onto the cube from this high above its grasp height


@dataclass(frozen=True)
class CubeParams(EpisodeParams):
    cube_xy: np.ndarray  # (2,) m, cube centre on the table
    cube_yaw: float  # rad
    cube_half_size: float  # m
    cube_mass: float  # kg


class LiftCube(Task):
    name = "lift-cube"
    order = 20
    version = 0
    skill = "power grasp and lift"
    description = "Grasp a cube of random pose, size and mass and lift it 10 cm above its start."
    success_rule = f"cube centre >= {LIFT_HEIGHT} m above its start for {HOLD_STEPS} consecutive steps"
    reward_terms = (
        Term("reach", 1.0, "1 - tanh(10 * |grasp site - cube|)"),
        Term("grasp", 1.0, "0.5 per touching digit (max 1)"),
        Term("lift", 2.0, f"clip(height gained / {LIFT_HEIGHT}, 0, 1)"),
        Term("success", 5.0, "1 on success"),
    )
    max_episode_steps = 100
    state_size = 14  # cube pose (7), velocity (6), half size
    params_type = CubeParams
    model_fields = ("geom_size", "geom_rbound", "geom_aabb", "body_mass", "body_inertia")  # cube size and mass

    def build(self, spec: mujoco.MjSpec) -> None:
        add_free_box(spec, "cube", 0.025, rgba=[0.85, 0.25, 0.2, 1], mass=0.1)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        cube = bind_free_object(model, "cube")
        self.cube_body, self.cube_geom, self.cube_qpos, self.cube_qvel = cube.body, cube.geom, cube.qpos, cube.qvel

    def sample(self, rng: np.random.Generator) -> CubeParams:
        return CubeParams(
            cube_xy=rng.uniform([-0.10, -0.06], [0.10, 0.08]),
            cube_yaw=float(rng.uniform(-np.pi / 4, np.pi / 4)),
            cube_half_size=float(rng.uniform(0.022, 0.028)),
            cube_mass=float(rng.uniform(0.05, 0.2)),
        )

    def apply(self, data: mujoco.MjData, params: CubeParams) -> None:
        half = params.cube_half_size
        set_box_half_size(self.model, self.cube_geom, half)
        set_body_mass(self.model, self.cube_body, params.cube_mass)
        data.qpos[self.cube_qpos] = [*params.cube_xy, half, *yaw_quat(params.cube_yaw)]
        self.start_height = half
        self.hold_steps = 0

    def cube_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.cube_qpos][:3]

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([data.qpos[self.cube_qpos], data.qvel[self.cube_qvel],
                               [self.model.geom_size[self.cube_geom, 0]]])

    def lifted(self, data: mujoco.MjData, gained: float) -> bool:
        """Whether this step counts toward the hold window (v1 also asks that the hand holds the cube)."""
        return gained >= LIFT_HEIGHT

    def score(self, data: mujoco.MjData) -> StepScore:
        cube = self.cube_position(data)
        gained = cube[2] - self.start_height
        self.hold_steps = self.hold_steps + 1 if self.lifted(data, gained) else 0
        success = self.hold_steps >= HOLD_STEPS
        touching = float(np.sum(self.hand.digit_touch(data) > 0.01))
        return self.step_score({
            "reach": rewards.reach(np.linalg.norm(self.hand.grasp_site_pos(data) - cube)),
            "grasp": rewards.contact(touching, 0.5),
            "lift": rewards.progress(gained, LIFT_HEIGHT),
            "success": rewards.flag(success),
        }, success)


class LiftCubeV1(rules.HeldObjectTask, LiftCube):
    """hb-v2: the cube must be held by the hand through the hold window (a thrown cube does not count)."""

    version = 1
    expert_noise_limit = 0.01  # check-experts --split demo --action-noise (README, 'Action noise')
    success_rule = (f"cube centre >= {LIFT_HEIGHT} m above its start for {HOLD_STEPS} consecutive steps, "
                    f"{rules.HeldObjectTask.HELD}")

    def lifted(self, data: mujoco.MjData, gained: float) -> bool:
        return gained >= LIFT_HEIGHT and self.held(data, self.cube_geom, self.cube_qvel, self.cube_position(data))


class LiftCubeV2(EpisodeMass, LiftCubeV1):
    """hb-v2: v1's rule, and the cube's drawn mass and size reach the whole dynamics (``EpisodeMass``): in v1 a
    cube heavier than the compiled 100 g fell faster than g (a 200 g one at 2 g) and a lighter one slower."""

    version = 2
    object_geoms = ("cube_geom",)
    model_fields = LiftCubeV1.model_fields + DERIVED_MODEL_FIELDS


class LiftCubeExpert(Expert["LiftCube"]):
    """Top-down power grasp. Strategy picks which pair of cube faces the fingers close on."""

    version = 1  # v1: grasps where the hand's power grasp cages the cube (HandSpec.power_grasp_offset)
    strategies = ("grasp-front-back", "grasp-left-right")
    # Hold the cube where the hand's power grasp cages it (HandSpec.power_grasp_offset).
    use_power_grasp_offset = True

    def on_reset(self) -> None:
        self.motion = WristMotion(self.hand.grasp_site_pos(self.data))

    def _grasp_yaw(self) -> float:
        yaw = float(self.params.cube_yaw)
        if self.strategy == "grasp-front-back":
            return yaw
        # A quarter turn either way grasps the same pair of faces; take the one inside the wrist's range.
        return yaw - np.pi / 2 if yaw > 0 else yaw + np.pi / 2

    def _grasp_centre(self, cube: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """Where the grasp site goes (less GRASP_HEIGHT) to close on ``cube``; a hook for derived experts."""
        return self.hand.power_grasp_site(cube, rotation) if self.use_power_grasp_offset else cube

    def _approach_above(self) -> float:
        """How high (m) above the grasp the approach ends and the descent starts; a hook for derived experts."""
        return APPROACH_ABOVE

    def plan(self) -> np.ndarray:
        if self.phase == "start":
            self.goto("approach")
        cube = self.task.cube_position(self.data).copy()
        rotation = yaw_quat(self._grasp_yaw())
        fingers = self.hand.synergy("open", 0.0)
        grasp = self._grasp_centre(cube, rotation) + [0, 0, GRASP_HEIGHT]
        if self.phase == "approach":
            remaining = self.motion.toward(grasp + [0, 0, self._approach_above() - GRASP_HEIGHT], rotation)
            if remaining < 0.01:
                self.goto("descend")
        elif self.phase == "descend":
            remaining = self.motion.toward(grasp, rotation, max_step=0.008)
            settled = np.linalg.norm(self.hand.grasp_site_pos(self.data) - self.motion.position) < SETTLE_TOLERANCE
            if remaining < 0.004 and self.phase_steps > 3 and (settled or self.phase_steps > SETTLE_TIMEOUT):
                self.goto("close")
        elif self.phase == "close":
            fingers = self.hand.synergy("power", min(1.0, (self.phase_steps + 1) / CLOSE_STEPS))
            if self.phase_steps >= CLOSE_STEPS + 2:
                self.goto("lift")
        elif self.phase == "lift":
            fingers = self.hand.synergy("power")
            self.motion.toward(self.motion.position + [0, 0, 0.2], rotation, max_step=0.008)
            if cube[2] < self.motion.position[2] - 0.08:  # the cube slipped out: try again
                self.goto("approach")
        wrist = self.hand.wrist_ik(self.data, self.motion.position, self.motion.rotation)
        return self.hand.action(wrist, fingers)


LiftCube.expert = LiftCubeExpert  # declared once the expert class exists
TASKS = (LiftCube, LiftCubeV1, LiftCubeV2)  # v0: hb-v1; v2: hb-v2 (v1: hb-v2 before 2026-11-30)
