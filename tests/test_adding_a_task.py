"""The README's "Adding a task" guide works as written: a task defined in a module of its own, outside the package,
is registered through the public API and runs like any other (gymnasium id, expert, contract), touching no
other file."""

from __future__ import annotations

import pytest
import test_task_contract as contract  # its checks, called for the tiny task (not collected here)

import handbench
from handbench.errors import HandbenchError
from handbench.generate import run_expert_episode
from handbench.registry import _registry
from handbench.task import Task

TINY_TASK = '''
"""raise-hand: lift the open hand above a height drawn per episode (a minimal handbench task)."""

from dataclasses import dataclass

import mujoco
import numpy as np

from handbench import rewards
from handbench.expert import Expert, WristMotion
from handbench.rewards import Term
from handbench.task import EpisodeParams, Task


@dataclass(frozen=True)
class RaiseParams(EpisodeParams):
    height: float  # m above the table the grasp site must reach


class RaiseHandExpert(Expert["RaiseHand"]):
    def on_reset(self) -> None:
        self.motion = WristMotion(self.hand.grasp_site_pos(self.data))

    def plan(self) -> np.ndarray:
        goal = self.motion.position.copy()
        goal[2] = self.params.height + 0.02
        self.motion.toward(goal)
        wrist = self.hand.wrist_ik(self.data, self.motion.position, self.motion.rotation)
        return self.hand.action(wrist, self.hand.synergy("open", 0.0))


class RaiseHand(Task):
    name = "raise-hand"
    version = 0
    order = 99
    skill = "reach"
    description = "Raise the open hand above a marked height."
    success_rule = "grasp site above the episode's height"
    reward_terms = (Term("height", 1.0, "grasp site height / target height (max 1)"),
                    Term("success", 5.0, "1 on success"))
    max_episode_steps = 30
    state_size = 1
    params_type = RaiseParams
    expert = RaiseHandExpert
    model_fields = ("site_pos",)  # the marker moves to the episode's height

    def build(self, spec: mujoco.MjSpec) -> None:
        spec.worldbody.add_site(name="target", pos=[0, 0, 0.3], size=[0.01, 0, 0], rgba=[0.1, 0.9, 0.2, 0.5])

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.target = model.site("target").id

    def sample(self, rng: np.random.Generator) -> RaiseParams:
        return RaiseParams(height=float(rng.uniform(0.26, 0.30)))

    def apply(self, data: mujoco.MjData, params: RaiseParams) -> None:
        self.model.site_pos[self.target, 2] = params.height

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        return np.array([self.params.height])

    def score(self, data: mujoco.MjData):
        height = self.hand.grasp_site_pos(data)[2]
        success = height >= self.params.height
        return self.step_score({"height": min(height / self.params.height, 1.0),
                                "success": rewards.flag(success)}, success)


TASKS = (RaiseHand,)
'''


@pytest.fixture
def tiny_task_module(temporary_module):
    """The tiny task's module, imported from a temporary folder; the registry is left as it was afterwards."""
    module = temporary_module("raise_hand", TINY_TASK)
    before = set(_registry())
    yield module
    for name in set(_registry()) - before:
        del _registry()[name]


def test_a_task_from_its_own_module_registers_and_runs(tiny_task_module):
    for task_class in tiny_task_module.TASKS:
        handbench.register_task(task_class)
    assert "raise-hand" in handbench.task_names()
    for hand in ("hb16", "shadow"):
        env = handbench.make("raise-hand", hand)  # gymnasium.make, with the task's TimeLimit
        assert env.spec.id == f"handbench/raise-hand-{hand}-v0" and env.spec.max_episode_steps == 30
        obs, info = env.reset(seed=0)
        assert obs["environment_state"].shape == (1,) and not info["is_success"]
        episode = run_expert_episode(handbench.make_env("raise-hand", hand), seed=3)
        assert episode.success and episode.num_samples < 30
        # the guide's step 5: the task-contract test's checks pass for it
        contract.test_contract_is_declared_and_observations_have_the_declared_sizes("raise-hand", 0, hand)
        contract.test_episodes_are_deterministic_and_never_succeed_at_reset_or_by_waiting("raise-hand", 0, hand)
        contract.test_per_episode_model_changes_are_declared_and_undone("raise-hand", 0, hand)
        contract.test_expert_succeeds_on_the_first_eval_seeds("raise-hand", 0, hand)


def test_an_incomplete_task_is_refused_with_what_it_lacks():
    class HalfDone(Task):
        name = "half-done"
        version = 0
        expert = object

    with pytest.raises(HandbenchError, match=r"HalfDone: order is not declared; .*state_size is not declared; .*"
                                             r"expert must be an Expert subclass"):
        handbench.register_task(HalfDone)
    assert "half-done" not in handbench.task_names()


def test_a_broken_task_module_is_one_line_for_every_command(monkeypatch, capsys):
    """A module of tasks/ that does not import (or breaks the contract) must not crash `import handbench` or the
    CLI with a traceback: the registry names the module in one HandbenchError, which a command prints as one line."""
    import handbench.registry as registry
    from handbench.cli import main

    real_import = registry.importlib.import_module

    def broken_import(name, *args, **kwargs):
        if name == "handbench.tasks.lift_cube":
            raise NameError("name 'WristMotoin' is not defined")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(registry.importlib, "import_module", broken_import)
    _registry.cache_clear()
    try:
        with pytest.raises(HandbenchError, match=r"task module handbench.tasks.lift_cube does not import: NameError"):
            handbench.task_names()
        assert main(["tasks"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["handbench tasks: error: task module handbench.tasks.lift_cube does not import: NameError: "
                       "name 'WristMotoin' is not defined"]
    finally:
        monkeypatch.undo()
        _registry.cache_clear()
    assert "lift-cube" in handbench.task_names()
