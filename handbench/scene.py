"""Scene composition with MjSpec: a hand, a table, lights and the standard cameras.

Tasks add their objects to the spec returned by :func:`make_scene`; every task therefore shares the same
table height (z = 0 is the table top), lighting, physics options and camera names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np

from handbench.hands import HandSpec

TABLE_HALF_SIZE = (0.45, 0.45, 0.02)
STANDARD_CAMERAS = ("overview", "top")
MAX_RENDER_SIZE = (480, 640)  # height, width of the offscreen buffer


def make_scene(hand: HandSpec) -> mujoco.MjSpec:
    """The hand on its mount above an empty table, with physics options shared by all tasks."""
    spec = hand.build_spec()
    spec.modelname = f"handbench-{hand.name}"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 5.0
    spec.visual.global_.offheight = MAX_RENDER_SIZE[0]
    spec.visual.global_.offwidth = MAX_RENDER_SIZE[1]
    spec.visual.quality.shadowsize = 1024

    world = spec.worldbody
    world.add_light(pos=[0.0, -0.3, 1.5], dir=[0.0, 0.2, -1.0], diffuse=[0.8, 0.8, 0.8], castshadow=True)
    world.add_light(pos=[0.6, 0.6, 1.0], dir=[-0.5, -0.5, -1.0], diffuse=[0.3, 0.3, 0.3], castshadow=False)
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1], pos=[0, 0, -0.75],
                   rgba=[0.25, 0.27, 0.3, 1], contype=0, conaffinity=0)
    table = world.add_body(name="table", pos=[0, 0, -TABLE_HALF_SIZE[2]])
    table.add_geom(name="table_top", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF_SIZE),
                   rgba=[0.62, 0.55, 0.47, 1], friction=[1.0, 0.01, 0.001])
    world.add_camera(name="overview", pos=[0.3, 0.36, 0.33], xyaxes=look_at([0.3, 0.36, 0.33], [0, 0, 0.06]),
                     fovy=45)
    world.add_camera(name="top", pos=[0.0, 0.05, 0.85], xyaxes=[1, 0, 0, 0, 1, 0], fovy=45)
    world.add_camera(name="side", pos=[0.65, 0.05, 0.3], xyaxes=look_at([0.65, 0.05, 0.3], [0, 0.02, 0.08]),
                     fovy=45)
    return spec


def model_hash(model: mujoco.MjModel) -> str:
    """sha256 of the binary compiled model (first 16 hex digits): any change to physics or geometry changes it.

    The binary includes the file paths the model was loaded from; hands load their mesh and texture files
    under relative names (see ``handbench.hands.shadow``), so the hash does not depend on the machine."""
    buffer = np.zeros(mujoco.mj_sizeModel(model), dtype=np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    return hashlib.sha256(buffer.tobytes()).hexdigest()[:16]


def look_at(position, target) -> list[float]:
    """Camera ``xyaxes`` for a camera at ``position`` looking at ``target`` with world z up."""
    forward = np.asarray(target, dtype=float) - np.asarray(position, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return [*right.tolist(), *up.tolist()]


def add_free_box(spec: mujoco.MjSpec, name: str, half_size: float, rgba, mass: float = 0.1,
                 friction: float = 1.2) -> mujoco.MjsBody:
    """A free-floating box body with a site at its centre (named ``<name>_site``)."""
    body = spec.worldbody.add_body(name=name, pos=[0, 0, half_size])
    body.add_freejoint(name=f"{name}_joint")
    body.add_geom(name=f"{name}_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half_size] * 3, rgba=rgba,
                  mass=mass, friction=[friction, 0.01, 0.001], condim=4)
    body.add_site(name=f"{name}_site", size=[0.005, 0.005, 0.005], rgba=[0, 0, 0, 0])
    return body


def add_goal_marker(spec: mujoco.MjSpec, name: str, radius: float, rgba=(0.1, 0.9, 0.2, 0.35)) -> None:
    """A mocap body with a translucent sphere that shows a goal position (no collisions)."""
    body = spec.worldbody.add_body(name=name, mocap=True, pos=[0, 0, 0.1])
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], rgba=list(rgba),
                  contype=0, conaffinity=0, group=1)


def set_box_half_size(model: mujoco.MjModel, geom_id: int, half_size: float) -> None:
    """Resize a box geom after compilation, keeping its collision bounds consistent."""
    model.geom_size[geom_id] = half_size
    model.geom_rbound[geom_id] = np.sqrt(3.0) * half_size
    model.geom_aabb[geom_id, 3:] = half_size


def set_body_mass(model: mujoco.MjModel, body_id: int, mass: float) -> None:
    """Scale a body's mass and inertia together (a uniform-density change)."""
    scale = mass / model.body_mass[body_id]
    model.body_mass[body_id] = mass
    model.body_inertia[body_id] *= scale


# What mujoco.mj_setConst recomputes from the masses and sizes an episode sets (restored before each episode).
DERIVED_MODEL_FIELDS = ("dof_M0", "dof_invweight0", "body_invweight0", "body_subtreemass", "bvh_aabb", "dof_length",
                        "cam_poscom0", "light_poscom0")


def box_inertia(mass: float, half_size: np.ndarray) -> np.ndarray:
    """Principal moments (kg m^2), shape (3,), of a solid box of ``mass`` (kg) and half sizes ``half_size`` (m)."""
    square = np.asarray(half_size, dtype=np.float64) ** 2
    return mass / 3.0 * (square.sum() - square)


class EpisodeMass:
    """Mixin for a task whose episodes draw an object's mass and size: they reach the whole dynamics.

    MuJoCo keeps constants derived at compilation (a free body's ``dof_M0``, the invweights the contact solver
    scales by) until ``mujoco.mj_setConst`` recomputes them. Setting ``body_mass`` alone, as the tasks' version 0
    did (and hb-v2's lift-cube and pick-place v1), made a 200 g cube fall at twice g and a 50 g one at half g.
    After the task's own ``apply`` this sets each object's inertia to its box's and recomputes the constants.
    Put it before the task class in the bases; the task names its objects' box geoms in ``object_geoms`` and adds
    ``DERIVED_MODEL_FIELDS`` to its ``model_fields``."""

    object_geoms: ClassVar[tuple[str, ...]]

    def bind(self, model: mujoco.MjModel, hand) -> None:
        super().bind(model, hand)  # type: ignore[misc]
        self._const_data = mujoco.MjData(model)  # mj_setConst's scratch: the env's data is never touched

    def apply(self, data: mujoco.MjData, params) -> None:
        super().apply(data, params)  # type: ignore[misc]
        model = self.model  # type: ignore[attr-defined]
        for name in self.object_geoms:
            geom = model.geom(name).id
            body = model.geom_bodyid[geom]
            model.body_inertia[body] = box_inertia(float(model.body_mass[body]), model.geom_size[geom])
        mujoco.mj_setConst(model, self._const_data)


@dataclass(frozen=True)
class FreeObject:
    """Ids and state slices of a body made by :func:`add_free_box`, looked up once per env."""

    body: int
    geom: int
    qpos: slice
    qvel: slice


def bind_free_object(model: mujoco.MjModel, name: str) -> FreeObject:
    return FreeObject(model.body(name).id, model.geom(f"{name}_geom").id,
                      free_joint_qpos(model, f"{name}_joint"), free_joint_qvel(model, f"{name}_joint"))


def free_joint_qpos(model: mujoco.MjModel, joint_name: str) -> slice:
    adr = model.joint(joint_name).qposadr[0]
    return slice(adr, adr + 7)


def free_joint_qvel(model: mujoco.MjModel, joint_name: str) -> slice:
    adr = model.joint(joint_name).dofadr[0]
    return slice(adr, adr + 6)


def subtree_bodies(model: mujoco.MjModel, root: int) -> set[int]:
    """Ids of ``root`` and every body below it (e.g. all bodies of a hand)."""
    bodies = {root}
    for body in range(root + 1, model.nbody):  # MuJoCo numbers children after their parent
        if int(model.body_parentid[body]) in bodies:
            bodies.add(body)
    return bodies


def finger_body_sets(model: mujoco.MjModel, fingertip_site_ids: dict[str, int], root_body: int) -> dict[str, set[int]]:
    """Bodies of each finger: from its fingertip's body up to, not including, the palm all fingers share.

    Lets a task tell which finger a contact belongs to, or which joints move one finger, for any hand.
    """
    chains: dict[str, set[int]] = {}
    for finger, site in fingertip_site_ids.items():
        chain, body = set(), int(model.site_bodyid[site])
        while body != 0:
            chain.add(body)
            body = int(model.body_parentid[body])
        chains[finger] = chain
    shared = set.intersection(*chains.values()) | {root_body}
    return {finger: chain - shared for finger, chain in chains.items()}
