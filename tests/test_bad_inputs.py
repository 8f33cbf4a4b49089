"""Bad input, as an unfriendly but realistic user types it: one line naming what is wrong, and nothing written.

Each row is (command, expected part of the one-line message). The commands run in-process through
``handbench.cli.main`` in an empty working folder; placeholders name fixtures: ``{dataset}`` (a 2-demo
lift-cube dataset), ``{dataset_dir}`` (a folder holding a copy of it and a notes file), ``{dir}`` (an empty
folder), ``{file}`` (a text file), ``{missing}`` (a path that does not exist), ``{bad_module}`` (a policy
module with a syntax error on line 3). Every refused command must exit 2, print exactly one line and leave
the working folder as it was. Add a row for every new kind of bad input found.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from handbench.cli import main

TASK = "lift-cube"
GEN = ["generate-demos", "--task", TASK]
EVAL = ["eval", "--policy", "expert", "--task", TASK]
TRAIN = ["train", "--policy", "bc", "--dataset", "{dataset}"]
DEAD_RAY = ["--workers", "2", "--ray-address", "127.0.0.1:1"]

CASES: list[tuple[list[str], str]] = [
    # numbers: range and finiteness, checked as parsed
    ([*GEN, "--num-demos", "2000000"], "argument --num-demos: must be an integer in [1, 1000000], got 2000000"),
    ([*GEN, "--num-demos", "0"], "argument --num-demos: must be an integer in [1, 1000000], got 0"),
    ([*GEN, "--num-demos", "ten"], "argument --num-demos: must be an integer, got 'ten'"),
    ([*GEN, "--num-demos", "1", "--action-noise", "nan"], "argument --action-noise: must be a finite number in [0, 1)"),
    ([*GEN, "--num-demos", "1", "--action-noise", "inf"], "argument --action-noise: must be a finite number"),
    ([*GEN, "--num-demos", "1", "--action-noise", "1"], "argument --action-noise: must be a finite number in [0, 1)"),
    ([*GEN, "--num-demos", "1", "--workers", "-1"], "argument --workers: must be an integer >= 0, got -1"),
    ([*GEN, "--num-demos", "1", "--image-size", "0", "64"], "argument --image-size: must be an integer >= 1, got 0"),
    ([*EVAL, "--episodes", "0"], "argument --episodes: must be an integer >= 1, got 0"),
    ([*EVAL, "--episodes", "-3"], "argument --episodes: must be an integer >= 1, got -3"),
    ([*EVAL, "--videos", "-1"], "argument --videos: must be an integer >= 0, got -1"),
    ([*EVAL, "--workers", "-2"], "argument --workers: must be an integer >= 0, got -2"),
    ([*TRAIN, "--temporal-ensemble", "nan"], "argument --temporal-ensemble: must be a finite number >= 0, got nan"),
    ([*TRAIN, "--temporal-ensemble", "-0.5"], "argument --temporal-ensemble: must be a finite number >= 0"),
    ([*TRAIN, "--threads", "-2"], "argument --threads: must be an integer in [1, 256], got -2"),
    ([*TRAIN, "--threads", "0"], "argument --threads: must be an integer in [1, 256], got 0"),
    ([*TRAIN, "--seed", "-1"], "argument --seed: must be an integer in [0, 4294967295], got -1"),
    ([*TRAIN, "--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
    (["check-experts", "--tasks", TASK, "--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["check-experts", "--tasks", TASK, "--seeds", "9999"], "--seeds must be in 1.."),
    (["check-physics", "--tasks", TASK, "--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["check-physics", "--tasks", TASK, "--seeds", "51"], "--seeds must be in 1..50 (the eval seeds), got 51"),
    (["check-physics", "--tasks", "nope", "--seeds", "1"], "unknown task in protocol hb-v2: 'nope'"),
    (["check-physics", "--tasks", TASK, "--hands", "nope", "--seeds", "1"], "unknown hand"),
    (["check-physics", "--tasks", TASK, "--hands", "shadow", "--hand-version", "1", "--seeds", "1"],
     "hand shadow has no version 1; registered: v0"),
    (["gallery", "--size", "0", "0"], "argument --size: must be an integer >= 1, got 0"),
    (["gallery", "--size", "100000", "100"], "image size 100000 100 out of range"),
    (["gallery", "--fraction", "5"], "argument --fraction: must be a finite number in [0, 1], got 5"),
    (["gallery", "--fraction", "nan"], "argument --fraction: must be a finite number in [0, 1], got nan"),
    (["render", "--dataset", "{dataset}", "--out", "r.hdf5", "--image-size", "0", "0"],
     "argument --image-size: must be an integer >= 1, got 0"),
    (["render", "--dataset", "{dataset}", "--out", "r.hdf5", "--episodes", "-1"],
     "argument --episodes: must be an integer >= 0, got -1"),
    (["sweep", "{missing}", "--dry-run"],
     "sweep plan {missing} not found (the project's plans are in baselines/sweeps/)"),
    (["sweep", "{file}", "--dry-run"], "is not a readable TOML file"),
    (["sweep", "{dir}", "--eval-workers", "-1"], "argument --eval-workers: must be an integer >= 0, got -1"),
    (["quickstart", "--num-demos", "0"], "argument --num-demos: must be an integer in [1, 1000000], got 0"),
    (["quickstart", "--episodes", "0"], "argument --episodes: must be an integer >= 1, got 0"),
    (["quickstart", "--task", "nope"], "handbench quickstart: error: unknown task 'nope'; valid: "),
    (["quickstart", "--hand", "nope"], "handbench quickstart: error: unknown hand 'nope'; valid: "),
    # task and other name lists: empty or repeated names
    ([*EVAL[:3], "--task", "lift-cube,lift-cube", "--episodes", "3"], "--task: lift-cube given more than once"),
    ([*EVAL[:3], "--task", "", "--episodes", "1"], "--task: empty name in ''"),
    ([*EVAL[:3], "--task", "lift-cube,", "--episodes", "1"], "--task: empty name in 'lift-cube,'"),
    (["check-experts", "--tasks", TASK, TASK], "--tasks: lift-cube given more than once"),
    (["check-experts", "--tasks", ""], "--tasks: empty name"),
    (["check-experts", "--tasks", TASK, "--hands", "hb16", "hb16"], "--hands: hb16 given more than once"),
    (["gallery", "--tasks", TASK, TASK], "--tasks: lift-cube given more than once"),
    (["bench", "--task", TASK, "--task", TASK], "--task: lift-cube given more than once"),
    (["render", "--dataset", "{dataset}", "--out", "r.hdf5", "--episodes", "0", "0"],
     "--episodes lists an episode more than once"),
    (["render", "--dataset", "{dataset}", "--out", "r.hdf5", "--cameras", "overview", "overview"],
     "--cameras: overview given more than once"),
    ([*GEN, "--task", "", "--num-demos", "1"], "unknown task ''"),
    ([*GEN, "--num-demos", "1", "--obs", "pixels", "--cameras", "nope"], "unknown camera 'nope'"),
    ([*GEN, "--num-demos", "1", "--obs", "pixels", "--image-size", "99999", "64"], "image size (99999, 64) out of"),
    ([*GEN, "--num-demos", "1", "--out", "/proc/x.hdf5"], "cannot write beside /proc/x.hdf5"),
    # directory or file confused
    (["train", "--policy", "bc", "--dataset", "{dir}"], "dataset {dir} is a directory; give the .hdf5 file"),
    (["train", "--policy", "bc", "--dataset", "{missing}"], "dataset {missing} does not exist"),
    ([*TRAIN, "--out", "{file}"], "--out {file} is a file; give a folder for the run"),
    ([*TRAIN, "--out", "{dataset_dir}"], "--out {dataset_dir} holds other files and no training run"),
    (["gallery", "--tasks", TASK, "--camera", "nope", "--out", "g"], "unknown camera 'nope'; valid: "),
    (["eval", "--policy", "bc", "--checkpoint", "{dir}"], "checkpoint {dir} is a directory; give the policy.pt file"),
    (["eval", "--policy", "bc", "--checkpoint", "{missing}"], "checkpoint {missing} does not exist"),
    (["check-inputs", "--checkpoint", "{dir}"], "checkpoint {dir} is a directory; give the policy.pt file"),
    (["check-inputs", "--checkpoint", "{missing}"], "checkpoint {missing} does not exist"),
    (["check-inputs", "--checkpoint", "{file}"], "is not a readable handbench checkpoint"),
    (["check-inputs", "--checkpoint", "{file}", "--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["check-inputs", "--checkpoint", "{file}", "--bound", "nan"], "argument --bound: must be a finite number >= 1.0"),
    ([*EVAL, "--episodes", "1", "--out", "{file}"], "--out {file} is a file; give a folder for the results"),
    (["render", "--dataset", "{dir}", "--out", "r.hdf5"], "dataset {dir} is a directory"),
    (["render", "--dataset", "{dataset}", "--out", "{dir}", "--overwrite"], "--out {dir} is a directory; give a file"),
    (["render", "--dataset", "{dataset}", "--video", "{dir}", "--overwrite"], "--video {dir} is a directory"),
    ([*GEN, "--num-demos", "1", "--out", "{dir}"], "--out {dir} is a directory; give a file path"),
    ([*GEN, "--num-demos", "1", "--out", "{file}/d.hdf5"], "{file} is a file, not a folder"),
    (["export", "--dataset", "{dir}", "--format", "zarr", "--out", "z"], "dataset {dir} is a directory"),
    (["export", "--dataset", "{dataset}", "--format", "zarr", "--out", "{file}"], "--out {file} exists and is a file"),
    (["gallery", "--out", "{file}"], "{file} is a file, not a folder"),
    (["bench", "--quick", "--out", "{file}"], "{file} is a file, not a folder"),
    (["quickstart", "--out", "{file}"], "{file} is a file, not a folder"),
    (["submit", "{file}", "--method", "m", "--leaderboard-dir", "lb"], "results directory {file} is a file"),
    (["leaderboard", "--check", "--leaderboard-dir", "{missing}"], "leaderboard folder {missing} does not exist"),
    (["leaderboard", "--leaderboard-dir", "{file}"], "leaderboard folder {file} is a file"),
    (["leaderboard", "--regenerate", "--leaderboard-dir", "{missing}"], "leaderboard folder {missing} does not exist"),
    # export --overwrite never replaces the source, other files or the current folder
    (["export", "--dataset", "{dataset_dir}/D.hdf5", "--format", "zarr", "--out", "{dataset_dir}", "--overwrite"],
     "holds the source dataset"),
    (["export", "--dataset", "{dataset}", "--format", "zarr", "--out", ".", "--overwrite"], "is the current folder"),
    (["export", "--dataset", "{dataset}", "--format", "lerobot", "--out", "{dataset_dir}", "--overwrite"],
     "is not an export written by handbench"),
    # policies
    (["eval", "--policy", "{bad_module}:Policy", "--task", TASK], "{bad_module}.py:3: syntax error in policy module"),
    (["eval", "--policy", "nope"], "unknown policy 'nope'"),
    (["eval", "--policy", "expert", "--checkpoint", "{file}"], "--checkpoint makes no sense with --policy expert"),
    # dead Ray address: seconds, one line, for every command that takes one
    ([*GEN, "--num-demos", "1", *DEAD_RAY], "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["check-experts", "--tasks", TASK, "--seeds", "1", *DEAD_RAY], "cannot reach the Ray cluster at 127.0.0.1:1"),
    ([*EVAL, "--episodes", "1", *DEAD_RAY], "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["check-experts", "--tasks", TASK, "--seeds", "1", "--workers", "1", "--ray-address", "nonsense"],
     "bad Ray address 'nonsense'"),
    # usage errors are one line too
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
    (["tasks", "--format", "nope"], "argument --format: invalid choice: 'nope'"),
    (["export", "--dataset", "{dataset}", "--format", "tfrecord", "--out", "z"], "argument --format: invalid choice"),
    (["train", "--policy", "bc"], "the following arguments are required: --dataset"),
]

ENV_CASES: list[tuple[dict[str, str], list[str], str]] = [
    ({"MUJOCO_GL": "bogus"}, ["tasks"], "MUJOCO_GL='bogus' is not a MuJoCo rendering backend"),
    ({"MUJOCO_GL": "glfw", "DISPLAY": "", "WAYLAND_DISPLAY": ""}, [*EVAL, "--episodes", "1"],
     "MUJOCO_GL=glfw needs a display and none is set"),
    ({"MUJOCO_GL": "glx", "DISPLAY": "", "WAYLAND_DISPLAY": ""}, [*GEN, "--num-demos", "1"], "unset MUJOCO_GL"),
]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, lift_cube_demos) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fixtures")
    dataset = root / "demos.hdf5"
    shutil.copy(lift_cube_demos, dataset)  # two lift-cube demos (TASK), hb16
    dataset_dir = root / "d"
    dataset_dir.mkdir()
    shutil.copy(dataset, dataset_dir / "D.hdf5")
    (dataset_dir / "notes.txt").write_text("mine")
    (root / "empty").mkdir()
    (root / "file.txt").write_text("not a folder")
    (root / "hb_syntax_policy.py").write_text("class Policy:\n    def reset(self):\n        return (\n")
    return {"dataset": str(dataset), "dataset_dir": str(dataset_dir), "dir": str(root / "empty"),
            "file": str(root / "file.txt"), "missing": str(root / "missing"), "bad_module": "hb_syntax_policy",
            "root": str(root)}


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def _run_refused(argv: list[str], expected: str, fixtures: dict[str, str], tmp_path: Path, capsys,
                 monkeypatch) -> None:
    argv = [part.format(**fixtures) for part in argv]
    expected = expected.format(**fixtures)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(fixtures["root"])  # the policy modules
    watched = [work, Path(fixtures["root"])]
    before = [_snapshot(folder) for folder in watched]
    assert main(argv) == 2, f"handbench {' '.join(argv)} was not refused"
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, f"more than one line:\n{err}"
    assert "Traceback" not in err and expected in err, err
    assert [_snapshot(folder) for folder in watched] == before, "a refused command changed files"


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(argv)[:70] for argv, _ in CASES])
def test_bad_input_gets_one_line(argv, expected, fixtures, tmp_path, capsys, monkeypatch):
    _run_refused(argv, expected, fixtures, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize(("env", "argv", "expected"), ENV_CASES, ids=[e["MUJOCO_GL"] for e, _, _ in ENV_CASES])
def test_bad_environment_gets_one_line(env, argv, expected, fixtures, tmp_path, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _run_refused(argv, expected, fixtures, tmp_path, capsys, monkeypatch)


def test_the_table_covers_every_subcommand():
    from handbench.cli import build_parser

    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    covered = {argv[0] for argv, _ in CASES} | {argv[0] for _, argv, _ in ENV_CASES}
    assert subcommands - covered <= {"doctor"}, f"no bad-input row for {sorted(subcommands - covered - {'doctor'})}"


def test_every_option_says_what_it_takes():
    """`handbench COMMAND --help` explains every option: a bare option leaves a user guessing what is valid."""
    import argparse

    from handbench.cli import build_parser

    bare = [f"{name} {action.option_strings[-1]}"
            for name, parser in build_parser()._subparsers._group_actions[0].choices.items()
            for action in parser._actions
            if action.option_strings and not action.help and not isinstance(action, argparse._HelpAction)]
    assert not bare, f"options without help text: {bare}"


def test_refused_runs_leave_no_run_folder(fixtures, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "--policy", "bc", "--dataset", fixtures["missing"]],
                 ["train", "--policy", "bc", "--dataset", fixtures["dataset"], "--device", "tpu"]):
        assert main(argv) == 2
    assert not any(tmp_path.iterdir()), os.listdir(tmp_path)
