"""The Hand interface of both hands: compilation, action layout, ranges, synergies, wrist IK, provenance."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pandas as pd
import pytest

from handbench.hands import FINGERS, HANDS, BoundHand, get_hand, yaw_quat
from handbench.hands.shadow import adroit_model_path
from handbench.registry import make_env
from handbench.scene import make_scene

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRED_SYNERGIES = ("open", "power", "pinch", "hook", "point_index", "point_middle", "point_ring")


@pytest.fixture(scope="module", params=sorted(HANDS))
def bound(request) -> BoundHand:
    spec = make_scene(get_hand(request.param))
    return BoundHand(get_hand(request.param), spec.compile())


def test_hand_compiles_with_a_six_dof_wrist_and_named_fingers(bound):
    spec = bound.spec
    assert bound.n_wrist == 6
    assert len(spec.finger_joints) >= 16
    assert set(FINGERS) <= set(spec.fingers)
    assert len(spec.touch_sensors) >= len(FINGERS)
    assert bound.touch(mujoco.MjData(bound.model)).shape == (len(spec.touch_sensors),)


def test_actuators_are_wrist_then_fingers(bound):
    model = bound.model
    joints = bound.spec.wrist_joints + bound.spec.finger_joints
    for actuator, joint in enumerate(joints):
        assert model.actuator_trntype[actuator] == mujoco.mjtTrn.mjTRN_JOINT
        assert model.joint(int(model.actuator_trnid[actuator, 0])).name == joint


def test_ctrlrange_inside_joint_range(bound):
    model = bound.model
    joint_ids = model.actuator_trnid[bound.actuator_ids, 0]
    low, high = model.jnt_range[joint_ids, 0], model.jnt_range[joint_ids, 1]
    assert np.all(model.jnt_limited[joint_ids])
    assert np.all(bound.ctrl_low >= low - 1e-9) and np.all(bound.ctrl_high <= high + 1e-9)
    assert np.all(bound.ctrl_low < bound.ctrl_high)


def test_every_synergy_is_inside_the_ctrlrange(bound):
    assert set(REQUIRED_SYNERGIES) <= set(bound.synergy_names)
    low, high = bound.ctrl_low[bound.n_wrist:], bound.ctrl_high[bound.n_wrist:]
    for name in bound.synergy_names:
        for level in (0.0, 0.5, 1.0):
            pose = bound.synergy(name, level)
            assert np.all(pose >= low - 1e-9) and np.all(pose <= high + 1e-9), (name, level)
    assert not np.allclose(bound.synergy("power"), bound.synergy("open"))


def test_power_grasp_closes_the_fingers_around_the_grasp_site(bound):
    """Fingertips of the power synergy end near the grasp site (where a grasped object's centre sits)."""
    data = mujoco.MjData(bound.model)
    data.qpos[bound.finger_qpos] = bound.synergy("open")
    mujoco.mj_kinematics(bound.model, data)
    site = bound.grasp_site_pos(data)
    open_dist = {f: np.linalg.norm(p - site) for f, p in bound.fingertip_positions(data).items()}
    data.qpos[bound.finger_qpos] = bound.synergy("power")
    mujoco.mj_kinematics(bound.model, data)
    power_dist = {f: np.linalg.norm(p - bound.grasp_site_pos(data)) for f, p in bound.fingertip_positions(data).items()}
    for finger in FINGERS:
        assert power_dist[finger] < 0.05 < open_dist[finger], finger


def test_power_grasp_site_turns_the_offset_with_the_hand(bound):
    """The object's centre sits at ``power_grasp_offset`` from the grasp site, in the turned hand's frame."""
    centre = np.array([0.05, -0.02, 0.03])
    offset = np.asarray(bound.spec.power_grasp_offset)
    assert np.allclose(bound.power_grasp_site(centre), centre - offset)
    turned = bound.power_grasp_site(centre, yaw_quat(np.pi / 2))  # a quarter turn maps (x, y) to (-y, x)
    assert np.allclose(turned, centre - [-offset[1], offset[0], offset[2]])
    assert np.linalg.norm(offset) < 0.05  # the object stays inside the closed hand


@pytest.mark.parametrize("hand", sorted(HANDS))
def test_wrist_ik_reaches_targets_within_5mm(hand):
    """Commanded IK targets are reached in simulation (servo + IK), not only kinematically."""
    env = make_env("lift-cube", hand)
    env.reset(seed=0)
    env.data.qpos[env.task.cube_qpos.start:env.task.cube_qpos.start + 3] = [0.4, 0.4, 0.03]  # out of the way
    fingers = env.hand.synergy("open")
    for target, yaw in (((0.1, -0.1, 0.08), 0.8), ((-0.12, 0.12, 0.25), -1.2), ((0.0, 0.0, 0.15), 0.0)):
        wrist = env.hand.wrist_ik(env.data, np.array(target), yaw_quat(yaw))
        for _ in range(40):
            env.step(env.hand.action(wrist, fingers))
        assert np.linalg.norm(env.hand.grasp_site_pos(env.data) - target) < 0.005, (hand, target)


def test_shadow_is_loaded_from_installed_gymnasium_robotics():
    path = Path(adroit_model_path()).resolve()
    package_dir = Path(importlib.util.find_spec("gymnasium_robotics").origin).resolve().parent
    assert package_dir in path.parents
    source_dirs = [REPO_ROOT / name for name in ("assets", "handbench", "tasks", "baselines", "leaderboard")]
    assert not any(folder in path.parents for folder in source_dirs)
    copied = [p for folder in source_dirs for p in folder.rglob("*")
              if p.suffix.lower() in (".stl", ".obj", ".msh") or "adroit" in p.name.lower()]
    assert not copied


def _blas_kernels_this_cpu_runs() -> list[str]:
    """OpenBLAS kernel names (``OPENBLAS_CORETYPE``) this CPU can run, besides the one picked by default."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    kernels = ["Prescott"] if "sse3" in flags or "pni" in flags else []
    if {"avx2", "fma"} <= set(flags):
        kernels.append("Haswell")
    return kernels


def test_shadow_scene_is_the_same_model_whatever_blas_kernel_numpy_picks():
    """The compiled Shadow scene, and so its model hash, is bit-identical under every BLAS kernel this CPU runs
    (numpy's OpenBLAS picks one for the CPU when it loads: AVX-512 and AVX2 kernels rounded the wrist pivot
    differently) and is the scene the hb-v2 Shadow results were recorded on."""
    recorded = REPO_ROOT / "baselines/sweeps/hb-v2/results/state-expert-press-button-shadow/episodes.csv"
    (expected,) = set(pd.read_csv(recorded, usecols=["model_hash"], dtype=str)["model_hash"])
    code = ("from handbench.protocol import load_protocol; from handbench.registry import compiled_model; "
            "p = load_protocol('hb-v2'); "
            "print(compiled_model('press-button', 'shadow', p.task('press-button').task_version, "
            "p.hand_version('shadow'))[1])")
    for kernel in [None, *_blas_kernels_this_cpu_runs()]:
        env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
        if kernel:
            env["OPENBLAS_CORETYPE"] = kernel
        digest = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert digest.stdout.strip() == expected, kernel
