"""shadow: the 24-DoF Shadow hand of the Adroit model shipped inside gymnasium-robotics.

The MJCF and meshes are loaded from the installed package at run time (never copied here). We keep
the Adroit forearm with its six arm joints as the 6-DoF wrist, move the arm's rotation pivot to the
palm (as for hb16), strip the relocate scene (table, ball, mocap, target), give every actuator
position-servo gains (Adroit's arm actuators are not plain servos) and gravity-compensate the hand.
"""

from __future__ import annotations

import importlib.util
import os
from fractions import Fraction

import mujoco
import numpy as np

from handbench.errors import HandbenchError
from handbench.hands.base import HandSpec

WRIST = ("ARTx", "ARTy", "ARTz", "ARRx", "ARRy", "ARRz")
FINGER_JOINTS = (
    "WRJ1", "WRJ0",
    "FFJ3", "FFJ2", "FFJ1", "FFJ0",
    "MFJ3", "MFJ2", "MFJ1", "MFJ0",
    "RFJ3", "RFJ2", "RFJ1", "RFJ0",
    "LFJ4", "LFJ3", "LFJ2", "LFJ1", "LFJ0",
    "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
)
# Where the Adroit grasp site sits at zero wrist joints, matching hb16's home pose.
HOME_GRASP_POSITION = np.array([0.0, -0.015, 0.205])
ARM_SLIDE_RANGE = 0.3
ARM_HINGE_RANGE = 1.6
ARM_SLIDE_GAINS = (3000.0, 250.0)
ARM_HINGE_GAINS = (300.0, 30.0)
FINGER_GAINS = (2.0, 0.05)


def _curl(prefix: str, mcp: float, pip: float, dip: float, abd: float = 0.0) -> dict[str, float]:
    return {f"{prefix}J3": abd, f"{prefix}J2": mcp, f"{prefix}J1": pip, f"{prefix}J0": dip}


TUCKED = {"mcp": 1.5, "pip": 1.5, "dip": 1.2}
THUMB_TUCKED = {"THJ4": 0.6, "THJ3": 1.1, "THJ2": 0.0, "THJ1": 0.4, "THJ0": -0.6}


def _point(prefix: str) -> dict[str, float]:
    pose: dict[str, float] = {**THUMB_TUCKED, "LFJ4": 0.3}
    for other in ("FF", "MF", "RF", "LF"):
        pose.update(_curl(other, 0.0, 0.0, 0.0) if other == prefix else _curl(other, **TUCKED))
    return pose


SYNERGIES: dict[str, dict[str, float]] = {
    "open": {"THJ4": 0.0, "THJ3": 0.0, "THJ2": 0.0, "THJ1": 0.0, "THJ0": 0.0},
    "power": {
        # The thumb crosses under the palm to the object's back face, opposing the curled fingers; with
        # the thumb only flexed sideways the fingers squeezed small objects out toward the wrist.
        "THJ4": -0.25, "THJ3": 1.25, "THJ2": 0.25, "THJ1": -0.5, "THJ0": -1.45, "LFJ4": 0.2,
        **_curl("FF", 1.2, 1.2, 0.8), **_curl("MF", 1.2, 1.2, 0.8),
        **_curl("RF", 1.2, 1.2, 0.8), **_curl("LF", 1.2, 1.2, 0.8),
    },
    "pinch": {
        "THJ4": 0.9, "THJ3": 1.1, "THJ2": 0.1, "THJ1": 0.3, "THJ0": -0.3,
        **_curl("FF", 0.9, 0.8, 0.4), **_curl("MF", **TUCKED), **_curl("RF", **TUCKED), **_curl("LF", **TUCKED),
    },
    "hook": {
        **_curl("FF", 0.3, 1.5, 1.2), **_curl("MF", 0.3, 1.5, 1.2),
        **_curl("RF", 0.3, 1.5, 1.2), **_curl("LF", 0.3, 1.5, 1.2),
    },
    "point_index": _point("FF"),
    "point_middle": _point("MF"),
    "point_ring": _point("RF"),
}


def adroit_model_path() -> str:
    # find_spec locates the package without importing it (its import prints deprecation notices).
    package = importlib.util.find_spec("gymnasium_robotics")
    if package is None or package.origin is None:
        raise HandbenchError("the shadow hand needs the gymnasium-robotics package: pip install gymnasium-robotics")
    path = os.path.join(os.path.dirname(package.origin), "envs/assets/adroit_hand/adroit_relocate.xml")
    if not os.path.exists(path):
        raise HandbenchError(f"Adroit hand model not found at {path}; reinstall gymnasium-robotics")
    return path


def _servo(actuator: mujoco.MjsActuator, kp: float, kv: float) -> None:
    actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    actuator.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    actuator.gainprm[0] = kp
    actuator.biasprm[0:3] = [0.0, -kp, -kv]


def _restore_builtin_defaults(spec: mujoco.MjSpec) -> None:
    """Give elements that tasks add later MuJoCo's built-in defaults, not Adroit's.

    Adroit's top default class sets joint margins, friction loss, torsional friction, mesh scale ...;
    the hand's own elements keep those values (they were applied when the file was parsed), but a task's
    drawer or button must behave the same next to either hand.
    """
    builtin, main = mujoco.MjSpec().default, spec.default
    for kind, attributes in {
        "joint": ("limited", "margin", "armature", "damping", "frictionloss"),
        "geom": ("friction", "margin"),
        "site": ("size", "rgba"),
        "mesh": ("scale",),
        "tendon": ("limited",),
        "actuator": ("ctrllimited", "ctrlrange"),
    }.items():
        for attribute in attributes:
            setattr(getattr(main, kind), attribute, getattr(getattr(builtin, kind), attribute))


def _embed_files(spec: mujoco.MjSpec) -> None:
    """Read the model's mesh and texture files into ``spec.assets`` under their paths relative to the model file.

    The compiled model then records ``resources/meshes/F1.stl`` rather than an absolute path under wherever
    gymnasium-robotics is installed, so its hash (provenance of every dataset and result) is the same on every
    machine. The files' contents, and so the physics, are unchanged."""
    assets: dict[str, bytes] = {}
    for items, folder in ((spec.meshes, spec.meshdir), (spec.textures, spec.texturedir)):
        for item in items:
            if item.file:
                name = folder + item.file
                with open(os.path.join(spec.modelfiledir, name), "rb") as file:
                    assets[name] = file.read()
                item.file = name
    spec.meshdir = spec.texturedir = spec.modelfiledir = ""
    spec.assets = assets


def _fused_multiply_add(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once, as a hardware fused multiply-add does (exact rational arithmetic, then one
    rounding to the nearest float)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _transposed_times(matrix: np.ndarray, vector: np.ndarray) -> list[float]:
    """``matrix.T @ vector`` for a 3x3 matrix, the same bits on every machine.

    numpy hands a matrix-vector product to its BLAS, whose kernel (picked at run time for the CPU) sets the
    rounding: the Shadow wrist pivot comes out of a cancellation (about 1e-20 m off the axis), so an AVX-512
    kernel and an AVX2 one gave different pivots, compiled models and model hashes for every Shadow scene. This
    is the sum the AVX-512 kernel computes, a chain of fused multiply-adds from the first row, which the hb-v2
    Shadow results were recorded with (``tests/test_hands.py`` checks the hashes)."""
    result = []
    for column in range(3):
        total = float(matrix[0, column]) * float(vector[0])
        for row in (1, 2):
            total = _fused_multiply_add(float(matrix[row, column]), float(vector[row]), total)
        result.append(total)
    return result


def build_spec() -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(adroit_model_path())
    _embed_files(spec)
    for name in ("table", "vive_tracker", "Object"):
        spec.delete(spec.body(name))
    spec.delete(spec.geom("ground"))
    spec.delete(spec.site("target"))
    for camera in list(spec.cameras):
        spec.delete(camera)
    for light in list(spec.worldbody.lights):
        spec.delete(light)
    spec.option.noslip_iterations = 0
    _restore_builtin_defaults(spec)

    forearm = spec.body("forearm")
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    forearm_id, palm_id = model.body("forearm").id, model.body("palm").id
    grasp = data.site_xpos[model.site("S_grasp").id]
    pivot_local = _transposed_times(data.xmat[forearm_id].reshape(3, 3), data.xpos[palm_id] - data.xpos[forearm_id])
    forearm.pos = np.asarray(forearm.pos) + (HOME_GRASP_POSITION - grasp)

    for name in WRIST:
        joint = spec.joint(name)
        is_slide = joint.type == mujoco.mjtJoint.mjJNT_SLIDE
        limit = ARM_SLIDE_RANGE if is_slide else ARM_HINGE_RANGE
        joint.range = [-limit, limit]
        if not is_slide:
            joint.pos = pivot_local
        actuator = spec.actuator(f"A_{name}")
        actuator.ctrlrange = [-limit, limit]
        _servo(actuator, *(ARM_SLIDE_GAINS if is_slide else ARM_HINGE_GAINS))
    for name in FINGER_JOINTS:
        actuator = spec.actuator(f"A_{name}")
        _servo(actuator, *FINGER_GAINS)
        # Adroit rounds its ctrlranges outward (1.6 for a 1.571 limit): targets past a limit only push
        # the joint into it, so the action space stops at the joint range.
        joint_range = np.asarray(spec.joint(name).range)
        ctrl = np.asarray(actuator.ctrlrange)
        actuator.ctrlrange = [max(ctrl[0], joint_range[0]), min(ctrl[1], joint_range[1])]

    stack = [forearm]
    while stack:
        body = stack.pop()
        body.gravcomp = 1.0
        stack.extend(body.bodies)
    return spec


SHADOW = HandSpec(
    name="shadow",
    description="24-DoF Shadow hand (Adroit model from gymnasium-robotics) on a 6-DoF arm mount",
    build_spec=build_spec,
    root_body="forearm",
    wrist_joints=WRIST,
    finger_joints=FINGER_JOINTS,
    fingertip_sites={"thumb": "S_thtip", "index": "S_fftip", "middle": "S_mftip", "ring": "S_rftip",
                     "little": "S_lftip"},
    touch_sensors=("ST_Tch_thtip", "ST_Tch_fftip", "ST_Tch_mftip", "ST_Tch_rftip", "ST_Tch_lftip",
                   "ST_Tch_palm"),
    grasp_site="S_grasp",
    synergies=SYNERGIES,
    # The power synergy's fingertips and thumb meet near the grasp site, under the palm's front half: an
    # object centred there gets pushed toward the wrist as the fingers curl, and a low palm drives the thumb
    # into the table. Holding the object 3 cm further out and 1.5 cm lower cages it between fingers and thumb.
    power_grasp_offset=(0.0, 0.03, -0.015),
    palm_up_joint="ARRz",
    palm_up_actuator="A_ARRz",
    palm_up_centre=(0.005, -0.008, 0.266),
    palm_sensor="ST_Tch_palm",
    # Its power grasp holds a cube tilted, and opening the hand on a set-down cube (thumb and little finger
    # sweeping past its faces) pushes the cube away: it lets go by slipping off.
    release_style="slip-off",
    # Its closing fingers and thumb squeeze a cube out sideways when the palm is low (at the centre) and slip
    # off a large cube when it is high (the power-grasp offset): this height lifts best for every cube size.
    grasp_above_bottom=0.048,
    # 24 finger joints (hb16: 16): wider exploration noise turns the cube (6 of 6 first eval seeds at 0.3, the
    # first one dropped at the tasks' 0.2).
    planner_overrides={"noise": 0.3},
    # Its palm ends 7 mm past palm_up_centre toward the fingers, and curling fingers push an object there 2-3 cm
    # toward the wrist, out of their reach, while the thumb pushes it toward the little finger's side, off the
    # palm: in-hand tasks from version 2 start the object 2.2 cm nearer the fingers (over the knuckles) and 8 mm
    # toward the thumb. WRJ1 and WRJ0 are the hand's own wrist (they turn the palm): those tasks hold them still.
    palm_up_start_offset=(0.008, 0.022),
    palm_joints=("WRJ1", "WRJ0"),
    # Its rollouts cost twice hb16's, two thirds of it in the contact solve: from version 2 the in-hand planning
    # model uses pyramidal friction cones and no joint friction loss (0.001 N m on every joint, a constraint row
    # each), half the cost per rollout.
    fitted_planner_overrides={"cone": "pyramidal", "frictionloss": False},
)

HAND = SHADOW  # found by handbench.hands
