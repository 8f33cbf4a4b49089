"""Rewards are named terms (issue 11, item 6): they sum to the reward on every step, and every description
(reward_doc, the README's list, ``handbench tasks --format md``) is generated from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handbench.commands.tasks import reward_list_md
from handbench.floors import RandomPolicy
from handbench.registry import get_task_class, make_env, task_names
from handbench.rewards import Term, describe, total, weighted

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("task", task_names())
def test_reward_terms_sum_to_the_reward_on_every_step(task: str) -> None:
    env = make_env(task, "hb16")
    names = [term.name for term in env.task.reward_terms]
    for seed, steps in ((0, 25), (1, 8)):  # the expert (touches, lifts, turns) then random actions
        obs, _ = env.reset(seed=seed)
        policy = (env.make_expert(seed) if seed == 0
                  else RandomPolicy(env.action_space.low, env.action_space.high, seed))
        policy.reset()
        for _ in range(steps):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs))
            if truncated:
                break
            assert list(info["reward_terms"]) == names
            assert sum(info["reward_terms"].values()) == pytest.approx(reward, abs=1e-12)
            assert total(info["reward_terms"]) == reward
            if terminated:
                break


@pytest.mark.parametrize("task", task_names())
def test_reward_doc_is_generated_from_the_terms(task: str) -> None:
    cls = get_task_class(task)
    assert cls.reward_doc == describe(cls.reward_terms)
    for term in cls.reward_terms:
        assert term.name in cls.reward_doc and term.doc in cls.reward_doc


def test_readme_reward_list_is_the_generated_one() -> None:
    readme = README.read_text()
    for line in reward_list_md().splitlines():
        assert line in readme, f"README's reward list is stale; paste `handbench tasks --format md`'s list:\n{line}"


def test_weighted_terms_and_their_description() -> None:
    terms = (Term("reach", 1.0, "closeness"), Term("lift", 2.0, "height"), Term("penalty", -1.0, "touching"))
    values = weighted(terms, {"reach": 0.5, "lift": 0.25, "penalty": 1.0})
    assert values == {"reach": 0.5, "lift": 0.5, "penalty": -1.0}
    assert total(values) == 0.0
    assert describe(terms) == "reach: closeness; lift x2: height; penalty x-1: touching"
    with pytest.raises(KeyError):
        weighted(terms, {"reach": 1.0})
    assert np.isclose(total({}), 0.0)
