"""generate-demos: same arrays for any worker count, safe overwrite, resume, one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import handbench.generate as generate
from handbench.cli import main
from handbench.dataset import dataset_hash, open_dataset
from handbench.errors import HandbenchError
from handbench.experts_check import check_experts
from handbench.generate import EnvConfig, GenerateConfig, generate_demos, partial_dir

TASK, HAND = "lift-cube", "hb16"


def _config(out: Path, num_demos: int = 3, **kwargs) -> GenerateConfig:
    return GenerateConfig(EnvConfig(TASK, HAND), num_demos=num_demos, out=out, progress=False, **kwargs)


def _arrays(path: Path) -> list[dict[str, np.ndarray]]:
    with open_dataset(path) as dataset:
        return [{"actions": e.actions, "states": e.states, **e.observations} for e in dataset]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "demos.hdf5"
    generate_demos(_config(out))
    return out


def test_generation_keeps_first_successes_in_seed_order(reference: Path) -> None:
    with open_dataset(reference) as dataset:
        seeds, failed = dataset.seeds, dataset.header.failed_seeds
        assert len(dataset) == 3 and all(e.success for e in dataset)
    assert sorted(seeds + failed) == list(range(seeds[-1] + 1)), "every seed up to the last kept is accounted for"
    assert not partial_dir(reference).exists()


@pytest.mark.slow
def test_one_and_two_workers_give_identical_arrays(reference: Path, tmp_path: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # shared by both runs: one startup
    try:
        for workers in (1, 2):
            out = tmp_path / f"w{workers}.hdf5"
            generate_demos(_config(out, workers=workers))
            assert dataset_hash(out) == dataset_hash(reference)
            for a, b in zip(_arrays(out), _arrays(reference), strict=True):
                assert a.keys() == b.keys()
                for key in a:
                    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    finally:
        ray.shutdown()


def test_refuses_to_overwrite(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "demos.hdf5"
    out.write_text("precious")
    with pytest.raises(HandbenchError, match="already exists; pass --overwrite"):
        generate_demos(_config(out, num_demos=1))
    assert out.read_text() == "precious"
    generate_demos(_config(out, num_demos=1, overwrite=True))
    with open_dataset(out) as dataset:
        assert len(dataset) == 1


def test_resume_after_interruption(reference: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "demos.hdf5"
    save = generate.PartialStore.save
    saved: list[int] = []

    def interrupted_save(store, episode):
        if len(saved) == 2:
            raise KeyboardInterrupt
        save(store, episode)
        saved.append(episode.seed)

    monkeypatch.setattr(generate.PartialStore, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        generate_demos(_config(out))
    assert not out.exists(), "no final file after an interruption"
    assert len(list(partial_dir(out).glob("seed_*"))) == 2

    monkeypatch.setattr(generate.PartialStore, "save", save)
    ran: list[int] = []
    run_episode = generate.run_expert_episode

    def counting(env, seed, *args, **kwargs):
        ran.append(seed)
        return run_episode(env, seed, *args, **kwargs)

    monkeypatch.setattr(generate, "run_expert_episode", counting)
    report = generate_demos(_config(out))
    assert report.resumed == 2 and not set(ran) & set(saved), "finished episodes are not run again"
    assert dataset_hash(out) == dataset_hash(reference)
    assert not partial_dir(out).exists()


def test_partial_run_with_other_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "demos.hdf5"
    directory = partial_dir(out)
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"task": TASK, "action_noise": 0.5}))
    with pytest.raises(HandbenchError, match="other settings"):
        generate_demos(_config(out, num_demos=1))
    generate_demos(_config(out, num_demos=1, overwrite=True))
    assert out.exists() and not directory.exists()


def test_check_experts_counts_episodes() -> None:
    (check,) = check_experts([TASK], [HAND], num_seeds=1)
    assert (check.task, check.hand, check.episodes) == (TASK, HAND, 1)
    assert check.successes in (0, 1) and check.mean_length > 0


def test_check_experts_keeps_episodes_and_resumes(tmp_path: Path) -> None:
    """With --out every episode is written as it ends; a rerun skips them and runs only the new seeds."""
    out = tmp_path / "check"
    (first,) = check_experts([TASK], [HAND], num_seeds=1, out=out)
    (episode,) = (out / "episodes").glob("*.json")
    kept = episode.read_text()
    (second,) = check_experts([TASK], [HAND], num_seeds=2, out=out)
    assert second.episodes == 2 and len(list((out / "episodes").glob("*.json"))) == 2
    assert episode.read_text() == kept  # reused, not rerun
    (fresh,) = check_experts([TASK], [HAND], num_seeds=2)
    assert (second.successes, second.mean_length) == (fresh.successes, fresh.mean_length)
    with pytest.raises(HandbenchError, match="holds results of another run"):
        check_experts([TASK], [HAND], num_seeds=1, out=out, action_noise=0.01, split="demo")


def test_check_experts_holdout_seeds_can_start_elsewhere() -> None:
    from handbench.experts_check import HOLDOUT_SIZE, holdout_seeds

    seeds = holdout_seeds(3_000_000)
    assert seeds == tuple(range(3_000_000, 3_000_000 + HOLDOUT_SIZE))
    with pytest.raises(HandbenchError, match="demo split"):
        holdout_seeds(5)
    with pytest.raises(HandbenchError, match="overlap the protocols' eval seeds"):
        holdout_seeds(1_000_010)
    assert holdout_seeds(2**64 - HOLDOUT_SIZE)[-1] == 2**64 - 1  # the largest episode seed (torch's limit)
    with pytest.raises(HandbenchError, match="the largest episode seed; start at most"):
        holdout_seeds(2**64 - HOLDOUT_SIZE + 1)
    with pytest.raises(HandbenchError, match="only applies to the holdout split"):
        check_experts([TASK], [HAND], num_seeds=1, holdout_from=3_000_000)


@pytest.mark.parametrize(("argv", "message"), [
    (["generate-demos", "--task", "nope", "--num-demos", "1"], "unknown task 'nope'; valid: "),
    (["generate-demos", "--task", TASK, "--hand", "nope", "--num-demos", "1"], "unknown hand 'nope'; valid: hb16"),
    (["generate-demos", "--task", TASK, "--num-demos", "0"], "--num-demos: must be an integer in [1,"),
    (["generate-demos", "--task", TASK, "--num-demos", "1", "--workers", "-1"], "--workers: must be an integer >= 0"),
    (["generate-demos", "--task", TASK, "--num-demos", "1", "--obs", "pixels", "--cameras", "nope"],
     "unknown camera 'nope'"),
    (["check-experts", "--tasks", TASK, "--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["check-experts", "--tasks", "nope"], "unknown task 'nope'"),
    (["check-experts", "--tasks", TASK, "--split", "holdout", "--holdout-from", "10"], "overlap the demo split"),
    (["check-experts", "--tasks", TASK, "--split", "holdout", "--holdout-from", "99999999999999999999999"],
     "the largest episode seed; start at most 18446744073709551516"),
    (["render", "--dataset", "missing.hdf5", "--out", "x.hdf5"], "missing.hdf5 does not exist"),
    (["render", "--dataset", "missing.hdf5"], "nothing to do"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_unwritable_output_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["generate-demos", "--task", TASK, "--num-demos", "1", "--out", str(blocker / "d.hdf5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file, not a folder" in err and "\n" not in err


def test_missing_rendering_backend_names_the_packages(tmp_path: Path) -> None:
    """A subprocess, as a user runs it: one error line, no traceback, Debian packages named."""
    env = {**os.environ, "MUJOCO_GL": "glx", "DISPLAY": ""}
    result = subprocess.run(
        [sys.executable, "-m", "handbench.cli", "generate-demos", "--task", TASK, "--num-demos", "1",
         "--obs", "pixels", "--out", str(tmp_path / "d.hdf5")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("handbench generate-demos: error: MUJOCO_GL=glx needs a display")
    assert "apt-get install libegl1" in last and "unset MUJOCO_GL" in last
    assert not (tmp_path / "d.hdf5").exists()


def test_an_expert_that_fails_the_first_seeds_stops_generation_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    """Too much noise (or an expert that cannot do the task) would run through the whole demo split: generation
    stops once every one of the split's first GIVE_UP_SEEDS seeds failed, keeps their episodes, and a rerun stops
    again before running any; one success among them lets it go on."""
    run_episode = generate.run_expert_episode
    ran: list[int] = []

    def failing(env, seed, *args, **kwargs):
        ran.append(seed)
        return dataclasses.replace(run_episode(env, seed, *args, **kwargs), success=seed == lucky)

    monkeypatch.setattr(generate, "run_expert_episode", failing)
    out = tmp_path / "demos.hdf5"
    lucky = -1
    with pytest.raises(HandbenchError, match=f"failed all of the first {generate.GIVE_UP_SEEDS} demo seeds "
                                             r"\(0-24\) with hb16 at --action-noise 0.5 .*demos.hdf5.partial"):
        generate_demos(_config(out, action_noise=0.5))
    assert sorted(ran) == list(range(generate.GIVE_UP_SEEDS)) and not out.exists()
    assert len(list(partial_dir(out).glob("seed_*.failed"))) == generate.GIVE_UP_SEEDS
    ran.clear()
    with pytest.raises(HandbenchError, match="failed all of the first"):
        generate_demos(_config(out, action_noise=0.5))
    assert ran == []  # refused from the stored episodes alone

    lucky = 24  # the last of them succeeds: not hopeless, so it goes on to the next seeds
    report = generate_demos(_config(tmp_path / "one.hdf5", num_demos=1, action_noise=0.5))
    assert report.num_demos == 1 and report.num_failed == generate.GIVE_UP_SEEDS - 1
    assert main(["generate-demos", "--task", TASK, "--hand", HAND, "--num-demos", "1", "--action-noise", "0.5",
                 "--workers", "0", "--quiet", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in error if "failed all of the first" in line]) == 1
