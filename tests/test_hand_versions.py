"""Hand versions (issue 12): hb16 v1 has a real hand's force and speed limits; protocols pin the hand version.

hb-v1 pins none (every hand at v0, its scenes unchanged); hb-v2 pins hb16 v1, whose random floor no longer throws
objects above the height bound; Shadow has one version, so its hb-v2 scenes are the same with or without the pin.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

import handbench
from handbench import registry
from handbench.cli import main
from handbench.dataset import open_dataset
from handbench.errors import HandbenchError
from handbench.generate import EnvConfig, GenerateConfig, generate_demos, pin_task_version
from handbench.hands import get_hand, hand_versions
from handbench.hands.hb16 import FINGER_JOINTS, FINGER_TORQUE, WRIST, WRIST_LIMITS
from handbench.plausibility import fling_episodes
from handbench.protocol import load_protocol, parse_manifest
from handbench.rules import MAX_OBJECT_HEIGHT


def test_hb16_has_two_versions_and_shadow_one():
    assert hand_versions("hb16") == (0, 1) and hand_versions("shadow") == (0,)
    assert get_hand("hb16").version == 1 and get_hand("hb16", 0).version == 0  # newest by default
    with pytest.raises(HandbenchError, match=r"hand hb16 has no version 7; registered: v0, v1"):
        get_hand("hb16", 7)


def test_protocols_pin_the_hand_versions():
    assert load_protocol("hb-v1").hand_versions == {} and load_protocol("hb-v1").hand_version("hb16") == 0
    hb_v2 = load_protocol("hb-v2")
    assert hb_v2.hand_versions == {"hb16": 1, "shadow": 0}
    assert parse_manifest(hb_v2.to_json()).hand_versions == hb_v2.hand_versions  # written and read back
    with pytest.raises(HandbenchError, match="hand_versions must map"):
        parse_manifest(hb_v2.to_json().replace('"hand_versions": {', '"hand_versions": [{').replace(
            '"shadow": 0\n }', '"shadow": 0\n }]'))


def test_hb16_v1_has_force_and_speed_limits_and_v0_none():
    v0 = get_hand("hb16", 0).build_spec().compile()
    v1 = get_hand("hb16", 1).build_spec().compile()
    fingers = [v1.actuator(name).id for name in FINGER_JOINTS]
    assert not v0.actuator_forcelimited[fingers].any()
    assert v1.actuator_forcelimited[fingers].all() and np.all(v1.actuator_forcerange[fingers, 1] == FINGER_TORQUE)
    for name in WRIST:  # no-load speed = stall force / damping
        joint = v1.joint(name)
        force, speed = WRIST_LIMITS[mujoco.mjtJoint(int(joint.type[0]))]
        assert v1.actuator_forcerange[v1.actuator(name).id, 1] == force
        assert math.isclose(force / v1.dof_damping[joint.dofadr[0]], speed)
    assert v1.joint("wrist_rz").type[0] == mujoco.mjtJoint.mjJNT_HINGE


def test_make_env_with_a_protocol_builds_the_hand_version_it_pins():
    old = handbench.make_env("press-button", "hb16", protocol="hb-v1")  # press-button v0 is in both protocols
    new = handbench.make_env("press-button", "hb16", protocol="hb-v2")
    assert (old.hand.spec.version, new.hand.spec.version) == (0, 1)
    assert old.model_hash == registry.compiled_model("press-button", "hb16", 0, 0)[1] != new.model_hash
    shadow = [handbench.make_env("press-button", "shadow", protocol=p).model_hash for p in ("hb-v1", "hb-v2")]
    assert shadow[0] == shadow[1]
    with pytest.raises(HandbenchError, match="protocol hb-v2 pins hand hb16 v1, not v0"):
        handbench.make_env("press-button", "hb16", hand_version=0, protocol="hb-v2")
    env = handbench.make("lift-cube", "hb16", protocol="hb-v1")
    assert env.unwrapped.hand.spec.version == 0 and env.unwrapped.task.version == 0
    for made in (old, new, env):
        made.close()


@pytest.mark.parametrize(("task", "seed"), [("lift-cube", 1000042), ("pick-place", 1000022)])
def test_the_random_floor_no_longer_throws_the_cube(task, seed):
    """The two worst throws of hb-v2's first 50 eval seeds with hb16 v0 (5.74 m and 11.66 m high)."""
    steps = registry.get_task_class(task, 1).max_episode_steps
    flung, bounded = (fling_episodes(registry.make_env(task, "hb16", 1, hand_version), [seed], steps)[0]
                      for hand_version in (0, 1))
    assert not flung.physics_error and flung.highest > MAX_OBJECT_HEIGHT
    assert not bounded.physics_error and bounded.highest < MAX_OBJECT_HEIGHT


def test_check_physics_prints_the_figures(capsys):
    assert main(["check-physics", "--tasks", "pick-place", "press-button", "--hands", "hb16", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "pick-place" in out and "hb16 v1" in out and "press-button" in out


def test_datasets_record_the_hand_version_and_generation_refuses_another(tmp_path):
    for protocol, expected in (("hb-v1", 0), ("hb-v2", 1)):
        out = tmp_path / f"{protocol}.hdf5"
        generate_demos(GenerateConfig(EnvConfig("press-button", "hb16"), num_demos=1, out=out, progress=False,
                                      protocol=protocol))
        with open_dataset(out) as dataset:
            assert dataset.header.hand_version == expected
            assert ("hand_version" in dataset._file["data"].attrs) == bool(expected)  # v0: attributes as before
            assert dataset.header.model_hash == registry.compiled_model("press-button", "hb16", 0, expected)[1]
    config = GenerateConfig(EnvConfig("press-button", "hb16", hand_version=0), num_demos=1, out=tmp_path / "x.hdf5",
                            protocol="hb-v2")
    with pytest.raises(HandbenchError, match="protocol hb-v2 pins hand hb16 v1, not v0"):
        pin_task_version(config)


def test_leaderboard_marks_rows_of_an_older_hand_in_an_open_protocol_and_refuses_them_in_a_released_one():
    """hb-v1's published expert rows were made with hb16 v0: under a protocol pinning hb16 v1 they are 're-run
    pending' while it is open, and not from the pinned scene once it is released."""
    import dataclasses
    from pathlib import Path

    from handbench.leaderboard.provenance import check_model_hashes, older_hand_rows
    from handbench.leaderboard.validate import load_results_dir

    published = Path(__file__).resolve().parents[1] / "leaderboard" / "submissions" / "scripted-expert"
    run = next(load_results_dir(path) for path in sorted(published.glob("run-*"))
               if "hb16" in set(load_results_dir(path).episodes["hand"]))
    hb_v1 = load_protocol("hb-v1")
    check_model_hashes(run, hb_v1)  # made with what hb-v1 pins
    assert older_hand_rows(run, hb_v1) == []
    pinning = dataclasses.replace(hb_v1, hand_versions={"hb16": 1}, released=False)
    older = older_hand_rows(run, pinning)
    assert older and {(hand, made, pinned) for _, hand, made, pinned in older} == {("hb16", 0, 1)}
    check_model_hashes(run, pinning)  # open: accepted, shown as made with hb16 v0
    with pytest.raises(HandbenchError, match=r"with hb16 v1 compiles to"):
        check_model_hashes(run, dataclasses.replace(pinning, released=True))
