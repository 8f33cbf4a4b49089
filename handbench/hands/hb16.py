"""hb16: the project's own 16-joint, four-finger hand (MJCF in ``assets/hb16.xml``).

Versions (a protocol manifest pins one, ``hand_versions``; hb-v1 uses v0):

- v0: ``assets/hb16.xml`` as is. Its finger servos have no force limit (up to kp x range = 5.4 N m at a joint) and
  its wrist no speed limit: random in-range actions threw a cube up to 11.66 m high (issue 12).
- v1 (hb-v2): the actuators of a real hand on a real arm. Each actuator is a motor whose force falls linearly with
  speed, from its stall force (``forcerange``) to zero at its no-load speed; MuJoCo models the slope as joint
  damping, so no-load speed = stall force / damping. See ``FINGER_TORQUE`` and ``WRIST_LIMITS``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from importlib import resources

import mujoco

from handbench.hands.base import HandSpec

WRIST = ("wrist_x", "wrist_y", "wrist_z", "wrist_rx", "wrist_ry", "wrist_rz")
FINGER_JOINTS = tuple(
    f"{finger}_{joint}"
    for finger, joints in (
        ("thumb", ("abd", "cmc", "mcp", "ip")),
        ("index", ("abd", "mcp", "pip", "dip")),
        ("middle", ("abd", "mcp", "pip", "dip")),
        ("ring", ("abd", "mcp", "pip", "dip")),
    )
    for joint in joints
)


def _curl(finger: str, mcp: float, pip: float, dip: float, abd: float = 0.0) -> dict[str, float]:
    return {f"{finger}_abd": abd, f"{finger}_mcp": mcp, f"{finger}_pip": pip, f"{finger}_dip": dip}


TUCKED = {"mcp": 1.5, "pip": 1.7, "dip": 1.2}
THUMB_TUCKED = {"thumb_abd": -0.3, "thumb_cmc": 0.8, "thumb_mcp": 1.1, "thumb_ip": 1.0}


def _point(finger: str) -> dict[str, float]:
    pose: dict[str, float] = dict(THUMB_TUCKED)
    for other in ("index", "middle", "ring"):
        pose.update(_curl(other, 0.0, 0.0, 0.0) if other == finger else _curl(other, **TUCKED))
    return pose


SYNERGIES: dict[str, dict[str, float]] = {
    "open": {"thumb_abd": 0.0, "thumb_cmc": -1.2, "thumb_mcp": 0.0, "thumb_ip": 0.0},
    "power": {
        # The thumb stays behind the object and curls onto its back face: swinging the straight thumb
        # forward under the palm would sweep it through the table and shove small objects away.
        "thumb_abd": -0.3, "thumb_cmc": -0.5, "thumb_mcp": 1.1, "thumb_ip": 1.1,
        **_curl("index", 1.3, 1.3, 0.9), **_curl("middle", 1.3, 1.3, 0.9), **_curl("ring", 1.3, 1.3, 0.9),
    },
    "pinch": {
        "thumb_abd": 0.0, "thumb_cmc": 0.75, "thumb_mcp": 0.5, "thumb_ip": 0.3,
        **_curl("index", 1.0, 0.9, 0.5), **_curl("middle", **TUCKED), **_curl("ring", **TUCKED),
    },
    "hook": {
        **_curl("index", 0.3, 1.6, 1.2), **_curl("middle", 0.3, 1.6, 1.2), **_curl("ring", 0.3, 1.6, 1.2),
    },
    "point_index": _point("index"),
    "point_middle": _point("middle"),
    "point_ring": _point("ring"),
}


def build_spec() -> mujoco.MjSpec:
    path = resources.files("handbench.assets").joinpath("hb16.xml")
    with resources.as_file(path) as xml_path:
        return mujoco.MjSpec.from_file(str(xml_path))


HB16 = HandSpec(
    name="hb16",
    description="handbench's own hand: 4 fingers incl. opposable thumb, 16 finger joints, primitive geoms",
    build_spec=build_spec,
    root_body="hb16_root",
    wrist_joints=WRIST,
    finger_joints=FINGER_JOINTS,
    fingertip_sites={f: f"{f}_tip" for f in ("thumb", "index", "middle", "ring")},
    touch_sensors=("thumb_touch", "index_touch", "middle_touch", "ring_touch", "palm_touch"),
    palm_sensor="palm_touch",
    grasp_site="grasp_site",
    synergies=SYNERGIES,
    palm_up_joint="wrist_ry",
    palm_up_actuator="wrist_ry",
    palm_up_centre=(0.0, -0.038, 0.262),
)

# v1's limits. Finger joints: the Shadow Dexterous Hand's finger actuators stall at 0.72-0.9 N m (gymnasium-robotics'
# hand/shared.xml forceranges; its thumb base 2.37 N m); hb16's joint damping (0.1 N m s/rad) then gives a no-load
# speed of 9 rad/s. Wrist: the arm a hand is mounted on; 100 N / 50 N m are hb-v2's wrist bounds
# (handbench.rules.WRIST_FORCE_LIMIT), and the damping caps the hand's speed at 1 m/s and pi rad/s (a UR arm's
# typical tool speed is 1 m/s and its wrist joints turn at most 180 deg/s; at 2.5 rad/s the turn-valve expert
# ran out of time on 3 of 50 eval seeds).
FINGER_TORQUE = 0.9  # N m, every finger joint's stall torque
WRIST_LIMITS = {  # joint type -> (stall force (N) or torque (N m), no-load speed (m/s or rad/s))
    mujoco.mjtJoint.mjJNT_SLIDE: (100.0, 1.0),
    mujoco.mjtJoint.mjJNT_HINGE: (50.0, math.pi),
}


def _limit(actuator: mujoco.MjsActuator, force: float) -> None:
    actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    actuator.forcerange = [-force, force]


def build_spec_v1() -> mujoco.MjSpec:
    """v1: v0 with the force and speed limits of a real hand and arm (``FINGER_TORQUE``, ``WRIST_LIMITS``)."""
    spec = build_spec()
    for name in WRIST:
        joint = spec.joint(name)
        force, speed = WRIST_LIMITS[joint.type]
        _limit(spec.actuator(name), force)
        joint.damping = [force / speed, 0.0, 0.0]
    for name in FINGER_JOINTS:
        _limit(spec.actuator(name), FINGER_TORQUE)
    return spec


HB16_V1 = replace(HB16, version=1, build_spec=build_spec_v1,
                  description=f"{HB16.description}; finger joints stall at {FINGER_TORQUE} N m, wrist at most "
                              f"1 m/s and pi rad/s")

HAND = HB16  # found by handbench.hands
HAND_VERSIONS = (HB16, HB16_V1)
