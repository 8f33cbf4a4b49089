"""Nothing is lost: live outputs locked, partial episodes checked, eval resume keyed on what defines the policy,
Ctrl-C honest about what was saved, policy faults confined to their episode (issue #16's kinds, as behaviour)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import handbench
import handbench.training.trainer as trainer
from handbench.cli import main
from handbench.dataset import image_key, open_dataset
from handbench.errors import HandbenchError
from handbench.evaluation import runner
from handbench.evaluation.runner import EvalConfig, run_evaluation
from handbench.generate import (
    EnvConfig,
    GenerateConfig,
    PartialStore,
    _manifest,
    build_header,
    generate_demos,
    partial_dir,
)
from handbench.locking import lock_path, output_lock

TASK, HAND = "lift-cube", "hb16"


def _generate(out: Path, num_demos: int = 2, **kwargs) -> None:
    generate_demos(GenerateConfig(EnvConfig(TASK, HAND), num_demos=num_demos, out=out, progress=False, **kwargs))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "demos.hdf5"
    _generate(out)
    return out


# ---------------------------------------------------------------------------------------------- locks
def test_a_live_output_is_locked_for_the_whole_run(tmp_path, capsys):
    """The issue's input: a second generate-demos (with --overwrite, as the first refusal advised) on a live --out."""
    out = tmp_path / "d.hdf5"
    with output_lock(out):  # stands for the first run, still going
        for argv in (["generate-demos", "--task", TASK, "--num-demos", "1", "--out", str(out)],
                     ["generate-demos", "--task", TASK, "--num-demos", "1", "--out", str(out), "--overwrite"],
                     ["eval", "--policy", "expert", "--task", TASK, "--episodes", "1", "--out", str(out)]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert "is in use by another handbench run (pid" in err and "\n" not in err
        assert not out.exists() and not partial_dir(out).exists(), "a refused run touches nothing"
    assert not lock_path(out).exists(), "the lock file goes with its run"
    _generate(out, num_demos=1)  # free again


def test_two_real_runs_on_one_output(tmp_path, capsys):
    """As the issue ran it: a first generate-demos process still running, a second one with --overwrite."""
    import subprocess
    import time

    out = tmp_path / "d.hdf5"
    first = subprocess.Popen([sys.executable, "-m", "handbench.cli", "generate-demos", "--task", TASK,
                              "--num-demos", "400", "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list(partial_dir(out).glob("seed_*")) and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert list(partial_dir(out).glob("seed_*")), "the first run saved no episode in time"
        assert main(["generate-demos", "--task", TASK, "--num-demos", "1", "--out", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by another handbench run (pid {first.pid}" in err
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert list(partial_dir(out).glob("seed_*")), "the first run's episodes survive"


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    out = tmp_path / "d.hdf5"
    lock_path(out).write_text('{"pid": 1}')  # file of a run that died: flock released with its process
    _generate(out, num_demos=1)
    assert out.exists()


def test_train_and_eval_outputs_are_locked(dataset, tmp_path):
    run = tmp_path / "run"
    with output_lock(run), pytest.raises(HandbenchError, match="in use by another handbench run"):
        trainer.train(trainer.TrainRequest(policy="bc", dataset=dataset, out=run, steps=1, progress=False))
    assert not run.exists()
    results = tmp_path / "results"
    with output_lock(results), pytest.raises(HandbenchError, match="in use"):
        run_evaluation(EvalConfig(policy="expert", task=TASK, episodes=1, out=results, workers=0, progress=False))


# ---------------------------------------------------------------------------------------------- partial episodes
def test_unreadable_or_foreign_partial_episodes_are_rerun(dataset, tmp_path):
    out = tmp_path / "d.hdf5"
    config = GenerateConfig(EnvConfig(TASK, HAND), num_demos=2, out=out, progress=False)
    with open_dataset(dataset) as source:
        first, second = source.episode(0), source.episode(1)
    env = config.env.make()
    store = PartialStore(partial_dir(out), _manifest(build_header(env, config, [])))
    env.close()
    store.load()
    store.save(first)
    second.action_noise = 0.01  # made by a run with other settings (the mixed header)
    store.save(second)
    store._path(99, True).write_bytes(b"truncated")  # a corrupt episode file
    assert set(store.load()) == {first.seed}, "the foreign and the corrupt file are dropped, to be rerun"
    _generate(out)
    with open_dataset(out) as made, open_dataset(dataset) as reference:
        assert made.seeds == reference.seeds and all(e.action_noise == 0.0 for e in made)


def test_every_episode_is_checked_against_the_header_at_assembly(dataset, tmp_path):
    out = tmp_path / "d.hdf5"
    config = GenerateConfig(EnvConfig(TASK, HAND), num_demos=1, out=out, progress=False)
    env = config.env.make()
    header = build_header(env, config, [])
    env.close()
    store = PartialStore(partial_dir(out), _manifest(header))
    store.load()
    with open_dataset(dataset) as source:
        episode = source.episode(0)
    episode.observations[image_key("overview")] = np.zeros((episode.num_samples, 48, 48, 3), np.uint8)
    episode.final_observation[image_key("overview")] = np.zeros((48, 48, 3), np.uint8)
    store.save(episode)
    with pytest.raises(HandbenchError, match="has images of cameras"):
        store.checked_episode(episode.seed, header)
    assert not store._path(episode.seed, True).exists(), "removed, so the rerun regenerates it"


def test_a_dataset_mixing_two_runs_is_refused(dataset, tmp_path):
    """The issue's file: header action_noise 0.0, demos made with 0.01; open_dataset must not accept it."""
    from handbench.dataset import write_dataset

    with open_dataset(dataset) as source:
        header, episodes = source.header, list(source)
    episodes[0].action_noise = 0.01
    mixed = tmp_path / "mixed.hdf5"
    write_dataset(mixed, header, episodes)
    with pytest.raises(HandbenchError, match="demo_0 has action noise 0.01 but data.action_noise is 0.0"):
        open_dataset(mixed)


# ---------------------------------------------------------------------------------------------- eval resume
POLICY_SOURCE = """
import numpy as np


class Policy:
    def __init__(self, env):
        self.action = (env.action_space.low + env.action_space.high) / 2 + OFFSET

    def reset(self):
        pass

    def act(self, obs):
        return self.action


OFFSET = {offset}
"""


def _eval_class_policy(tmp_path, monkeypatch, module: str, offset: float) -> dict:
    (tmp_path / f"{module}.py").write_text(POLICY_SOURCE.format(offset=offset))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(module, None)  # a new process would import the edited file
    result = run_evaluation(EvalConfig(policy=f"{module}:Policy", task=TASK, episodes=3, out=tmp_path / "results",
                                       workers=0, progress=False))
    return result.meta


def test_eval_resume_reruns_rows_of_edited_policy_code(tmp_path, monkeypatch, capsys):
    """The issue's input: a module:Class policy evaluated, edited, evaluated into the same --out."""
    module = "hb_resume_policy"
    first = _eval_class_policy(tmp_path, monkeypatch, module, 0.0)
    assert (first["episodes_reused"], first["episodes_run_now"]) == (0, 3)
    again = _eval_class_policy(tmp_path, monkeypatch, module, 0.0)
    assert (again["episodes_reused"], again["episodes_run_now"]) == (3, 0)
    edited = _eval_class_policy(tmp_path, monkeypatch, module, 0.001)
    assert (edited["episodes_reused"], edited["episodes_stale_rerun"], edited["episodes_run_now"]) == (0, 3, 3)
    rows = [json.loads(p.read_text()) for p in (tmp_path / "results/episodes").glob("*.json")]
    assert len({json.dumps(r["resume_key"], sort_keys=True) for r in rows}) == 1, "no old rows left"


def test_eval_resume_reruns_rows_of_other_library_versions(tmp_path, monkeypatch, capsys):
    out = tmp_path / "results"
    argv = ["eval", "--policy", "expert", "--task", TASK, "--episodes", "2", "--workers", "0", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "reused 2 finished episode(s) of 2" in " ".join(capsys.readouterr().out.split())
    versions = runner.library_versions()
    monkeypatch.setattr(runner, "library_versions", lambda: {**versions, "mujoco": "0.0.1"})
    assert main(argv) == 0
    out_text = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "2 made with another policy, expert or library version were run again" in out_text
    meta = json.loads((out / "meta.json").read_text())
    assert meta["versions"]["mujoco"] == "0.0.1" and meta["episodes_run_now"] == 2


def test_duplicate_tasks_are_refused_in_python_too():
    for task in (["lift-cube", "lift-cube"], "lift-cube,lift-cube", "", []):
        with pytest.raises(HandbenchError, match="more than once|empty name"):
            handbench.evaluate(task=task, episodes=1, workers=0, progress=False)


# ---------------------------------------------------------------------------------------------- policy faults
class ExitingPolicy:
    """Calls sys.exit at its first action: each episode fails with the reason, and the evaluation goes on."""

    def reset(self) -> None:
        pass

    def act(self, obs):
        raise SystemExit(3)


def test_a_policy_raising_system_exit_fails_only_its_episode():
    frame = handbench.evaluate(policy=ExitingPolicy(), task=TASK, episodes=2, workers=0, progress=False)
    assert len(frame) == 2 and (frame["error"].str.contains("SystemExit")).all()


def test_a_policy_module_failing_at_import_names_file_and_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "hb_import_error_policy.py").write_text("import numpy\n\nundefined_name + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--policy", "hb_import_error_policy:Policy", "--task", TASK]) == 2
    err = capsys.readouterr().err.strip()
    assert "hb_import_error_policy.py:3: importing policy module" in err and "NameError" in err and "\n" not in err


# ---------------------------------------------------------------------------------------------- Ctrl-C in train
def _interrupt_at(monkeypatch, call: int) -> None:
    real, calls = trainer.model_batch, []

    def batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "model_batch", batch)


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(dataset, tmp_path, monkeypatch, capsys):
    _interrupt_at(monkeypatch, 2)
    out = tmp_path / "runs/bc"
    assert main(["train", "--policy", "bc", "--dataset", str(dataset), "--steps", "5", "--out", str(out),
                 "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "before its first checkpoint" in err and "nothing was saved" in err
    assert not (tmp_path / "runs").exists(), "no empty run folder"


def test_ctrl_c_after_a_checkpoint_names_it(dataset, tmp_path, monkeypatch):
    _interrupt_at(monkeypatch, 4)
    request = trainer.TrainRequest(policy="bc", dataset=dataset, out=tmp_path / "run", steps=5, progress=False,
                                   train_overrides={"checkpoint_every": 2, "val_every": 100, "log_every": 1})
    with pytest.raises(KeyboardInterrupt, match="keeps the checkpoint of step 2: rerun the same command"):
        trainer.train(request)
    assert (tmp_path / "run" / trainer.STATE_FILE).exists()
