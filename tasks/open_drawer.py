"""open-drawer: pull a cabinet's drawer open by its handle (an articulated object with a prismatic joint)."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from handbench import rewards, rules
from handbench.expert import Expert, WristMotion
from handbench.hands import yaw_quat
from handbench.rewards import Term
from handbench.scene import finger_body_sets
from handbench.task import EpisodeParams, StepScore, Task

OPEN_DISTANCE = 0.09
DRAWER_TRAVEL = 0.16
CABINET_HALF = (0.13, 0.08, 0.042)  # x (width), y (depth), z (height) half sizes; front faces -y
FRONT_HALF_THICKNESS = 0.008
HANDLE_STANDOFF = 0.055  # bar centre to the drawer front's outer face
HANDLE_HALF_LENGTH = 0.05
HANDLE_RADIUS = 0.007
BOX = mujoco.mjtGeom.mjGEOM_BOX
CYLINDER = mujoco.mjtGeom.mjGEOM_CYLINDER


def _add_drawer(cabinet: mujoco.MjsBody) -> None:
    """The drawer: a front panel with a bar handle on posts, and an open tray behind it."""
    wx, dy, hz = CABINET_HALF
    drawer = cabinet.add_body(name="drawer", pos=[0, -dy, 0])
    drawer.add_joint(name="drawer_joint", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, -1, 0],
                     range=[0.0, DRAWER_TRAVEL], armature=0.05, margin=0.0)  # explicit: no hand defaults
    wood = [0.55, 0.38, 0.24, 1]
    drawer.add_geom(name="drawer_front", type=BOX, size=[wx - 0.008, FRONT_HALF_THICKNESS, hz - 0.01],
                    pos=[0, -FRONT_HALF_THICKNESS, hz], rgba=wood, mass=0.3)
    tray_half_depth = dy - 0.012
    for name, size, pos in (
        ("drawer_bottom", [wx - 0.02, tray_half_depth, 0.004], [0, tray_half_depth, 0.018]),
        ("drawer_left", [0.004, tray_half_depth, hz - 0.025], [-(wx - 0.024), tray_half_depth, hz - 0.003]),
        ("drawer_right", [0.004, tray_half_depth, hz - 0.025], [wx - 0.024, tray_half_depth, hz - 0.003]),
        ("drawer_back", [wx - 0.02, 0.004, hz - 0.025], [0, 2 * tray_half_depth, hz - 0.003]),
    ):
        drawer.add_geom(name=name, type=BOX, size=size, pos=pos, rgba=[0.7, 0.55, 0.38, 1], mass=0.05)
    bar_y = -2 * FRONT_HALF_THICKNESS - HANDLE_STANDOFF
    metal = [0.75, 0.75, 0.78, 1]
    drawer.add_geom(name="handle_bar", type=CYLINDER, size=[HANDLE_RADIUS, HANDLE_HALF_LENGTH, 0],
                    pos=[0, bar_y, hz], quat=[0.7071068, 0, 0.7071068, 0], rgba=metal, mass=0.05,
                    friction=[1.0, 0.01, 0.001])
    post_half = HANDLE_STANDOFF / 2
    for side in (-1, 1):
        drawer.add_geom(name=f"handle_post_{'left' if side < 0 else 'right'}", type=CYLINDER,
                        size=[0.005, post_half, 0], pos=[side * (HANDLE_HALF_LENGTH - 0.006), bar_y + post_half, hz],
                        quat=[0.7071068, 0.7071068, 0, 0], rgba=metal, mass=0.01)
    drawer.add_site(name="handle_site", pos=[0, bar_y, hz], size=[0.004, 0, 0], rgba=[0, 0, 0, 0])


@dataclass(frozen=True)
class DrawerParams(EpisodeParams):
    cabinet_xy: np.ndarray  # (2,) m
    cabinet_yaw: float  # rad
    drawer_damping: float  # N s/m on the slide
    drawer_friction: float  # N, the slide's friction loss


class OpenDrawer(Task):
    name = "open-drawer"
    order = 40
    version = 0
    skill = "articulated object"
    description = ("Pull the drawer of a cabinet (random position and yaw on the table, random drawer "
                   f"damping and friction) open by at least {OPEN_DISTANCE * 100:.0f} cm by its bar handle.")
    success_rule = f"drawer pulled out >= {OPEN_DISTANCE} m along its slide"
    reward_terms = (
        Term("reach", 1.0, "1 - tanh(10 * |grasp site - handle|)"),
        Term("open", 3.0, f"clip(opening / {OPEN_DISTANCE}, 0, 1)"),
        Term("success", 5.0, "1 on success"),
    )
    max_episode_steps = 80
    state_size = 10  # cabinet position (3), cos/sin yaw, opening and its speed, handle position (3)
    params_type = DrawerParams
    model_fields = ("dof_damping", "dof_frictionloss")  # the drawer slide's damping and friction

    def build(self, spec: mujoco.MjSpec) -> None:
        wx, dy, hz = CABINET_HALF
        cabinet = spec.worldbody.add_body(name="cabinet", mocap=True, pos=[0.0, 0.2, 0.0])
        shell = [0.42, 0.45, 0.5, 1]
        wall = 0.006
        for name, size, pos in (
            ("cabinet_top", [wx, dy, wall], [0, 0, 2 * hz - wall]),
            ("cabinet_bottom", [wx, dy, wall], [0, 0, wall]),
            ("cabinet_left", [wall, dy, hz], [-wx + wall, 0, hz]),
            ("cabinet_right", [wall, dy, hz], [wx - wall, 0, hz]),
            ("cabinet_back", [wx, wall, hz], [0, dy - wall, hz]),
        ):
            cabinet.add_geom(name=name, type=BOX, size=size, pos=pos, rgba=shell)
        _add_drawer(cabinet)
        for body in (cabinet, spec.body("drawer")):
            for geom in body.geoms:
                geom.margin = 0.0  # explicit: a hand MJCF's default geom margin must not leak in
        spec.add_exclude(bodyname1="cabinet", bodyname2="table")

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.mocap_id = int(model.body_mocapid[model.body("cabinet").id])
        joint = model.joint("drawer_joint")
        self.joint_qpos = int(joint.qposadr[0])
        self.joint_dof = int(joint.dofadr[0])
        self.handle_site = model.site("handle_site").id

    def sample(self, rng: np.random.Generator) -> DrawerParams:
        return DrawerParams(
            cabinet_xy=rng.uniform([-0.08, 0.15], [0.08, 0.21]),
            cabinet_yaw=float(rng.uniform(-0.35, 0.35)),
            drawer_damping=float(rng.uniform(2.0, 8.0)),
            drawer_friction=float(rng.uniform(0.3, 1.5)),
        )

    def apply(self, data: mujoco.MjData, params: DrawerParams) -> None:
        self.model.dof_damping[self.joint_dof] = params.drawer_damping
        self.model.dof_frictionloss[self.joint_dof] = params.drawer_friction
        data.mocap_pos[self.mocap_id] = [*params.cabinet_xy, 0.0]
        data.mocap_quat[self.mocap_id] = yaw_quat(params.cabinet_yaw)
        data.qpos[self.joint_qpos] = 0.0

    # ------------------------------------------------------------------ state queries
    def opening(self, data: mujoco.MjData) -> float:
        return float(data.qpos[self.joint_qpos])

    def handle_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.handle_site].copy()

    def pull_direction(self, data: mujoco.MjData) -> np.ndarray:
        """Unit vector (world) the drawer opens along."""
        quat = data.mocap_quat[self.mocap_id]
        out = np.empty(3)
        mujoco.mju_rotVecQuat(out, np.array([0.0, -1.0, 0.0]), quat)
        return out

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        yaw = self.params.cabinet_yaw
        return np.concatenate([data.mocap_pos[self.mocap_id], [np.cos(yaw), np.sin(yaw)],
                               [self.opening(data), data.qvel[self.joint_dof]], self.handle_position(data)])

    def is_open(self, data: mujoco.MjData, opening: float) -> bool:
        """Whether the drawer counts as opened (v1 also asks that the hand pulled it by the handle)."""
        return opening >= OPEN_DISTANCE

    def score(self, data: mujoco.MjData) -> StepScore:
        opening = self.opening(data)
        success = self.is_open(data, opening)
        return self.step_score({
            "reach": rewards.reach(np.linalg.norm(self.hand.grasp_site_pos(data) - self.handle_position(data))),
            "open": rewards.progress(opening, OPEN_DISTANCE),
            "success": rewards.flag(success),
        }, success)


# hb-v2: at least this share of the opening must be made while the hand is on the handle (bar or posts).
PULLED_BY_HANDLE = 0.8
MAX_PULL_SPEED = 0.4  # m/s: faster opening is a blow, not a pull (the expert pulls at <= 0.26 m/s)
SLIDE_TOLERANCE = 0.003  # m past the slide's end that still counts as within it (the limit is a soft constraint)


class OpenDrawerV1(rules.BoundedWristTask, OpenDrawer):
    """hb-v2: the drawer must be pulled by its handle, and must stay within its slide.

    The opening is credited only while the hand is on the handle and the drawer moves no faster than a pull,
    so a drawer knocked or yanked open by a flailing hand does not count. The slide's end stop is stiff and
    the wrist's force bounded, so the drawer stays within its slide.
    """

    version = 1
    expert_noise_limit = 0.01  # check-experts --split demo --action-noise (README, 'Action noise')
    success_rule = (f"drawer pulled out >= {OPEN_DISTANCE} m along its slide, at least {PULLED_BY_HANDLE:.0%} of "
                    f"that while the hand is on the handle (within {rules.WORKING_DISTANCE * 1000:.0f} mm of bar or "
                    f"posts) and the drawer moves < {MAX_PULL_SPEED} m/s, and never past its {DRAWER_TRAVEL} m slide")

    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)
        spec.joint("drawer_joint").solref_limit = [0.004, 1.0]  # a stiff end stop (2 physics steps)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.handle_geoms = tuple(model.geom(name).id for name in
                                  ("handle_bar", "handle_post_left", "handle_post_right"))

    def apply(self, data: mujoco.MjData, params: DrawerParams) -> None:
        super().apply(data, params)
        self.pulled = 0.0  # opening made while the hand was on the handle
        self.last_opening = 0.0
        self.past_slide = False

    def is_open(self, data: mujoco.MjData, opening: float) -> bool:
        step = opening - self.last_opening
        pulled_steadily = step <= MAX_PULL_SPEED * self.model.opt.timestep * self.frame_skip
        if pulled_steadily and self.contacts.parts_within(data, self.handle_geoms, rules.WORKING_DISTANCE):
            self.pulled += step
        self.last_opening = opening
        self.past_slide |= opening > DRAWER_TRAVEL + SLIDE_TOLERANCE
        return (opening >= OPEN_DISTANCE and self.pulled >= PULLED_BY_HANDLE * OPEN_DISTANCE
                and not self.past_slide)


def synergy_tip_offsets(hand, name: str, level: float, fingers: tuple[str, ...]) -> np.ndarray:
    """Mean fingertip position relative to the grasp site, hand at home pose, fingers at a synergy (FK only)."""
    model = hand.model
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    data.qpos[hand.finger_qpos] = hand.synergy(name, level)
    mujoco.mj_kinematics(model, data)
    tips = np.mean([data.site_xpos[hand.fingertip_site_ids[f]] for f in fingers], axis=0)
    return tips - data.site_xpos[hand.grasp_site_id]


def finger_joint_mask(hand, finger: str) -> np.ndarray:
    """Boolean mask over the hand's finger joints: those that move ``finger``."""
    model = hand.model
    bodies = finger_body_sets(model, hand.fingertip_site_ids, model.body(hand.spec.root_body).id)[finger]
    joint_ids = [model.joint(name).id for name in hand.spec.finger_joints]
    return np.array([int(model.jnt_bodyid[j]) in bodies for j in joint_ids])


class OpenDrawerExpert(Expert["OpenDrawer"]):
    """Grip the handle bar from above, then pull along the drawer's axis (closed loop on the handle).

    ``hook``: index, middle and ring curl over the bar and pull on its far side. ``pinch``: thumb and
    index close on the bar from both sides. Where the bar must sit relative to the grasp site comes
    from forward kinematics of the hand's own synergy, so the same code fits every hand.
    """

    strategies = ("hook", "pinch")
    preshape_level = {"hook": 0.5, "pinch": 0.7}
    pinch_fraction = 0.3
    hook_bar_offset = np.array([0.0, 0.012, 0.016])  # bar centre from the curled tips: forward and up

    def on_reset(self) -> None:
        self.motion = WristMotion(self.hand.grasp_site_pos(self.data))
        if self.strategy == "hook":  # the bar lies inside the curled fingers, a little above the tips
            tips = synergy_tip_offsets(self.hand, "hook", 1.0, ("index", "middle", "ring"))
            self.bar_point = tips + self.hook_bar_offset
        else:  # the bar lies between thumb and index tips when the pinch is nearly closed, nearer the thumb
            thumb = synergy_tip_offsets(self.hand, "pinch", 0.85, ("thumb",))
            index = synergy_tip_offsets(self.hand, "pinch", 0.85, ("index",))
            self.bar_point = thumb + self.pinch_fraction * (index - thumb)
        self.thumb_joints = finger_joint_mask(self.hand, "thumb")

    def plan(self) -> np.ndarray:
        if self.phase == "start":
            self.goto("approach")
        task = self.task
        rotation = yaw_quat(float(self.params.cabinet_yaw))
        pull = task.pull_direction(self.data)
        offset = np.empty(3)
        mujoco.mju_rotVecQuat(offset, self.bar_point, rotation)
        grasp_goal = task.handle_position(self.data) - offset  # grasp site that puts the bar in the grip
        synergy, level = self.strategy, self.preshape_level[self.strategy]
        if self.phase == "approach":
            if self.motion.toward(grasp_goal + [0, 0, 0.07], rotation) < 0.01:
                self.goto("descend")
        elif self.phase == "descend":
            if self.motion.toward(grasp_goal + [0, 0, 0.005], rotation, max_step=0.008) < 0.003:
                self.goto("close")
        thumb_level = level
        if self.phase == "close":
            # The thumb closes first (behind the bar), then the fingers, so a pinch really holds the bar.
            thumb_level += (1.0 - level) * min(1.0, (self.phase_steps + 1) / 4)
            level += (1.0 - level) * float(np.clip((self.phase_steps - 2) / 5, 0.0, 1.0))
            self.motion.toward(grasp_goal, rotation, max_step=0.004)
            if self.phase_steps >= 8:
                self.goto("pull")
        elif self.phase == "pull":
            level = thumb_level = 1.0
            self.motion.toward(grasp_goal + 0.05 * pull, rotation, max_step=0.008)
            if np.linalg.norm(self.hand.grasp_site_pos(self.data) - grasp_goal) > 0.06:  # lost the handle
                self.goto("release")
        elif self.phase == "release":  # open up and rise before trying again
            self.motion.toward(self.motion.position + [0, 0, 0.02], rotation)
            if self.phase_steps >= 4:
                self.goto("approach")
        fingers = self.hand.synergy(synergy, level)
        fingers[self.thumb_joints] = self.hand.synergy(synergy, thumb_level)[self.thumb_joints]
        wrist = self.hand.wrist_ik(self.data, self.motion.position, self.motion.rotation)
        return self.hand.action(wrist, fingers)


OpenDrawer.expert = OpenDrawerExpert  # declared once the expert class exists
TASKS = (OpenDrawer, OpenDrawerV1)  # v0: hb-v1; v1: hb-v2
