"""check-inputs: a policy's state inputs measured in its demonstrations' standard deviations, and pinned on request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handbench.cli import main as cli_main
from handbench.errors import HandbenchError
from handbench.input_check import InspectedPolicy, check_inputs, select_dimensions, state_dimension_names
from handbench.pinned import make_env
from handbench.training.normalizer import fit_policy_normalizer
from handbench.training.spec import ObsActionSpec
from handbench.training.trainer import TrainRequest, train

STATE_KEYS = ("agent_pos", "environment_state", "tactile")


class Recorder:
    """A stand-in trained policy: a real normaliser and spec; remembers what it was shown."""

    def __init__(self, normalizer, spec) -> None:
        self.normalizer, self.spec, self.seen = normalizer, spec, []

    def reset(self) -> None:
        self.seen = []

    def act(self, observation):
        self.seen.append(np.concatenate([np.asarray(observation[k]) for k in STATE_KEYS]))
        return np.zeros(3, dtype=np.float32)


@pytest.fixture(scope="module")
def lift_env():
    env = make_env("lift-cube", "hb16", protocol="hb-v2")
    yield env
    env.close()


def test_records_normalised_inputs_and_pins_chosen_dimensions(lift_env) -> None:
    observation, _ = lift_env.reset(seed=3)
    state = np.concatenate([observation[k] for k in STATE_KEYS]).astype(np.float64)
    rng = np.random.default_rng(0)
    demos = state + rng.normal(0.0, 0.01, (64, len(state)))
    normalizer = fit_policy_normalizer(demos, rng.normal(size=(64, 3)))
    names = state_dimension_names(lift_env, STATE_KEYS)
    assert len(names) == len(state) and names[0] == "wrist_x.pos" and names[-1] == "palm_touch"
    pinned = select_dimensions(names, ["*_abd.pos", "wrist_z.vel"])
    assert {names[i] for i in pinned} == {"thumb_abd.pos", "index_abd.pos", "middle_abd.pos", "ring_abd.pos",
                                          "wrist_z.vel"}
    inner = Recorder(normalizer, ObsActionSpec("state", STATE_KEYS, len(state), 3))
    inspected = InspectedPolicy(inner, pinned)
    inspected.reset()
    shifted = {k: np.array(v, copy=True) for k, v in observation.items()}
    shifted["agent_pos"][6] += 0.5  # thumb_abd.pos deflected far outside the demonstrations
    inspected.act(shifted)
    # what was recorded: the env's observation in the policy's own normalised units, before pinning
    expected = normalizer.normalize("state", torch.as_tensor(np.concatenate([shifted[k] for k in STATE_KEYS]),
                                                              dtype=torch.float32)).numpy()
    np.testing.assert_allclose(inspected.z[0], expected, rtol=1e-4, atol=1e-3)
    assert inspected.z[0][6] > 10  # 0.5 rad over a ~0.01 rad spread
    # what the policy saw: pinned dimensions at the demonstrations' mean, the rest untouched
    seen = inner.seen[0]
    np.testing.assert_allclose(seen[pinned], demos.mean(0)[pinned], atol=1e-5)
    others = np.setdiff1d(np.arange(len(state)), pinned)
    np.testing.assert_array_equal(seen[others], np.concatenate([shifted[k] for k in STATE_KEYS])[others])


def test_a_pattern_that_matches_nothing_is_refused_naming_the_valid_names(lift_env) -> None:
    names = state_dimension_names(lift_env, STATE_KEYS)
    with pytest.raises(HandbenchError, match=r"--pin 'pinky\*' matches no state dimension; valid names: wrist_x.pos"):
        select_dimensions(names, ["wrist_x.pos", "pinky*"])


@pytest.fixture(scope="module")
def tiny_checkpoint(lift_cube_demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("check-inputs") / "bc"
    train(TrainRequest(policy="bc", dataset=lift_cube_demos, out=out, steps=5, seed=0, device="cpu", threads=1,
                       progress=False, model_overrides={"hidden": 32, "depth": 1},
                       train_overrides={"batch_size": 8, "log_every": 5, "val_every": 5, "val_batches": 1}))
    return out / "policy.pt"


def test_check_inputs_runs_the_protocols_seeds(tiny_checkpoint) -> None:
    check = check_inputs(tiny_checkpoint, "hb-v2", seeds=1, pin=["*_abd.*"])
    assert (check.task, check.hand, len(check.episodes)) == ("lift-cube", "hb16", 1)
    assert len(check.names) == len(check.largest) == len(check.unit) == len(check.episodes_beyond)
    assert np.isfinite(check.largest).all() and check.largest.max() > 0
    assert check.episodes[0].seed == 1000000 and check.episodes[0].steps > 0
    assert len(check.pinned) == 8 and all("_abd." in name for name in check.pinned)
    assert check.furthest(3)[0] == int(np.argmax(check.largest))


def test_command_prints_the_table_and_refuses_bad_input(tiny_checkpoint, capsys) -> None:
    assert cli_main(["check-inputs", "--checkpoint", str(tiny_checkpoint), "--protocol", "hb-v2", "--seeds", "1",
                     "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "lift-cube / hb16 on hb-v2" in out and "success: " in out and "/1" in out
    assert cli_main(["check-inputs", "--checkpoint", str(tiny_checkpoint), "--protocol", "hb-v2", "--seeds", "1",
                     "--pin", "nothing"]) == 2
    assert "matches no state dimension" in capsys.readouterr().err
    for words, message in ((["--seeds", "51"], "--seeds must be in 1..50 (the eval seeds), got 51"),
                           (["--protocol", "hb-v1"], "was trained for task_version 2, not 0"),
                           (["--bound", "0"], "argument --bound: must be a finite number >= 1.0, got 0")):
        assert cli_main(["check-inputs", "--checkpoint", str(tiny_checkpoint), "--protocol", "hb-v2", *words]) == 2
        assert message in capsys.readouterr().err
    assert cli_main(["check-inputs", "--checkpoint", str(tiny_checkpoint.parent / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
