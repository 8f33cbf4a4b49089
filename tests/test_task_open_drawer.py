"""open-drawer: hook and pinch experts open the drawer on both hands; a closed drawer never succeeds."""

from __future__ import annotations

import numpy as np
from handbench.tasks.open_drawer import OPEN_DISTANCE

from handbench.env import HandEnv
from handbench.generate import run_expert_episode
from handbench.pinned import make_env

SEEDS = (0, 3, 4)  # hook, hook, pinch


TASK = "open-drawer"  # the shared `env` fixture (conftest.py) builds it with each hand


def test_expert_opens_the_drawer(env: HandEnv) -> None:
    strategies = set()
    for seed in SEEDS:
        episode = run_expert_episode(env, seed, record=False)
        assert episode.success, f"{env.hand_spec.name}: expert failed on seed {seed}"
        assert env.task.opening(env.data) >= OPEN_DISTANCE
        strategies.add(episode.strategy)
    assert strategies == {"hook", "pinch"}


def test_success_cannot_trigger_at_reset_or_while_idle(env: HandEnv) -> None:
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert not info["is_success"] and not env.task.score(env.data).success
        assert env.task.opening(env.data) == 0.0
    for _ in range(10):
        _, _, terminated, _, info = env.step(env.home_ctrl.astype(np.float32))
        assert not terminated and not info["is_success"]
    assert env.task.opening(env.data) < 1e-3


def test_drawer_slides_along_its_pull_direction() -> None:
    env = make_env("open-drawer", "hb16")
    env.reset(seed=2)
    start = env.task.handle_position(env.data)
    env.data.qpos[env.task.joint_qpos] = 0.05
    env.set_full_state(env.full_state())  # recompute positions
    moved = env.task.handle_position(env.data) - start
    np.testing.assert_allclose(moved, 0.05 * env.task.pull_direction(env.data), atol=1e-9)
    yaw = env.episode.params.cabinet_yaw
    np.testing.assert_allclose(env.task.pull_direction(env.data), [np.sin(yaw), -np.cos(yaw), 0.0], atol=1e-9)


def test_hb16_expert_holds_finger_abduction_still() -> None:
    """The README's explanation of BC's open-drawer/hb16 result (*Why BC fails open-drawer with hb16*) rests on
    this: the hb16 expert's demonstrations hold thumb, index and ring abduction still (both strategies), so the
    baselines' state normaliser scales a learner's slightest deflection of them to hundreds of standard deviations.
    If the expert changes this, that README section must change too."""
    env = make_env("open-drawer", "hb16", protocol="hb-v2")
    joints = list(env.hand.spec.wrist_joints + env.hand.spec.finger_joints)
    positions = []  # agent_pos is the joint positions, then their speeds
    for seed in SEEDS:
        episode = run_expert_episode(env, seed)
        assert episode.success
        positions.append(episode.observations["agent_pos"][:, : len(joints)])
    std = np.concatenate(positions).std(0)
    still = {joint: float(std[joints.index(joint)]) for joint in ("thumb_abd", "index_abd", "ring_abd")}
    assert all(value < 1e-3 for value in still.values()), still  # rad; the sweep's 100 demos: 0.19-0.28 mrad
    assert std[joints.index("index_mcp")] > 0.1  # the fingers themselves do move
