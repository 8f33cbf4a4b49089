"""reorient-cube: turn a cube resting on the upturned palm to a goal orientation with the fingers, wrist still."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from handbench.hands import axis_angle_quat, yaw_quat
from handbench.inhand import (
    FittedToHand,
    InHandTask,
    StablePhysics,
    allow_palm_up,
    object_terms,
    quat_angle,
    quat_multiply,
)
from handbench.planning import PhysicsView, PlannerConfig
from handbench.rewards import Term
from handbench.scene import DERIVED_MODEL_FIELDS, bind_free_object, set_body_mass, set_box_half_size
from handbench.task import EpisodeParams

ORIENTATION_TOLERANCE = 0.4  # rad
# A goal is the start turned a quarter turn about one of these world axes (plus a small random tilt); the
# cube's faces are coloured, so every one of the 24 face-up/yaw combinations is a different orientation.
GOAL_AXES = {"yaw+": (0, 0, 1), "yaw-": (0, 0, -1)}
FACE_COLOURS = ((0.85, 0.2, 0.2), (0.2, 0.7, 0.25), (0.2, 0.35, 0.85), (0.95, 0.8, 0.15), (0.9, 0.9, 0.9),
                (0.55, 0.25, 0.7))
GOAL_MARKER_OFFSET = (-0.12, 0.0, 0.0)  # the translucent goal cube floats beside the hand


@dataclass(frozen=True)
class ReorientCubeParams(EpisodeParams):
    cube_offset: np.ndarray  # (2,) m, the cube's start beside the palm's centre
    cube_half_size: float  # m
    cube_mass: float  # kg
    initial_yaw: float  # rad
    goal_axis: str  # a key of GOAL_AXES
    goal_angle: float  # rad, the turn from the start to the goal


class ReorientCube(InHandTask):
    name = "reorient-cube"
    order = 70
    version = 0
    skill = "in-hand manipulation (cube reorientation, wrist still)"
    description = ("A cube with coloured faces rests on the upturned palm; turn it with the fingers to the goal "
                   "orientation (a quarter turn away, shown by the translucent cube beside the hand), keeping "
                   "it on the palm and the wrist still.")
    success_rule = (f"cube orientation within {ORIENTATION_TOLERANCE} rad of the goal, cube on the palm, "
                    f"{InHandTask.STILL_WRIST_RULE}")
    reward_terms = (
        Term("orientation", -1.0, "angle from the cube's orientation to the goal (rad)"),
        *object_terms("cube"),
        *InHandTask.WRIST_TERMS,
    )
    max_episode_steps = 150
    state_size = 19  # cube pose (7), velocity (6), goal quaternion (4), angle to the goal, half size
    params_type = ReorientCubeParams
    model_fields = ("geom_size", "geom_rbound", "geom_aabb", "body_mass", "body_inertia")  # cube size and mass
    min_goal_distance = np.pi / 2  # rad
    planner = PlannerConfig(samples=32, horizon=0.3, knots=3, planning_timestep=0.01, noise=0.2, integrator="implicit",
                             verify_steps=2)

    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)
        allow_palm_up(spec)
        body = spec.worldbody.add_body(name="cube", pos=[0, 0, 0.5])
        body.add_freejoint(name="cube_joint")
        body.add_geom(name="cube_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.024] * 3, rgba=[0.8, 0.8, 0.8, 1],
                      mass=0.05, friction=[1.0, 0.01, 0.001], condim=4)
        body.add_site(name="cube_site", size=[0.005] * 3, rgba=[0, 0, 0, 0])
        goal = spec.worldbody.add_body(name="cube_goal", mocap=True, pos=[0, 0, 0.5])
        goal.add_geom(name="cube_goal_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.024] * 3,
                      rgba=[0.8, 0.8, 0.8, 0.35], contype=0, conaffinity=0, group=1)
        for parent, alpha in ((body, 1.0), (goal, 0.4)):
            for axis in range(3):
                for sign, colour in ((1, FACE_COLOURS[2 * axis]), (-1, FACE_COLOURS[2 * axis + 1])):
                    pos = [0.0, 0.0, 0.0]
                    pos[axis] = sign * 0.0242
                    size = [0.018, 0.018, 0.018]
                    size[axis] = 0.0003
                    parent.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=pos, size=size, rgba=[*colour, alpha],
                                    contype=0, conaffinity=0, mass=0.0, group=1 if alpha < 1 else 0)
        spec.worldbody.add_camera(name="palm", pos=[0.0, -0.03, 0.62], xyaxes=[1, 0, 0, 0, 1, 0], fovy=30)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        cube = bind_free_object(model, "cube")
        self.cube_body, self.cube_geom = cube.body, cube.geom
        self.object_qpos, self.object_qvel = cube.qpos, cube.qvel
        self.goal_geom = model.geom("cube_goal_geom").id
        self.goal_mocap = model.body_mocapid[model.body("cube_goal").id]

    def sample(self, rng: np.random.Generator) -> ReorientCubeParams:
        axis = sorted(GOAL_AXES)[int(rng.integers(len(GOAL_AXES)))]
        return ReorientCubeParams(
            cube_offset=rng.uniform(-0.004, 0.004, size=2),
            cube_half_size=float(rng.uniform(0.022, 0.026)),
            cube_mass=float(rng.uniform(0.03, 0.08)),
            initial_yaw=float(rng.uniform(-0.2, 0.2)),
            goal_axis=axis,
            goal_angle=float(rng.uniform(np.pi / 2, np.pi / 2 + 0.2)),
        )

    def apply(self, data: mujoco.MjData, params: ReorientCubeParams) -> None:
        half = params.cube_half_size
        set_box_half_size(self.model, self.cube_geom, half)
        set_box_half_size(self.model, self.goal_geom, half)
        set_body_mass(self.model, self.cube_body, params.cube_mass)
        start = self.palm_rest(half)
        start[:2] += params.cube_offset
        quat = yaw_quat(params.initial_yaw)
        self.start(data, start, quat)
        turn = axis_angle_quat(np.array(GOAL_AXES[params.goal_axis], dtype=np.float64), params.goal_angle)
        self.goal_quat = quat_multiply(turn, quat)
        data.mocap_pos[self.goal_mocap] = start + GOAL_MARKER_OFFSET
        data.mocap_quat[self.goal_mocap] = self.goal_quat

    # ------------------------------------------------------------------ cost terms (reward and planner)
    def orientation_error(self, view: PhysicsView) -> np.ndarray:
        return quat_angle(view.qpos[..., self.object_qpos][..., 3:], self.goal_quat)

    def cost_functions(self):
        return {"orientation": self.orientation_error, **self.object_cost_functions()}

    def aligned(self, data: mujoco.MjData) -> bool:
        return bool(self.orientation_error(PhysicsView.of_data(data)) < ORIENTATION_TOLERANCE)

    def goal_distance(self, data: mujoco.MjData) -> float:
        """Rotation angle (rad) from the cube's orientation to the goal."""
        return float(self.orientation_error(PhysicsView.of_data(data)))

    def put_at_goal(self, data: mujoco.MjData) -> None:
        """Teleport the cube to the goal orientation at its start position (for tests)."""
        data.qpos[self.object_qpos] = [*self.start_position, *self.goal_quat]
        data.qvel[self.object_qvel] = 0.0
        mujoco.mj_forward(self.model, data)

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        cube = data.qpos[self.object_qpos]
        return np.concatenate([cube, data.qvel[self.object_qvel], self.goal_quat,
                               [self.orientation_error(PhysicsView.of_data(data))],
                               [self.model.geom_size[self.cube_geom, 0]]])


class ReorientCubeV1(StablePhysics, ReorientCube):
    """hb-v2: the same task with physics that stays plausible (``StablePhysics``: the cube's true mass and
    inertia, stiffer cube contacts, the ``implicit`` integrator, hb16 v1's actuator limits for every hand); in
    v0 the random floor blew the cube up."""

    version = 1
    model_fields = ReorientCube.model_fields + DERIVED_MODEL_FIELDS
    object_geoms = ("cube_geom",)


class ReorientCubeV2(FittedToHand, ReorientCubeV1):
    """hb-v2: v1 with the cube's start and the wrist-still rule fitted to each hand (``FittedToHand``: the Shadow
    hand's cube starts nearer its fingers, and its own wrist joints count as wrist); hb16's episodes are v1's."""

    version = 2
    success_rule = (f"cube orientation within {ORIENTATION_TOLERANCE} rad of the goal, cube on the palm, "
                    f"{FittedToHand.STILL_WRIST_RULE}")
    expert_noise_limit = 0.0  # shadow: 90% at 0.005, 88% at 0.01 (check-experts --split demo; README, 'Action noise')


TASKS = (ReorientCube, ReorientCubeV1, ReorientCubeV2)  # v0, v1: hb-v2 until their fixes; v2: hb-v2
