"""hb-v2's success rules (issue 12): floors fail, throws and knocks do not count, joint limits hold."""

from __future__ import annotations

import numpy as np
import pytest

from handbench.floors import HoldPolicy, RandomPolicy
from handbench.registry import make_env

BLOWUP_SEED = 1_000_013
NOISY_DEMO_LEVEL = 0.02  # above the expert's 0.01 limit: noisy (the issue kept throws at 0.08), yet 9 in 10 succeed
# ---------------------------------------------------------------------------------------------- hb-v2 rules
HANDS = ("hb16", "shadow")


def _v2_tasks() -> list[tuple[str, int]]:
    from handbench.protocol import load_protocol

    protocol = load_protocol("hb-v2")
    return [(name, entry.task_version) for name, entry in protocol.tasks.items()]


@pytest.mark.parametrize("hand", HANDS)
def test_random_floor_fails_the_first_eval_seeds_of_every_hb_v2_task(hand: str) -> None:
    from handbench.protocol import load_protocol

    protocol = load_protocol("hb-v2")
    for task, version in _v2_tasks():
        env = make_env(task, hand, version=version)
        for seed in protocol.task(task).eval_seeds[:3]:
            obs, _ = env.reset(seed=seed)
            policy = RandomPolicy(env.action_space.low, env.action_space.high, seed)
            for _ in range(env.task.max_episode_steps):
                obs, _, terminated, truncated, info = env.step(policy.act(obs))
                assert not info["is_success"], f"random actions solved {task} v{version}/{hand} seed {seed}"
                if terminated or truncated:
                    break


def _throw_cube(version: int) -> bool:
    """Launch the lift-cube cube upward (as a flailing hand does) with the hand at rest; True if it counts."""
    env = make_env("lift-cube", "hb16", version=version)
    env.reset(seed=BLOWUP_SEED)
    cube = env.task.cube_qpos
    env.data.qpos[cube.start] += 0.3  # beside the hand, so nothing stops the flight
    env.data.qpos[cube.start + 2] += 0.15
    env.data.qvel[env.task.cube_qvel.start + 2] = 4.5  # m/s up: above the lift height for ~0.8 s > the hold window
    hold = HoldPolicy(env)
    for _ in range(40):
        _, _, terminated, _, info = env.step(hold.act(None))
        if terminated:
            return True
    return False


def test_a_thrown_cube_is_not_a_lift() -> None:
    assert _throw_cube(version=0), "the scripted throw should pass hb-v1's height-only rule (else it tests nothing)"
    assert not _throw_cube(version=1)


@pytest.mark.parametrize("version", [1])
def test_the_drawer_cannot_pass_its_slide(version: int) -> None:
    from handbench.tasks.open_drawer import DRAWER_TRAVEL, SLIDE_TOLERANCE

    env = make_env("open-drawer", "hb16", version=version)
    env.reset(seed=1_000_000)
    drawer = env.model.body("drawer").id
    widest = 0.0
    for _ in range(30):  # pulled harder than the wrist can (its force is capped at 100 N)
        env.data.xfrc_applied[drawer, :3] = 300.0 * env.task.pull_direction(env.data)
        env.step(env.home_ctrl)
        widest = max(widest, env.task.opening(env.data))
    assert DRAWER_TRAVEL - 0.005 < widest <= DRAWER_TRAVEL + SLIDE_TOLERANCE


def test_a_drawer_knocked_open_without_the_handle_does_not_count() -> None:
    env = make_env("open-drawer", "hb16", version=1)
    env.reset(seed=1_000_000)
    drawer = env.model.body("drawer").id
    for _ in range(20):  # opened by a push (no hand near the handle)
        env.data.xfrc_applied[drawer, :3] = 60.0 * env.task.pull_direction(env.data)
        _, _, terminated, _, info = env.step(env.home_ctrl)
        assert not terminated
    assert env.task.opening(env.data) > 0.09  # open far enough: only the handle rule refuses it


def test_a_valve_turned_without_the_hand_does_not_count() -> None:
    env = make_env("turn-valve", "hb16", version=1)
    env.reset(seed=1_000_000)
    for _ in range(30):  # a torque on the hinge (a blow, or anything but the hand) turns the knob past pi
        env.data.qfrc_applied[env.task.hinge_dof] = 0.5
        _, _, terminated, _, _ = env.step(env.home_ctrl)
        assert not terminated
    assert env.task.valve_angle(env.data) >= np.pi


def test_kept_noisy_lift_cube_demos_hold_the_cube_through_the_hold_window(tmp_path) -> None:
    """The issue's noisy dataset kept throws as successes; under hb-v2 every kept demo is a real lift."""
    from handbench.tasks.lift_cube import HOLD_STEPS, LIFT_HEIGHT

    from handbench.dataset import open_dataset
    from handbench.generate import EnvConfig, GenerateConfig, generate_demos
    from handbench.rules import HandContacts, is_grip

    out = tmp_path / "noisy.hdf5"
    generate_demos(GenerateConfig(EnvConfig("lift-cube", "hb16"), num_demos=3, action_noise=NOISY_DEMO_LEVEL,
                                  out=out, progress=False))
    env = make_env("lift-cube", "hb16", version=1)
    contacts = HandContacts(env.model, env.hand)
    with open_dataset(out) as dataset:
        episodes = list(dataset)
    assert len(episodes) == 3
    for episode in episodes:
        env.reset(seed=episode.seed)
        gripped, lifted = [], []
        for action in episode.actions:  # replay: the env is deterministic, so this is the recorded episode
            env.step(action)
            gripped.append(is_grip(contacts.parts_touching(env.data, (env.task.cube_geom,))))
            lifted.append(env.task.cube_position(env.data)[2] - env.task.start_height >= LIFT_HEIGHT)
        assert all(gripped[-HOLD_STEPS:]) and all(lifted[-HOLD_STEPS:]), f"demo of seed {episode.seed} is no lift"


@pytest.mark.parametrize("task", ["lift-cube", "pick-place"])
def test_hb_v2_cube_falls_at_g_whatever_mass_the_episode_draws(task: str) -> None:
    """v1 set the drawn mass without recomputing MuJoCo's derived constants, so the cube fell at the compiled
    mass's rate (a heavier cube faster than g); hb-v2's v2 recomputes them and keeps the box's inertia."""
    import mujoco

    from handbench.protocol import load_protocol
    from handbench.scene import box_inertia

    assert load_protocol("hb-v2").task(task).task_version == 2
    falls: dict[int, list[float]] = {1: [], 2: []}
    for version in falls:
        env = make_env(task, "hb16", version=version)
        for seed in (1_000_000, 1_000_001, 1_000_002):
            env.reset(seed=seed)
            cube, model, data = env.task, env.model, env.data
            position = np.arange(model.nq)[cube.cube_qpos][:3]
            data.qpos[position] = [5.0, 5.0, -5.0]  # far from everything: free fall
            data.qvel[cube.cube_qvel] = 0.0
            mujoco.mj_forward(model, data)
            falls[version].append(float(data.qacc[cube.cube_qvel][2]))
            if version == 2:
                np.testing.assert_allclose(model.body_inertia[cube.cube_body],
                                           box_inertia(model.body_mass[cube.cube_body],
                                                       model.geom_size[cube.cube_geom]))
        env.close()
    assert falls[2] == pytest.approx([-9.81] * 3)
    assert max(abs(a + 9.81) for a in falls[1]) > 1.0  # the drawn masses are not the compiled one
