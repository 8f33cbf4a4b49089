"""press-button: press a spring-loaded button with one named finger while the others stay clear of it."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from handbench import rewards
from handbench.expert import Expert, WristMotion
from handbench.hands import axis_angle_quat, yaw_quat
from handbench.rewards import Term
from handbench.scene import finger_body_sets, subtree_bodies
from handbench.task import EpisodeParams, StepScore, Task

PRESS_FINGERS = ("index", "middle", "ring")
# Cap colour tells a pixel policy which finger to use (index red, middle green, ring blue).
FINGER_COLOURS = {"index": (0.9, 0.2, 0.15, 1.0), "middle": (0.2, 0.75, 0.25, 1.0), "ring": (0.2, 0.35, 0.9, 1.0)}
HOUSING_RADIUS = 0.028
HOUSING_HALF_HEIGHT = 0.01
CAP_HALF_HEIGHT = 0.008
CAP_TRAVEL = 0.012  # the joint's range: the cap sinks at most this far
PRESS_DEPTH = 0.007  # travel that counts as pressed
SPRING_PRELOAD = 0.004  # spring rest position above the cap's top limit, so the cap rests under load


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, a, b)
    return out


@dataclass(frozen=True)
class ButtonParams(EpisodeParams):
    button_xy: np.ndarray  # (2,) m
    cap_radius: float  # m
    spring_stiffness: float  # N/m
    button_damping: float  # N s/m
    finger: str  # the finger that must press: index, middle or ring


class PressButton(Task):
    name = "press-button"
    order = 10
    version = 0
    expert_noise_limit = 0.02  # check-experts --split demo --action-noise (README, 'Action noise')
    skill = "finger individuation"
    description = ("Press a spring-loaded button at a random spot with the finger the episode names "
                   "(index, middle or ring; also shown by the cap colour) while the other fingers stay clear.")
    success_rule = (f"button cap sunk >= {PRESS_DEPTH * 1000:.0f} mm while the named finger's distal phalanx "
                    "touches the cap and no other part of the hand touches the button (cap or housing)")
    reward_terms = (
        Term("reach", 1.0, "1 - tanh(10 * |named fingertip - cap top|)"),
        Term("press", 2.0, f"clip(travel / {PRESS_DEPTH}, 0, 1)"),
        Term("other_touch", -1.0, "1 while any other part of the hand touches the button"),
        Term("success", 5.0, "1 on success"),
    )
    max_episode_steps = 70
    state_size = 9  # button position (3), cap travel and its speed, cap radius, named finger one-hot (3)
    params_type = ButtonParams
    # the cap's radius and colour, its spring and damping
    model_fields = ("geom_size", "geom_rbound", "geom_aabb", "geom_rgba", "jnt_stiffness", "dof_damping")

    def build(self, spec: mujoco.MjSpec) -> None:
        base = spec.worldbody.add_body(name="button_base", mocap=True, pos=[0.0, 0.1, 0.0])
        base.add_geom(name="button_housing", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                      size=[HOUSING_RADIUS, HOUSING_HALF_HEIGHT, 0], pos=[0, 0, HOUSING_HALF_HEIGHT],
                      rgba=[0.25, 0.25, 0.28, 1], friction=[1.0, 0.01, 0.001])
        cap = base.add_body(name="button_cap", pos=[0, 0, 2 * HOUSING_HALF_HEIGHT + CAP_HALF_HEIGHT])
        joint = cap.add_joint(name="button_joint", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                              range=[-CAP_TRAVEL, 0.0], springref=SPRING_PRELOAD, armature=0.001,
                              margin=0.0, frictionloss=0.0)  # explicit: hand MJCF defaults must not leak in
        joint.stiffness = [120.0, 0.0, 0.0]
        joint.damping = [2.0, 0.0, 0.0]
        cap.add_geom(name="button_cap_geom", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                     size=[0.014, CAP_HALF_HEIGHT, 0], rgba=list(FINGER_COLOURS["index"]), mass=0.01,
                     friction=[1.0, 0.01, 0.001], condim=3)
        cap.add_site(name="button_top", pos=[0, 0, CAP_HALF_HEIGHT], size=[0.003, 0, 0], rgba=[0, 0, 0, 0])
        for geom in (*base.geoms, *cap.geoms):
            geom.margin = 0.0  # explicit: a hand MJCF's default geom margin must not leak in
        spec.add_exclude(bodyname1="button_base", bodyname2="table")

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.mocap_id = int(model.body_mocapid[model.body("button_base").id])
        self.cap_geom = model.geom("button_cap_geom").id
        self.housing_geom = model.geom("button_housing").id
        self.top_site = model.site("button_top").id
        joint = model.joint("button_joint")
        self.joint_id = joint.id
        self.joint_qpos = int(joint.qposadr[0])
        self.joint_dof = int(joint.dofadr[0])
        root = model.body(hand.spec.root_body).id
        self.finger_bodies = finger_body_sets(model, hand.fingertip_site_ids, root)
        self.hand_bodies = subtree_bodies(model, root)
        self.distal_bodies = {f: int(model.site_bodyid[s]) for f, s in hand.fingertip_site_ids.items()}

    def sample(self, rng: np.random.Generator) -> ButtonParams:
        return ButtonParams(
            button_xy=rng.uniform([-0.10, -0.02], [0.10, 0.10]),
            cap_radius=float(rng.uniform(0.012, 0.016)),
            spring_stiffness=float(rng.uniform(80.0, 160.0)),
            button_damping=float(rng.uniform(1.0, 3.0)),
            finger=PRESS_FINGERS[int(rng.integers(len(PRESS_FINGERS)))],
        )

    def apply(self, data: mujoco.MjData, params: ButtonParams) -> None:
        model = self.model
        model.geom_size[self.cap_geom, 0] = params.cap_radius
        model.geom_rbound[self.cap_geom] = np.hypot(params.cap_radius, CAP_HALF_HEIGHT)
        model.geom_aabb[self.cap_geom, 3:5] = params.cap_radius
        model.geom_rgba[self.cap_geom] = FINGER_COLOURS[params.finger]
        model.jnt_stiffness[self.joint_id] = params.spring_stiffness
        model.dof_damping[self.joint_dof] = params.button_damping
        data.mocap_pos[self.mocap_id] = [*params.button_xy, 0.0]
        data.mocap_quat[self.mocap_id] = [1.0, 0.0, 0.0, 0.0]
        data.qpos[self.joint_qpos] = 0.0
        self.finger = params.finger
        self.other_bodies = self.hand_bodies - self.finger_bodies[self.finger]

    # ------------------------------------------------------------------ state queries
    def travel(self, data: mujoco.MjData) -> float:
        """How far the cap has sunk below its rest position (metres, >= 0)."""
        return float(-data.qpos[self.joint_qpos])

    def cap_top(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.top_site].copy()

    def touches(self, data: mujoco.MjData) -> tuple[bool, bool]:
        """(named distal phalanx touches the cap, any other hand part touches the cap or housing)."""
        named, other = False, False
        distal = self.distal_bodies[self.finger]
        button = (self.cap_geom, self.housing_geom)
        for i in range(data.ncon):
            contact = data.contact[i]
            g1, g2 = int(contact.geom[0]), int(contact.geom[1])
            if g1 in button:
                hit, body = g1, int(self.model.geom_bodyid[g2])
            elif g2 in button:
                hit, body = g2, int(self.model.geom_bodyid[g1])
            else:
                continue
            if body in self.other_bodies:
                other = True
            elif body == distal and hit == self.cap_geom:
                named = True
        return named, other

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        one_hot = [float(f == self.params.finger) for f in PRESS_FINGERS]
        return np.concatenate([data.mocap_pos[self.mocap_id], [self.travel(data), data.qvel[self.joint_dof],
                               self.model.geom_size[self.cap_geom, 0]], one_hot])

    def score(self, data: mujoco.MjData) -> StepScore:
        travel = self.travel(data)
        named, other = self.touches(data)
        success = travel >= PRESS_DEPTH and named and not other
        tip = self.hand.fingertip_positions(data)[self.finger]
        return self.step_score({
            "reach": rewards.reach(np.linalg.norm(tip - self.cap_top(data))),
            "press": rewards.progress(travel, PRESS_DEPTH),
            "other_touch": rewards.flag(other),
            "success": rewards.flag(success),
        }, success)


class PressButtonExpert(Expert["PressButton"]):
    """Point with the named finger, tilt it down and press, steering the fingertip itself (not the palm).

    The strategy picks the side the hand comes from: its yaw and the hover point lean left or right.
    """

    strategies = ("approach-left", "approach-right")
    pitch = 0.95  # radians the pointing finger is tilted down, so curled fingers and thumb stay high

    def on_reset(self) -> None:
        side = -1.0 if self.strategy == "approach-left" else 1.0
        self.side = side
        self.yaw = side * float(self.rng.uniform(0.15, 0.4))
        self.rotation = _quat_mul(yaw_quat(self.yaw), axis_angle_quat(np.array([1.0, 0, 0]), -self.pitch))
        self.finger = str(self.params.finger)
        self.motion = WristMotion(self._tip(), max_step=0.014, max_turn=0.15)

    def _tip(self) -> np.ndarray:
        return self.hand.fingertip_positions(self.data)[self.finger]

    def plan(self) -> np.ndarray:
        if self.phase == "start":
            self.goto("tilt")
        task = self.task
        top = task.cap_top(self.data)
        top[2] += task.travel(self.data)  # aim at the cap's rest height, not where it has sunk to
        fingers = self.hand.synergy(f"point_{self.finger}", min(1.0, (self.phase_steps + 1) / 6)
                                    if self.phase == "tilt" else 1.0)
        if self.phase == "tilt":
            remaining = self.motion.toward(top + [0, 0, 0.12], self.rotation, max_step=0.006)
            if remaining < 0.02 and self.phase_steps >= 6:
                self.goto("hover")
        elif self.phase == "hover":
            hover = top + np.array([self.side * 0.03, -0.02, 0.05])
            if self.motion.toward(hover, self.rotation) < 0.005:
                self.goto("align")
        elif self.phase == "align":
            if self.motion.toward(top + [0, 0, 0.012], self.rotation, max_step=0.008) < 0.002:
                self.goto("press")
        elif self.phase == "press":
            self.motion.toward(top - [0, 0, CAP_TRAVEL + 0.004], self.rotation, max_step=0.004)
            if self.phase_steps > 25:  # stuck (e.g. slipped off the cap): lift and try again
                self.goto("hover")
        # Closed loop on the fingertip: the palm goal is the tip goal plus the measured palm-to-tip offset.
        offset = self.hand.grasp_site_pos(self.data) - self._tip()
        wrist = self.hand.wrist_ik(self.data, self.motion.position + offset, self.motion.rotation)
        return self.hand.action(wrist, fingers)


PressButton.expert = PressButtonExpert  # declared once the expert class exists
TASK = PressButton
