"""The task contract, checked for every registered (task, version, hand): what the framework reads is declared,
episodes are deterministic, success never comes at reset or by waiting, per-episode model changes are
declared and undone, rewards are the sum of the declared terms, and the scripted expert succeeds on the first
eval seeds."""

from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest
from conftest import task_cases

from handbench.generate import run_expert_episode
from handbench.registry import compiled_model, get_task_class, make_env
from handbench.seeding import EVAL_SEED_BASE
from handbench.task import EpisodeParams

CASES = task_cases()
IDS = [f"{task}-v{version}-{hand}" for task, version, hand in CASES]
EXPERT_SEEDS = (EVAL_SEED_BASE, EVAL_SEED_BASE + 1)  # the first eval seeds; check-experts runs all 50
IDLE_STEPS = 12  # longer than every task's hold window


def model_arrays(model: mujoco.MjModel) -> dict[str, bytes]:
    """Every array field of a compiled model, as bytes (a bitwise comparison)."""
    out = {}
    for name in dir(model):
        if not name.startswith("_"):
            value = getattr(model, name)
            if isinstance(value, np.ndarray):
                out[name] = value.tobytes()
    return out


def rollout(env, seed: int, steps: int) -> tuple[list[np.ndarray], list[float], list[bool]]:
    """Full states, rewards and successes while the hand holds its home pose; checks on every step that the
    reward is the sum of the task's declared terms (``info["reward_terms"]``)."""
    env.reset(seed=seed)
    states, rewards, successes = [env.full_state()], [], []
    names = [term.name for term in env.task.reward_terms]
    for _ in range(steps):
        _, reward, _, _, info = env.step(env.home_ctrl)
        assert list(info["reward_terms"]) == names
        assert sum(info["reward_terms"].values()) == pytest.approx(reward, abs=1e-12)
        states.append(env.full_state())
        rewards.append(reward)
        successes.append(info["is_success"])
    return states, rewards, successes


def initial_state(env, seed: int) -> np.ndarray:
    """The simulator state and the ``environment_state`` observation (object and goal) at reset."""
    observation, _ = env.reset(seed=seed)
    return np.concatenate([env.full_state(), observation["environment_state"]])


@pytest.mark.parametrize(("task", "version", "hand"), CASES, ids=IDS)
def test_contract_is_declared_and_observations_have_the_declared_sizes(task, version, hand):
    cls = get_task_class(task, version)
    cls.check_contract()
    env = make_env(task, hand, version)
    obs, info = env.reset(seed=EVAL_SEED_BASE)
    assert info["is_success"] is False
    assert obs["environment_state"].shape == (cls.state_size,) and env.observation_space.contains(obs)
    params = env.episode.params
    assert isinstance(params, cls.params_type) and isinstance(params, EpisodeParams)
    assert env.task.params is params  # one object: the env's episode holds it, the task refers to it
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.__setattr__(dataclasses.fields(params)[0].name, None)
    json.dumps(params.to_attrs())


@pytest.mark.parametrize(("task", "version", "hand"), CASES, ids=IDS)
def test_episodes_are_deterministic_and_never_succeed_at_reset_or_by_waiting(task, version, hand):
    """Same seed, same states and rewards; holding still never succeeds; the reward is the sum of its terms."""
    env = make_env(task, hand, version)
    states, rewards, successes = rollout(env, EVAL_SEED_BASE, IDLE_STEPS)
    again, rewards_again, _ = rollout(env, EVAL_SEED_BASE, IDLE_STEPS)
    assert all(np.array_equal(a, b) for a, b in zip(states, again, strict=True)) and rewards == rewards_again
    assert not any(successes), "holding still must not succeed"
    assert not np.array_equal(initial_state(env, EVAL_SEED_BASE), initial_state(env, EVAL_SEED_BASE + 1)), \
        "different seeds should give different initial states or goals"


@pytest.mark.parametrize(("task", "version", "hand"), CASES, ids=IDS)
def test_per_episode_model_changes_are_declared_and_undone(task, version, hand):
    env = make_env(task, hand, version)
    base = model_arrays(compiled_model(task, hand, version)[0])
    env.reset(seed=EVAL_SEED_BASE)
    changed = {name for name, value in model_arrays(env.model).items() if value != base[name]}
    undeclared = changed - set(env.task.model_fields)
    assert not undeclared, f"{task} v{version} changes model fields it does not declare: {sorted(undeclared)}"
    for _ in range(3):
        env.step(env.home_ctrl)
    obs_b, _ = env.reset(seed=EVAL_SEED_BASE + 1)
    fresh = make_env(task, hand, version)
    fresh_obs, _ = fresh.reset(seed=EVAL_SEED_BASE + 1)
    after, clean = model_arrays(env.model), model_arrays(fresh.model)
    assert [name for name in clean if after[name] != clean[name]] == []
    assert np.array_equal(env.full_state(), fresh.full_state())
    for key in obs_b:
        assert np.array_equal(obs_b[key], fresh_obs[key]), key


# Known gaps, (task, version, hand) -> reason: an expert below the 95% bar. strict=True makes the test fail as
# soon as that changes, so a mark cannot go stale.
KNOWN_EXPERT_FAILURES: dict[tuple[str, int, str], str] = {
    ("reorient-cube", 1, "shadow"): "issue 13: the Shadow planning expert is below the bar on v1 (seed 1000000: "
                                    "the cube pushed 2.5 cm toward the wrist, out of the fingers' reach)",
}
EXPERT_CASES = [
    pytest.param(*case, id=case_id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_EXPERT_FAILURES[case]))
    if case in KNOWN_EXPERT_FAILURES else pytest.param(*case, id=case_id)
    for case, case_id in zip(CASES, IDS, strict=True)
]


@pytest.mark.parametrize(("task", "version", "hand"), EXPERT_CASES)
def test_expert_succeeds_on_the_first_eval_seeds(task, version, hand):
    """The fast guard: the build fails when an expert breaks (``handbench check-experts`` runs all 50 seeds)."""
    env = make_env(task, hand, version)
    for seed in EXPERT_SEEDS:
        episode = run_expert_episode(env, seed, record=False)
        assert episode.success, f"{task} v{version}/{hand} expert failed on seed {seed} ({episode.num_samples} steps)"
