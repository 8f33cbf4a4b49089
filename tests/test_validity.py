"""Task validity (issue 12): physics failures end episodes, floor policies, success rules that need the skill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import handbench.generate as generate
from handbench.env import HandEnv
from handbench.evaluation.jobs import EpisodeJob, run_episode
from handbench.evaluation.policies import FactorySource, resolve_policy
from handbench.floors import HoldPolicy, RandomPolicy
from handbench.generate import EnvConfig, GenerateConfig, generate_demos
from handbench.registry import make_env

# The blow-up input: lift-cube/hb16, env seed 1000013, np.random.seed(1000013), uniform actions.
BLOWUP_SEED = 1_000_013


class GlobalUniform:
    """The issue's random policy: np.random.uniform over the action space (the evaluator seeds np.random)."""

    def __init__(self, env: HandEnv) -> None:
        self.low, self.high = env.action_space.low, env.action_space.high

    def reset(self) -> None:
        pass

    def act(self, observation) -> np.ndarray:
        return np.random.uniform(self.low, self.high)


def test_physics_blowup_input_truncates_the_episode_with_the_warning_named() -> None:
    env = make_env("lift-cube", "hb16", version=0, hand_version=0)  # hb-v1: v1 bounds the wrist, hb16 v1 all
    env.reset(seed=BLOWUP_SEED)
    np.random.seed(BLOWUP_SEED)
    policy = GlobalUniform(env)
    steps = 0
    while steps < 20:
        _, reward, terminated, truncated, info = env.step(policy.act(None))
        steps += 1
        if truncated:
            break
    assert truncated and not terminated, "the unstable step must truncate the episode"
    assert steps <= 12
    assert "mjWARN_BADQACC" in info["physics_error"]
    assert info["is_success"] is False and reward == 0.0


def test_a_stable_step_reports_no_physics_error() -> None:
    env = make_env("lift-cube", "hb16")
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(env.home_ctrl)
    assert not truncated and "physics_error" not in info


def test_evaluator_records_physics_error_as_a_failure() -> None:
    env = make_env("lift-cube", "hb16", version=0, hand_version=0)
    source = FactorySource(lambda env, seed: GlobalUniform(env), label="uniform")
    outcome = run_episode(env, source, EpisodeJob("lift-cube", "hb16", BLOWUP_SEED, 100))
    assert outcome.row["error"].startswith("step ") and "mjWARN_BADQACC" in outcome.row["error"]
    assert outcome.row["success"] is False and outcome.row["steps"] <= 12


def test_generate_demos_skips_and_counts_physics_failures(tmp_path: Path, monkeypatch) -> None:
    real = generate.run_expert_episode

    def unstable_on_seed_1(env, seed, action_noise=0.0, record=True):
        episode = real(env, seed, action_noise, record)
        if seed == 1:  # as if MuJoCo had reset the simulation mid-episode
            episode.success, episode.physics_error = False, "mjWARN_BADQACC (test)"
        return episode

    monkeypatch.setattr(generate, "run_expert_episode", unstable_on_seed_1)
    report = generate_demos(GenerateConfig(EnvConfig("lift-cube", "hb16"), num_demos=2, out=tmp_path / "d.hdf5",
                                           progress=False))
    assert report.num_demos == 2 and 1 in report.failed_seeds
    assert report.physics_error_seeds == [1]


def test_floor_policies_are_valid_and_reproducible() -> None:
    env = make_env("lift-cube", "hb16")
    env.reset(seed=3)
    random_policy = RandomPolicy(env.action_space.low, env.action_space.high, 3)
    first = [random_policy.act(None) for _ in range(5)]
    random_policy.reset()
    assert all(np.array_equal(a, b) for a, b in zip(first, [random_policy.act(None) for _ in range(5)], strict=True))
    assert all(env.action_space.contains(a) for a in first)
    other = RandomPolicy(env.action_space.low, env.action_space.high, 4).act(None)
    assert not np.array_equal(first[0], other)
    hold = HoldPolicy(env)
    hold.reset()
    np.testing.assert_array_equal(hold.act(None), env.data.ctrl.astype(np.float32))


@pytest.mark.parametrize("kind", ["random", "hold"])
def test_floor_policy_names_resolve_and_refuse_a_checkpoint(kind: str) -> None:
    from handbench.errors import HandbenchError

    assert resolve_policy(kind).label == kind
    with pytest.raises(HandbenchError, match="floor policy"):
        resolve_policy(kind, checkpoint="x.pt")


def test_check_experts_on_holdout_seeds_and_with_action_noise() -> None:
    from handbench.errors import HandbenchError
    from handbench.experts_check import HOLDOUT_SEEDS, check_experts
    from handbench.protocol import load_protocol, manifest_path

    protocols = [load_protocol(path.stem) for path in manifest_path("hb-v1").parent.glob("hb-v*.json")]
    eval_seeds = {seed for protocol in protocols for entry in protocol.tasks.values() for seed in entry.eval_seeds}
    demo_split_end = min(protocol.eval_seed_base for protocol in protocols)
    assert len(set(HOLDOUT_SEEDS)) == 100 and min(HOLDOUT_SEEDS) >= demo_split_end
    assert not eval_seeds & set(HOLDOUT_SEEDS)
    (check,) = check_experts(["lift-cube"], ["hb16"], num_seeds=2, split="holdout")
    assert check.episodes == 2 and check.passed
    (noisy,) = check_experts(["lift-cube"], ["hb16"], num_seeds=2, split="demo", action_noise=0.01)
    assert noisy.episodes == 2
    with pytest.raises(HandbenchError, match="unknown seed split"):
        check_experts(["lift-cube"], ["hb16"], split="train")


def test_generate_demos_warns_above_the_measured_expert_noise_limit() -> None:
    from handbench.tasks.lift_cube import LiftCube, LiftCubeV1

    from handbench.generate import action_noise_warning

    limit = LiftCubeV1.expert_noise_limit
    assert limit is not None and limit > 0, "hb-v2's lift-cube noise limit is measured (README, 'Action noise')"
    assert action_noise_warning(LiftCubeV1, limit) == ""
    warning = action_noise_warning(LiftCubeV1, 0.08)
    assert warning.startswith("warning: --action-noise 0.08 is above 0.01") and "\n" not in warning
    unmeasured = action_noise_warning(LiftCube, 0.08)  # hb-v1's version: not measured, no level claimed
    assert "expert's tolerance to action noise was not measured" in unmeasured and "\n" not in unmeasured
    assert action_noise_warning(LiftCube, 0.0) == ""


def test_generate_demos_warns_on_noise_for_the_in_hand_experts() -> None:
    """The in-hand planning experts' noise levels are measured at hb-v2's versions (reorient-cube noise-free only,
    rotate-block up to 0.02): noise above them gets one line; their older versions, never measured, get one line
    for any noise (v0 once ran silently for minutes at --action-noise 0.5, failing every seed)."""
    from handbench.generate import action_noise_warning
    from handbench.registry import get_task_class

    for task, limit in (("reorient-cube", 0.0), ("rotate-block", 0.02)):
        cls = get_task_class(task, 2)
        assert cls.expert_noise_limit == limit and action_noise_warning(cls, limit) == ""
        warning = action_noise_warning(cls, 0.5)
        assert warning.startswith(f"warning: --action-noise 0.5 is above {limit:g}, the highest level at which the "
                                  f"{task} v2 expert") and "\n" not in warning
        old = get_task_class(task, 1)
        assert old.expert_noise_limit is None and action_noise_warning(old, 0.0) == ""
        warning = action_noise_warning(old, 0.005)
        assert warning.startswith(f"warning: --action-noise 0.005: the {task} v1 expert's tolerance to action noise "
                                  "was not measured") and "\n" not in warning
