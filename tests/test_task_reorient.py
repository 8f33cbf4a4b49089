"""reorient (in-hand, palm up): not registered (its expert is below the 95% bar); the scene and the rules still hold.

The module does not export TASK, so these tests register the class for the test's process only.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from handbench.tasks import reorient
from handbench.tasks.reorient import HOLD_STEPS, PALM_UP_JOINT, PALM_UP_ROLL, Reorient, wrap_half_turn

from handbench.env import HandEnv
from handbench.hands import get_hand
from handbench.registry import _registry, task_names
from handbench.scene import make_scene
from handbench.seeding import EVAL_SEED_BASE

SEEDS = range(EVAL_SEED_BASE, EVAL_SEED_BASE + 3)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(_registry(), Reorient.name, {Reorient.version: Reorient})


def test_not_registered_while_below_the_bar():
    assert not hasattr(reorient, "TASK")
    assert Reorient.name not in task_names()


@pytest.mark.parametrize("hand", ["hb16", "shadow"])
def test_scene_builds_and_widens_only_the_roll_joint(hand):
    plain = make_scene(get_hand(hand)).compile()
    spec = make_scene(get_hand(hand))
    Reorient().build(spec)
    model = spec.compile()
    actuator, joint = PALM_UP_JOINT[hand]
    assert model.actuator(actuator).ctrlrange[1] > PALM_UP_ROLL >= model.joint(joint).range[0]
    assert model.joint(joint).range[1] > PALM_UP_ROLL
    changed = np.flatnonzero(np.any(plain.actuator_ctrlrange != model.actuator_ctrlrange, axis=1))
    assert changed.tolist() == [model.actuator(actuator).id]


@pytest.mark.parametrize("hand", ["hb16", "shadow"])
def test_palm_up_start_and_no_success_at_reset_or_when_idle(registered, hand):
    env = HandEnv(Reorient.name, hand)
    assert env.action_space.high[env.task.roll_index] > PALM_UP_ROLL
    for seed in SEEDS:
        _, info = env.reset(seed=seed)
        task: Reorient = env.task
        assert info["is_success"] is False
        assert env.data.ctrl[task.roll_index] == pytest.approx(PALM_UP_ROLL)
        assert abs(task.yaw_error(env.data)) > 0.9  # about a quarter turn away, never within the tolerance
        hold = env.data.ctrl.copy()
        for _ in range(HOLD_STEPS + 5):
            _, _, terminated, _, info = env.step(hold)
            assert not terminated and not info["is_success"]
        assert task.on_palm(env.data) and not task.wrist_moved  # it rests in the still, upturned palm


def test_the_goal_counts_only_with_a_still_wrist(registered):
    env = HandEnv(Reorient.name, "hb16")
    env.reset(seed=EVAL_SEED_BASE)
    task: Reorient = env.task
    hold = env.data.ctrl.copy()

    def turn_block_to_goal():
        qpos = env.data.qpos[task.block_qpos]
        qpos[3:] = [np.cos(task.goal_yaw / 2), 0, 0, np.sin(task.goal_yaw / 2)]
        mujoco.mj_forward(env.model, env.data)

    turn_block_to_goal()
    results = [env.step(hold)[4]["is_success"] for _ in range(HOLD_STEPS)]
    assert results[-1] and not any(results[:-1])

    env.reset(seed=EVAL_SEED_BASE)
    moved = hold.copy()
    moved[0] += 0.05  # slide the wrist sideways, then back
    env.step(moved)
    assert task.wrist_moved
    turn_block_to_goal()
    assert not any(env.step(hold)[4]["is_success"] for _ in range(HOLD_STEPS + 3))


def test_yaw_is_compared_modulo_a_half_turn():
    assert wrap_half_turn(np.pi) == pytest.approx(0.0)
    assert wrap_half_turn(np.pi / 2 + 0.1) == pytest.approx(-np.pi / 2 + 0.1)


def test_sample_is_seeded():
    a, b = Reorient().sample(np.random.default_rng(5)), Reorient().sample(np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
