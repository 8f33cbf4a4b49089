"""The evaluator: determinism across worker counts, resume, file schemas, videos, bad policies, bad input."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from handbench.cli import main as cli_main
from handbench.errors import HandbenchError
from handbench.evaluation import EvalConfig, evaluate, run_evaluation
from handbench.evaluation.policies import CheckpointSource, resolve_policy
from handbench.evaluation.results import EPISODE_COLUMNS, SUMMARY_COLUMNS, TIMING_COLUMNS, read_episodes
from handbench.parallel import probe_address
from handbench.protocol import DEFAULT_PROTOCOL, eval_seeds
from handbench.registry import make_env
from handbench.stats import wilson_interval

TASK = "lift-cube"


def deterministic(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def expert_rollout(seed: int) -> tuple[bool, int]:
    """The expert run the way demos are generated: no evaluator involved."""
    env = make_env(TASK, "hb16")
    obs, _ = env.reset(seed=seed)
    expert = env.make_expert(seed, 0.0)
    expert.reset()
    for step in range(env.task.max_episode_steps):
        obs, _, terminated, _, info = env.step(expert.act(obs))
        if terminated:
            return bool(info["is_success"]), step + 1
    return False, env.task.max_episode_steps


# ---------------------------------------------------------------------------------------------- statistics
@pytest.mark.parametrize(("successes", "n", "low", "high"), [  # Newcombe (1998), Stat. Med. 17:857, Table I, method 3
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=6e-5)


# ---------------------------------------------------------------------------------------------- results
def test_expert_as_policy_reproduces_its_rollouts_and_files_have_the_schema(tmp_path):
    result = run_evaluation(EvalConfig(policy="expert", task=TASK, workers=0, episodes=3, out=tmp_path,
                                       videos=1, progress=False))
    episodes = result.episodes
    assert list(episodes["seed"]) == eval_seeds(TASK)[:3]
    for row in episodes.itertuples():
        assert (row.success, row.steps) == expert_rollout(row.seed)
    assert (episodes["error"] == "").all()

    on_disk = read_episodes(tmp_path / "episodes.csv")
    assert tuple(on_disk.columns) == EPISODE_COLUMNS
    pd.testing.assert_frame_equal(deterministic(on_disk), deterministic(episodes), check_dtype=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary.loc[0, "n"] == 3 and summary.loc[0, "successes"] == episodes["success"].sum()
    assert summary.loc[0, "ci_low"] == pytest.approx(wilson_interval(int(episodes["success"].sum()), 3)[0])
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["protocol"]["name"] == DEFAULT_PROTOCOL and meta["versions"]["mujoco"]
    assert meta["protocol"]["tasks"][TASK]["eval_seeds"][0] == eval_seeds(TASK)[0]
    assert (tmp_path / "success.png").stat().st_size > 1000

    first = episodes.iloc[0]
    video = tmp_path / "videos" / f"{TASK}-hb16-seed{first.seed}-{'success' if first.success else 'failure'}.mp4"
    frames = iio.imread(video, index=None)
    assert frames.shape[1:] == (240, 320, 3) and frames.shape[0] == first.steps + 1
    assert len(list((tmp_path / "videos").iterdir())) == 1


def test_resume_skips_finished_episodes_and_loses_nothing_on_interrupt(tmp_path):
    class InterruptingExpert:
        """The expert, but Ctrl-C arrives during the episode of ``interrupt_seed``."""

        def __init__(self, interrupt_seed):
            self.interrupt_seed = interrupt_seed

        def __call__(self, env, seed):
            if seed == self.interrupt_seed:
                raise KeyboardInterrupt
            return env.make_expert(seed, 0.0)

    seeds = eval_seeds(TASK)[:3]
    with pytest.raises(KeyboardInterrupt):
        evaluate(InterruptingExpert(seeds[2]), task=TASK, workers=0, episodes=3, out=tmp_path, progress=False)
    assert len(list((tmp_path / "episodes").glob("*.json"))) == 2  # both finished episodes survived

    result = run_evaluation(EvalConfig(policy=InterruptingExpert(None), task=TASK, workers=0, episodes=3,
                                       out=tmp_path, progress=False))
    assert result.meta["episodes_run_now"] == 1
    assert list(result.episodes["seed"]) == seeds
    fresh = evaluate("expert", task=TASK, workers=0, episodes=3, progress=False)
    by_source = ["policy", "expert_version"]  # a callable is not the named expert, the episodes are the same
    pd.testing.assert_frame_equal(deterministic(result.episodes).drop(columns=by_source),
                                  deterministic(fresh).drop(columns=by_source))
    assert set(fresh["expert_version"]) == {"1"}

    again = run_evaluation(EvalConfig(policy=InterruptingExpert(None), task=TASK, workers=0, episodes=3,
                                      out=tmp_path, progress=False))
    assert again.meta["episodes_run_now"] == 0

    stale_file = sorted((tmp_path / "episodes").glob("*.json"))[0]  # a row from another compiled model is rerun
    stale_file.write_text(json.dumps({**json.loads(stale_file.read_text()), "model_hash": "0" * 16}))
    rerun = run_evaluation(EvalConfig(policy=InterruptingExpert(None), task=TASK, workers=0, episodes=3,
                                      out=tmp_path, progress=False))
    assert rerun.meta["episodes_run_now"] == 1 and "0" * 16 not in set(rerun.episodes["model_hash"])
    with pytest.raises(HandbenchError, match="another run"):
        evaluate("expert", task=TASK, workers=0, episodes=1, out=tmp_path, obs_mode="pixels", progress=False)


@pytest.mark.slow
def test_identical_results_with_one_and_two_ray_workers():
    ray = pytest.importorskip("ray")
    reference = evaluate("expert", task=TASK, workers=0, episodes=3, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        one = evaluate("expert", task=TASK, workers=1, episodes=3, progress=False)
        two = evaluate("expert", task=TASK, workers=2, episodes=3, progress=False)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(deterministic(one), deterministic(reference))
    pd.testing.assert_frame_equal(deterministic(two), deterministic(reference))


# ---------------------------------------------------------------------------------------------- bad policies
class MisbehavingPolicy:
    """Holds the home pose, and misbehaves on one eval seed in one of several ways."""

    def __init__(self, env, mode):
        self.env, self.mode = env, mode

    def reset(self):
        self.armed = self.env.episode_seed == eval_seeds(TASK)[1]
        self.steps = 0

    def act(self, observation):
        self.steps += 1
        action = np.array(self.env.home_ctrl, dtype=np.float32)
        if self.armed and self.steps == 3:
            if self.mode == "raise":
                raise RuntimeError("boom")
            if self.mode == "nan":
                action[0] = np.nan
            if self.mode == "range":
                action[0] = self.env.action_space.high[0] + 10.0
            if self.mode == "shape":
                action = action[:-1]
        return action


@pytest.mark.parametrize(("mode", "reason"), [
    ("raise", "policy raised RuntimeError: boom"), ("nan", "NaN"), ("range", "outside"), ("shape", "shape"),
])
def test_a_misbehaving_policy_fails_only_its_episode(mode, reason):
    episodes = evaluate(lambda env, seed: MisbehavingPolicy(env, mode), task=TASK, workers=0, episodes=3,
                        progress=False)
    assert len(episodes) == 3
    bad = episodes.iloc[1]
    assert not bad.success and reason in bad.error and "step 2" in bad.error
    assert (episodes.drop(index=1)["error"] == "").all()
    assert episodes.drop(index=1)["steps"].tolist() == [100, 100]


def test_module_class_policy(tmp_path, monkeypatch):
    (tmp_path / "my_hold_policy.py").write_text(textwrap.dedent("""
        class HoldHome:
            def __init__(self, env):
                self.action = env.home_ctrl.astype("float32")
            def reset(self):
                pass
            def act(self, observation):
                return self.action
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    episodes = evaluate("my_hold_policy:HoldHome", task=TASK, workers=0, episodes=1, progress=False)
    assert episodes.loc[0, "policy"] == "my_hold_policy:HoldHome"
    assert episodes.loc[0, "error"] == "" and not episodes.loc[0, "success"]
    sys.modules.pop("my_hold_policy", None)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "nope"], "unknown policy 'nope'"),
    (["--policy", "act"], "needs --checkpoint"),
    (["--policy", "no_such_module:Policy"], "cannot import module"),
    (["--policy", "expert", "--task", "no-such-task"], "unknown task"),
    (["--policy", "expert", "--hand", "no-hand"], "hand"),
    (["--policy", "expert", "--episodes", "0"], "--episodes"),
    (["--policy", "expert", "--device", "tpu"], "device 'tpu'"),
])
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    assert cli_main(["eval", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_checkpoint_for_another_task_hand_or_mode_is_refused(tmp_path, monkeypatch):
    checkpoint = tmp_path / "policy.pt"
    checkpoint.write_bytes(b"weights")
    provenance = {"task": TASK, "task_version": 0, "hand": "hb16", "obs_mode": "state", "policy": "bc"}

    def validate(**changes):
        source = resolve_policy("bc", str(checkpoint))
        assert isinstance(source, CheckpointSource) and len(source.checkpoint_hash) == 16
        monkeypatch.setattr(source, "provenance", lambda: {**provenance, **changes})
        source.validate(TASK, 0, "hb16", "state")

    validate()
    for changes, message in [({"task": "press-button"}, "trained for task 'press-button'"),
                             ({"hand": "shadow"}, "--hand shadow"), ({"obs_mode": "pixels"}, "--obs pixels"),
                             ({"task_version": 3}, "v3"), ({"policy": "act"}, "use --policy act")]:
        with pytest.raises(HandbenchError, match=message):
            validate(**changes)


def test_unreachable_cluster_is_one_clear_line():
    with pytest.raises(HandbenchError, match="cannot reach the Ray cluster at 127.0.0.1:9"):
        probe_address("127.0.0.1:9", timeout=2.0)
    with pytest.raises(HandbenchError, match="bad Ray address"):
        probe_address("no-port-here")


def test_checkpoint_policies_load_on_the_device_asked_for(tmp_path, monkeypatch):
    """``--device`` reaches load_policy in every worker (physics stays on the CPU)."""
    import handbench.training.checkpoint as checkpoints

    checkpoint = tmp_path / "policy.pt"
    checkpoint.write_bytes(b"weights")
    asked = []
    monkeypatch.setattr(checkpoints, "load_policy", lambda path, **kwargs: asked.append(kwargs) or object())
    import handbench.training.trainer as trainer

    monkeypatch.setattr(trainer, "resolve_device", str)  # no GPU needed to check that the name is passed on
    resolve_policy("bc", str(checkpoint), "cuda:1").build(env=None)
    resolve_policy("bc", str(checkpoint)).build(env=None)
    assert asked == [{"device": "cuda:1"}, {"device": "cpu"}]


def test_cli_eval_runs_the_policy_on_one_torch_thread(monkeypatch, tmp_path, capsys):
    """Set before torch loads: two evaluations side by side must not oversubscribe a small machine."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cli_main(["eval", "--policy", "nope", "--out", str(tmp_path), "--no-progress"])
    assert os.environ["OMP_NUM_THREADS"] == "1"
