"""What success rules check besides geometry: which parts of the hand touch an object, and bounds on motion.

Success must mean the skill was done: an object counts as held only while the hand grips it (the thumb
and at least one other finger touching it), a drawer or valve counts as worked only by the progress made
while the hand touches its handle or knob, and an object moving faster or higher than a hand can carry it
disqualifies the step. These helpers work for every hand: the parts of the hand are found from the
hand's fingertip sites (``scene.finger_body_sets``), never from a hand's name.
"""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np

from handbench.hands import BoundHand
from handbench.scene import finger_body_sets, subtree_bodies

PALM = "palm"  # any part of the hand that is not one of the fingertip chains (palm, wrist, extra fingers)
WORKING_DISTANCE = 0.005  # m: a hand part this close to a handle or knob is working it
# Bounds a carried object stays within (the experts move at most 0.24 m/s and lift at most 0.3 m).
MAX_HELD_SPEED = 0.5  # m/s, linear speed of an object counted as held or resting
MAX_OBJECT_HEIGHT = 0.5  # m above the table


class HandContacts:
    """Which parts of the hand (finger names or ``palm``) touch a set of geoms, from ``data.contact``."""

    def __init__(self, model: mujoco.MjModel, hand: BoundHand) -> None:
        root = model.body(hand.spec.root_body).id
        self.model = model
        self.part_of_body = {body: PALM for body in subtree_bodies(model, root)}
        for finger, bodies in finger_body_sets(model, hand.fingertip_site_ids, root).items():
            for body in bodies:
                self.part_of_body[body] = finger
        self.hand_geoms = np.array([g for g in range(model.ngeom) if int(model.geom_bodyid[g]) in self.part_of_body
                                    and (model.geom_contype[g] or model.geom_conaffinity[g])])
        self._fromto = np.zeros(6)

    def parts_within(self, data: mujoco.MjData, geoms: Iterable[int], distance: float) -> set[str]:
        """Hand parts with a collidable geom within ``distance`` (m) of any of ``geoms``.

        Unlike a contact, this also holds while the hand cages an object it pulls (a pinch round a bar
        touches it only in some physics substeps of a control step)."""
        hand_pos = data.geom_xpos[self.hand_geoms]
        hand_radius = self.model.geom_rbound[self.hand_geoms]
        parts: set[str] = set()
        for geom in geoms:
            gaps = np.linalg.norm(hand_pos - data.geom_xpos[geom], axis=1) - hand_radius - self.model.geom_rbound[geom]
            for hand_geom in self.hand_geoms[gaps < distance]:
                part = self.part_of_body[int(self.model.geom_bodyid[hand_geom])]
                if part not in parts and mujoco.mj_geomDistance(self.model, data, int(hand_geom), int(geom),
                                                                distance, self._fromto) < distance:
                    parts.add(part)
        return parts

    def parts_touching(self, data: mujoco.MjData, geoms: Iterable[int]) -> set[str]:
        """Hand parts in contact with any of ``geoms`` (contacts of the last step)."""
        targets = set(geoms)
        parts: set[str] = set()
        for contact in data.contact[: data.ncon]:
            g1, g2 = int(contact.geom1), int(contact.geom2)
            other = g2 if g1 in targets else g1 if g2 in targets else -1
            if other >= 0:
                part = self.part_of_body.get(int(self.model.geom_bodyid[other]))
                if part is not None:
                    parts.add(part)
        return parts

    def touches(self, data: mujoco.MjData, geoms: Iterable[int]) -> bool:
        return bool(self.parts_touching(data, geoms))


def is_grip(parts: set[str]) -> bool:
    """A grip: the thumb and at least one other finger touch the object, or the palm and two fingers."""
    fingers = len(parts - {"thumb", PALM})
    return ("thumb" in parts and fingers >= 1) or (PALM in parts and fingers >= 2)


def speed(free_joint_qvel: np.ndarray) -> float:
    """Linear speed (m/s) of a free body from its free joint's velocity (first three entries)."""
    return float(np.linalg.norm(free_joint_qvel[:3]))


# ---------------------------------------------------------------------------------------------- plausible effort
# Every hand's first six actuators drive its 6-DoF wrist (x, y, z, rx, ry, rz; the HandSpec action layout).
WRIST_ACTUATORS = 6
# What the wrist servos may exert, like the arm a real hand is mounted on (a 10 kg-payload arm such as a UR10
# pushes ~100 N at the flange and its wrist joints give 56 N m). Without a bound a position target across the
# workspace accelerates the hand to metres per second within one control step, and a cube hit by it flies
# off (13.75 m high, issue 12). 50 N m is what the Shadow hand's wrist needs to turn the valve in time.
WRIST_FORCE_LIMIT = 100.0  # N, translation
WRIST_TORQUE_LIMIT = 50.0  # N m, rotation


def limit_wrist_effort(spec: mujoco.MjSpec) -> None:
    """Cap the wrist actuators' force (``forcerange``) in a scene spec; the finger servos are weak already."""
    for actuator in list(spec.actuators)[:WRIST_ACTUATORS]:
        slide = spec.joint(actuator.target).type == mujoco.mjtJoint.mjJNT_SLIDE
        limit = WRIST_FORCE_LIMIT if slide else WRIST_TORQUE_LIMIT
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-limit, limit]


class BoundedWristTask:
    """Mixin for hb-v2 task versions: the scene's wrist actuators get bounded force (``limit_wrist_effort``)
    and the task a :class:`HandContacts` (``self.contacts``). Put it before the task class in the bases."""

    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)  # type: ignore[misc]
        limit_wrist_effort(spec)

    def bind(self, model: mujoco.MjModel, hand: BoundHand) -> None:
        super().bind(model, hand)  # type: ignore[misc]
        self.contacts = HandContacts(model, hand)


class HeldObjectTask(BoundedWristTask):
    """Mixin for hb-v2 tasks that carry a free object: :meth:`held` is the hold-window condition."""

    HELD = (f"held by the hand (thumb and another finger, or palm and two fingers, touching it), moving "
            f"< {MAX_HELD_SPEED} m/s and < {MAX_OBJECT_HEIGHT} m above the table")

    def held(self, data: mujoco.MjData, geom: int, qvel: slice, position: np.ndarray) -> bool:
        """The hand grips the object (geom ``geom``, free-joint velocity ``qvel``) and it moves slowly and low."""
        return (is_grip(self.contacts.parts_touching(data, (geom,)))
                and speed(data.qvel[qvel]) < MAX_HELD_SPEED and position[2] < MAX_OBJECT_HEIGHT)
