"""The Hand interface: what a scripted expert needs to drive any hand without knowing its joints.

A :class:`HandSpec` describes a hand (how to build its MJCF, which joints form the 6-DoF wrist, the
finger synergies); a :class:`BoundHand` binds it to one compiled model and gives experts wrist-pose IK,
synergy targets, fingertip positions and touch readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import mujoco
import numpy as np

FINGERS = ("thumb", "index", "middle", "ring")


RELEASE_STYLES = ("open", "slip-off")


@dataclass(frozen=True)
class HandSpec:
    """Static description of a hand. The action layout is ``wrist_joints`` then ``finger_joints``.

    Everything that differs between hands lives here, never in a task: the fields after ``synergies`` are the
    hand's quirks that experts adapt to (each documented where it is set, in the hand's module).
    """

    name: str
    description: str
    build_spec: Callable[[], mujoco.MjSpec]
    root_body: str
    wrist_joints: tuple[str, ...]
    finger_joints: tuple[str, ...]
    fingertip_sites: Mapping[str, str]
    touch_sensors: tuple[str, ...]
    grasp_site: str
    synergies: Mapping[str, Mapping[str, float]]
    extra_fingers: tuple[str, ...] = field(default=())
    # Where a power grasp holds an object's centre, relative to the grasp site, in the hand's home frame
    # (world axes at zero wrist joints: y toward the fingertips, z up). The curled fingers and the thumb
    # meet at a different place for every hand; experts use it through BoundHand.power_grasp_site.
    power_grasp_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # In-hand tasks turn the palm up: the wrist hinge (and its actuator) whose axis runs along the fingers at
    # home, rolled by half a turn; and where an object then rests: world x, y of the palm's centre and the
    # height of the palm's upper surface.
    palm_up_joint: str = ""
    palm_up_actuator: str = ""
    palm_up_centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Planning experts' settings for this hand on top of a task's (``handbench.planning.PlannerConfig`` fields):
    # a hand with more finger joints has more directions to search.
    planner_overrides: Mapping[str, float] = field(default_factory=dict)
    # In-hand tasks from version 2 (handbench.inhand.FittedToHand): where the object starts, as an offset (world x,
    # y, m) from palm_up_centre; the finger joints that turn the palm (the hand's own wrist, where it has one),
    # which those tasks hold still with the wrist; and planner settings on top of planner_overrides.
    palm_up_start_offset: tuple[float, float] = (0.0, 0.0)
    palm_joints: tuple[str, ...] = ()
    fitted_planner_overrides: Mapping[str, float | str | bool] = field(default_factory=dict)
    # The palm's touch sensor (one of touch_sensors); the others are the digits' (BoundHand.digit_touch).
    palm_sensor: str = ""
    # How the hand lets go of an object it set down: "open" opens the fingers in place; "slip-off" loosens the
    # grip a little, rises until the fingertips are above the object, and only then opens (for hands whose
    # opening fingers sweep a set-down object away).
    release_style: str = "open"
    # Grasp-site height above a cube's bottom face when closing on it from above, for hands that lift best
    # there; None grasps at the power-grasp point (power_grasp_offset).
    grasp_above_bottom: float | None = None
    # The hand's version. A change to a released hand (its actuators' limits, say) is a new HandSpec with the next
    # version, never an edit: a protocol manifest pins the version of every hand it uses (absent: 0), so results
    # made on an older protocol stay reproducible. Each version's module text says what changed.
    version: int = 0

    def __post_init__(self) -> None:
        if self.version < 0:
            raise ValueError(f"hand {self.name}: version must be >= 0, got {self.version}")
        if self.release_style not in RELEASE_STYLES:
            raise ValueError(f"hand {self.name}: release_style must be one of {RELEASE_STYLES}")
        if not set(self.palm_joints) <= set(self.finger_joints):
            raise ValueError(f"hand {self.name}: palm_joints {self.palm_joints} must be finger_joints")
        if self.palm_sensor and self.palm_sensor not in self.touch_sensors:
            raise ValueError(f"hand {self.name}: palm_sensor {self.palm_sensor!r} is not one of its touch_sensors")

    @property
    def fingers(self) -> tuple[str, ...]:
        return tuple(self.fingertip_sites)


class BoundHand:
    """A hand inside one compiled model: index maps, synergies as vectors, and wrist IK."""

    def __init__(self, spec: HandSpec, model: mujoco.MjModel) -> None:
        self.spec = spec
        self.model = model
        self.wrist_qpos = np.array([model.joint(j).qposadr[0] for j in spec.wrist_joints])
        self.wrist_dofs = np.array([model.joint(j).dofadr[0] for j in spec.wrist_joints])
        self.finger_qpos = np.array([model.joint(j).qposadr[0] for j in spec.finger_joints])
        self.finger_dofs = np.array([model.joint(j).dofadr[0] for j in spec.finger_joints])
        joint_ids = [model.joint(j).id for j in spec.wrist_joints + spec.finger_joints]
        self.actuator_ids = np.array([self._actuator_for_joint(j) for j in joint_ids])
        if not np.array_equal(self.actuator_ids, np.arange(len(joint_ids))):
            raise ValueError(f"hand {spec.name}: actuators must come first, in wrist+finger joint order")
        self.n_wrist = len(spec.wrist_joints)
        self.ctrl_low = model.actuator_ctrlrange[self.actuator_ids, 0].copy()
        self.ctrl_high = model.actuator_ctrlrange[self.actuator_ids, 1].copy()
        self.wrist_range = model.jnt_range[[model.joint(j).id for j in spec.wrist_joints]].copy()
        self.fingertip_site_ids = {f: model.site(s).id for f, s in spec.fingertip_sites.items()}
        self.grasp_site_id = model.site(spec.grasp_site).id
        self.touch_adr = np.array([model.sensor_adr[model.sensor(s).id] for s in spec.touch_sensors])
        self.digit_touch_adr = np.array([adr for s, adr in zip(spec.touch_sensors, self.touch_adr, strict=True)
                                         if s != spec.palm_sensor])
        self._synergy_vectors = {name: self._finger_vector(pose) for name, pose in spec.synergies.items()}
        self._scratch = mujoco.MjData(model)
        self.home_site_quat = self._site_quat_at(np.zeros(self.n_wrist))

    # ---------------------------------------------------------------- construction helpers
    def _actuator_for_joint(self, joint_id: int) -> int:
        for i in range(self.model.nu):
            if self.model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT and (
                self.model.actuator_trnid[i, 0] == joint_id
            ):
                return i
        raise ValueError(f"hand {self.spec.name}: no actuator drives joint {self.model.joint(joint_id).name}")

    def _finger_vector(self, pose: Mapping[str, float]) -> np.ndarray:
        base = dict(self.spec.synergies.get("open", {}))
        base.update(pose)
        return np.array([base.get(j, 0.0) for j in self.spec.finger_joints], dtype=np.float64)

    def _site_quat_at(self, wrist_q: np.ndarray) -> np.ndarray:
        d = self._scratch
        d.qpos[:] = self.model.qpos0
        d.qpos[self.wrist_qpos] = wrist_q
        mujoco.mj_kinematics(self.model, d)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self.grasp_site_id])
        return quat

    # ---------------------------------------------------------------- expert-facing API
    @property
    def synergy_names(self) -> tuple[str, ...]:
        return tuple(self._synergy_vectors)

    def synergy(self, name: str, level: float = 1.0) -> np.ndarray:
        """Finger joint targets blended from ``open`` (level 0) to the named synergy (level 1)."""
        open_pose = self._synergy_vectors["open"]
        return open_pose + float(level) * (self._synergy_vectors[name] - open_pose)

    def fingertip_positions(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        return {f: data.site_xpos[i].copy() for f, i in self.fingertip_site_ids.items()}

    def touch(self, data: mujoco.MjData) -> np.ndarray:
        """Every touch sensor's reading (N), in ``touch_sensors`` order."""
        return data.sensordata[self.touch_adr].copy()

    def digit_touch(self, data: mujoco.MjData) -> np.ndarray:
        """The touch readings (N) of the digits only (all touch sensors but the palm's)."""
        return data.sensordata[self.digit_touch_adr].copy()

    def grasp_site_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.grasp_site_id].copy()

    def power_grasp_site(self, object_centre: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
        """Grasp-site position that puts ``object_centre`` where this hand's power grasp holds it, for the
        hand turned by ``rotation`` (world-frame quaternion on top of the home orientation, as in wrist_ik)."""
        offset = np.asarray(self.spec.power_grasp_offset, dtype=np.float64)
        if rotation is not None:
            rotated = np.empty(3)
            mujoco.mju_rotVecQuat(rotated, offset, np.asarray(rotation, dtype=np.float64))
            offset = rotated
        return np.asarray(object_centre, dtype=np.float64) - offset

    def wrist_ik(
        self,
        data: mujoco.MjData,
        position: np.ndarray,
        rotation: np.ndarray | None = None,
        iterations: int = 25,
        damping: float = 1e-3,
    ) -> np.ndarray:
        """Wrist joint targets that put the grasp site at ``position`` (world frame).

        ``rotation`` is a unit quaternion applied in the world frame on top of the hand's home
        orientation (identity keeps the palm facing down). Damped least squares on a scratch copy of
        the state, so the simulation itself is untouched.
        """
        m, d = self.model, self._scratch
        target_quat = self.home_site_quat.copy()
        if rotation is not None:
            mujoco.mju_mulQuat(target_quat, np.asarray(rotation, dtype=np.float64), self.home_site_quat)
        d.qpos[:] = data.qpos
        q = d.qpos[self.wrist_qpos].copy()
        jacp = np.zeros((3, m.nv))
        jacr = np.zeros((3, m.nv))
        current = np.empty(4)
        rot_err = np.empty(3)
        for _ in range(iterations):
            d.qpos[self.wrist_qpos] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            pos_err = np.asarray(position) - d.site_xpos[self.grasp_site_id]
            mujoco.mju_mat2Quat(current, d.site_xmat[self.grasp_site_id])
            mujoco.mju_subQuat(rot_err, target_quat, current)
            rot_err_world = d.site_xmat[self.grasp_site_id].reshape(3, 3) @ rot_err
            err = np.concatenate([pos_err, rot_err_world])
            if np.linalg.norm(err) < 1e-5:
                break
            mujoco.mj_jacSite(m, d, jacp, jacr, self.grasp_site_id)
            jac = np.vstack([jacp, jacr])[:, self.wrist_dofs]
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), err)
            q = np.clip(q + dq, self.wrist_range[:, 0], self.wrist_range[:, 1])
        return q

    def action(self, wrist: np.ndarray, fingers: np.ndarray) -> np.ndarray:
        """Full action (absolute joint targets), clipped to the actuators' ctrlrange."""
        return np.clip(np.concatenate([wrist, fingers]), self.ctrl_low, self.ctrl_high)


def yaw_quat(angle: float) -> np.ndarray:
    """Quaternion of a rotation by ``angle`` about the world z axis."""
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def axis_angle_quat(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(axis, dtype=np.float64), angle)
    return quat
