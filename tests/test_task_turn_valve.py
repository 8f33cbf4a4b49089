"""turn-valve: the regrasping expert turns the knob past pi on both hands; no single grasp could."""

from __future__ import annotations

import mujoco
import numpy as np
from handbench.tasks.turn_valve import INITIAL_ANGLE_RANGE, TARGET_ANGLE, TurnValve

from handbench.env import HandEnv
from handbench.generate import run_expert_episode

SEEDS = (0, 4, 6)  # long-strokes, short-strokes, short-strokes


TASK = "turn-valve"  # the shared `env` fixture (conftest.py) builds it with each hand


def count_grasps(env: HandEnv, seed: int) -> tuple[bool, int]:
    """Run the expert and count how many times it closed on the knob."""
    env.reset(seed=seed)
    expert = env.make_expert(seed)
    expert.reset()
    grasps, previous = 0, None
    for _ in range(env.task.max_episode_steps):
        _, _, terminated, _, info = env.step(expert.act())
        grasps += expert.phase == "turn" and previous != "turn"
        previous = expert.phase
        if terminated:
            return bool(info["is_success"]), grasps
    return False, grasps


def test_expert_turns_the_valve_with_regrasps(env: HandEnv) -> None:
    strategies = set()
    for seed in SEEDS:
        success, grasps = count_grasps(env, seed)
        assert success, f"{env.hand_spec.name}: expert failed on seed {seed}"
        assert env.task.valve_angle(env.data) >= TARGET_ANGLE
        assert grasps >= 2
        strategies.add(env.make_expert(seed).strategy)
    assert strategies == {"long-strokes", "short-strokes"}


def test_one_grasp_cannot_turn_far_enough(env: HandEnv) -> None:
    """The smallest turn the task asks for exceeds the span of every wrist hinge of the hand."""
    joint_ids = [env.model.joint(j).id for j in env.hand_spec.wrist_joints]
    hinge = env.model.jnt_type[joint_ids] == mujoco.mjtJoint.mjJNT_HINGE
    spans = env.hand.wrist_range[hinge, 1] - env.hand.wrist_range[hinge, 0]
    assert TARGET_ANGLE - INITIAL_ANGLE_RANGE[1] > spans.max()


def test_same_seed_gives_the_same_rollout(env: HandEnv) -> None:
    first = run_expert_episode(env, SEEDS[1])
    second = run_expert_episode(env, SEEDS[1])
    assert np.array_equal(first.actions, second.actions)
    assert np.array_equal(first.states, second.states)


def test_success_cannot_trigger_at_reset_or_by_waiting(env: HandEnv) -> None:
    _, info = env.reset(seed=SEEDS[0])
    assert not info["is_success"]
    start = env.task.valve_angle(env.data)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(env.home_ctrl)
        assert not terminated and not info["is_success"]
    assert reward < 5.0 and abs(env.task.valve_angle(env.data) - start) < 1e-3


def test_sample_is_seeded_and_in_range() -> None:
    task = TurnValve()
    a, b = task.sample(np.random.default_rng(7)), task.sample(np.random.default_rng(7))
    assert a.to_attrs() == b.to_attrs()
    assert INITIAL_ANGLE_RANGE[0] <= a.initial_angle <= INITIAL_ANGLE_RANGE[1] < TARGET_ANGLE
    assert 0.05 <= a.damping <= 0.25
