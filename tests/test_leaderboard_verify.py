"""Re-derivation end to end, on the default protocol (hb-v2): a small BC entry made with the real commands (demos,
training, evaluation, submit) is verified by `handbench leaderboard --verify`, and consistent tampering that passes
every static check is caught by it; a checkpoint is re-evaluated with --checkpoint; a reference entry is
re-evaluated with --run all and gains its videos. Kept small (5 demos, 20 training steps, 3 training seeds of the
protocol's 50 episodes)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import handbench.dataset as dataset_module
import handbench.evaluation.results as evaluator_results
from handbench.cli import main
from handbench.leaderboard.generate import README_FILE, outdated_files
from handbench.machine import machine_info

TASK, HAND = "lift-cube", "hb16"
DATASET = f"experiments/demos/{TASK}-{HAND}.hdf5"


def handbench(*argv: str, cwd: Path) -> None:
    """Run a command as a user types it in ``cwd`` (in this process: recorded command lines come from argv)."""
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    try:
        sys.argv = ["handbench", *argv]
        os.chdir(cwd)
        with contextlib.redirect_stdout(None):
            assert main(list(argv)) == 0
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder with a submitted 3-seed BC entry, made as baselines/reproduce.sh makes one."""
    root = tmp_path_factory.mktemp("project")
    handbench("generate-demos", "--task", TASK, "--hand", HAND, "--num-demos", "5", "--workers", "0", "--quiet",
              "--out", DATASET, cwd=root)
    results = []
    for seed in range(3):
        run = f"experiments/runs/bc-{TASK}-{HAND}-s{seed}"
        handbench("train", "--policy", "bc", "--dataset", DATASET, "--seed", str(seed), "--steps", "20", "--threads",
                  "1", "--no-progress", "--out", run, cwd=root)
        out = f"experiments/results/bc-{TASK}-{HAND}-s{seed}"
        videos = ["--videos", "1"] if seed == 0 else []
        handbench("eval", "--policy", "bc", "--checkpoint", f"{run}/policy.pt", "--workers", "0", *videos,
                  "--no-progress", "--out", out, cwd=root)
        results.append(out)
    handbench("submit", *results, "--method", "Tiny BC", "--leaderboard-dir", "leaderboard", cwd=root)
    handbench("eval", "--policy", "expert", "--task", TASK, "--hand", HAND, "--workers", "0", "--no-progress",
              "--out", "experiments/ref/expert", cwd=root)
    handbench("submit", "experiments/ref/expert", "--method", "Scripted expert", "--reference", "--leaderboard-dir",
              "leaderboard", cwd=root)
    return root


@pytest.mark.slow
def test_a_submitted_run_is_re_derived_exactly_and_tampering_is_caught(project, capsys, monkeypatch):
    board = project / "leaderboard"
    entry = board / "submissions" / "tiny-bc"
    meta = json.loads((entry / "meta.json").read_text())
    commands = meta["runs"][1]["commands"]
    assert commands["train"].startswith(f"handbench train --policy bc --dataset {DATASET} --seed 1 ")
    assert str(project) not in json.dumps(meta)  # recorded relative to the project
    assert sorted(p.name for p in (entry / "run-0" / "videos").iterdir()) == [
        name for name in sorted(p.name for p in (project / "experiments/results/bc-lift-cube-hb16-s0/videos")
                                .iterdir())]

    monkeypatch.chdir(project)
    assert main(["leaderboard", "--verify", "tiny-bc", "--run", "1", "--work-dir", str(project / "verify")]) == 0
    printed = capsys.readouterr().out
    assert "verified tiny-bc run-1: all 50 episodes identical" in printed
    record = json.loads((entry / "meta.json").read_text())["verifications"][-1]
    assert record["run"] == "run-1" and record["episodes"] == 50
    assert {key: record[key] for key in ("cpu", "blas")} == machine_info()  # what kind of machine re-derived it
    assert f"| {record['date']} (run-1) |" in (board / README_FILE).read_text()
    assert outdated_files(board) == []

    # Consistent tampering: five failures turned into successes at the last step, episodes and summary edited
    # together. Every static check passes; only re-deriving the run shows it.
    stored = entry / "run-1"
    episodes = evaluator_results.read_episodes(stored / "episodes.csv")
    failures = episodes.index[~episodes["success"].astype(bool)][:5]
    assert len(failures) == 5
    first = int(episodes.loc[failures[0], "seed"])
    episodes.loc[failures, "success"] = True
    episodes.loc[failures, "success_at_end"] = True
    episodes.loc[failures, "time_to_success"] = episodes.loc[failures, "steps"]
    evaluator_results.write_csv(episodes, stored / "episodes.csv")
    evaluator_results.write_csv(evaluator_results.summarize(episodes, {TASK: 50}), stored / "summary.csv")
    assert main(["leaderboard", "--regenerate"]) == 0
    assert outdated_files(board) == []
    capsys.readouterr()
    assert main(["leaderboard", "--verify", "tiny-bc", "--run", "1", "--work-dir", str(project / "verify")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert (f"tiny-bc run-1 differs from its re-derivation: {TASK}/{HAND} seed {first}: stored success=True, "
            f"re-derived success=False") in error
    assert len(json.loads((entry / "meta.json").read_text())["verifications"]) == 1


@pytest.mark.slow
def test_a_checkpoint_is_re_evaluated_and_a_reference_gains_its_videos(project, capsys, monkeypatch):
    """Whoever holds a run's checkpoint can re-evaluate it (its hash must be the run's): recorded as a
    re-evaluation, not a re-derivation. A reference entry has nothing to train: --run all re-evaluates every run,
    and the replay's videos of the first seeds go to the entry."""
    board = project / "leaderboard"
    monkeypatch.chdir(project)
    checkpoint = f"experiments/runs/bc-{TASK}-{HAND}-s2/policy.pt"
    assert main(["leaderboard", "--verify", "tiny-bc", "--run", "1", "--checkpoint", checkpoint]) == 2
    assert "give that run's own checkpoint" in capsys.readouterr().err
    assert main(["leaderboard", "--verify", "tiny-bc", "--run", "2", "--checkpoint", checkpoint,
                 "--work-dir", str(project / "verify-checkpoint")]) == 0
    assert "verified tiny-bc run-2: all 50 episodes identical to the stored results (checkpoint re-evaluated" in (
        capsys.readouterr().out)
    records = json.loads((board / "submissions" / "tiny-bc" / "meta.json").read_text())["verifications"]
    record = records[-1]
    assert (record["run"], record["kind"]) == ("run-2", "re-evaluated")
    verified = {r["run"] for r in records}  # run-1 too when the re-derivation test ran first (shared project)
    cell = ("run-2, re-evaluated from its checkpoint" if verified == {"run-2"}
            else f"{len(verified)} of 3 runs, 1 re-evaluated from their checkpoints")
    assert f"| {min(r['date'] for r in records)} ({cell}) |" in (board / README_FILE).read_text()

    stored = board / "submissions" / "scripted-expert" / "run-0"
    assert not (stored / "videos").exists()  # evaluated without --videos
    assert main(["leaderboard", "--verify", "scripted-expert", "--run", "all",
                 "--work-dir", str(project / "verify-reference")]) == 0
    printed = capsys.readouterr().out
    assert "verified scripted-expert run-0: all 50 episodes identical to the stored results (re-evaluated;" in printed
    assert "2 videos added to the entry" in printed
    videos = sorted(path.name for path in (stored / "videos").iterdir())
    assert len(videos) == 2 and all(name.startswith(f"{TASK}-{HAND}-seed") for name in videos)
    page = (board / "index.html").read_text()
    assert all(f'<video src="submissions/scripted-expert/run-0/videos/{name}"' in page for name in videos)
    assert outdated_files(board) == []


def test_verify_refuses_other_commands_and_machine_paths():
    from handbench.errors import HandbenchError
    from handbench.leaderboard.verify import parse_command

    assert parse_command("handbench eval --policy bc --checkpoint runs/a/policy.pt --out r", "eval")[0] == "eval"
    for command, message in (("rm -rf /", "is not `handbench train"),
                             ("handbench eval --out r", "is not `handbench train"),
                             ("handbench train --dataset /data/d.hdf5 --out r", "paths must be relative"),
                             ("handbench train --dataset ../d.hdf5 --out r", "paths must be relative")):
        with pytest.raises(HandbenchError, match=message):
            parse_command(command, "train")


def test_first_difference_names_the_episode():
    from handbench.leaderboard.verify import first_difference

    rows = pd.DataFrame({"task": [TASK] * 2, "hand": [HAND] * 2, "seed": [1000000, 1000001], "success": [True, False],
                         "success_at_end": [True, False], "steps": [40, 100], "return": [1.5, 0.25],
                         "time_to_success": [40.0, float("nan")], "task_version": ["0"] * 2, "obs_mode": ["state"] * 2,
                         "protocol": ["hb-v1"] * 2, "policy": ["bc"] * 2, "error": [""] * 2})
    assert first_difference(rows, rows.copy()) is None
    changed = rows.copy()
    changed.loc[1, "return"] = 0.250001
    assert first_difference(rows, changed) == (f"{TASK}/{HAND} seed 1000001: stored return=0.25, re-derived "
                                               f"return=0.250001")
    assert first_difference(rows, rows.iloc[:1]) == (f"{TASK}/{HAND} seed 1000001: stored, but the re-derived run "
                                                     f"has no such episode")


def test_replayed_commands_are_pinned_to_the_entrys_protocol():
    """A command recorded without --protocol ran under the default of its day: replayed under the entry's."""
    from handbench.leaderboard.verify import pin_protocol

    assert pin_protocol(["eval", "--out", "r"], "eval", "hb-v1") == ["eval", "--out", "r", "--protocol", "hb-v1"]
    assert pin_protocol(["eval", "--protocol", "hb-v1"], "eval", "hb-v9") == ["eval", "--protocol", "hb-v1"]


def test_a_run_without_a_train_command_cannot_be_verified(tmp_path, monkeypatch):
    """Older runs record no train command: --verify says so and names the runs that can be re-derived."""
    from handbench.errors import HandbenchError
    from handbench.leaderboard.verify import verify_run

    repo = Path(__file__).resolve().parents[1] / "leaderboard"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HandbenchError, match="bc-mlp-8-action-chunks-cpu-small run-3 records no train command .* "
                                             "runs that can: 0, 1, 2"):
        verify_run(repo, "bc-mlp-8-action-chunks-cpu-small", 3)
    assert list(tmp_path.iterdir()) == []


def test_regenerated_demos_that_differ_are_refused_naming_the_likely_cause(project, capsys, monkeypatch):
    """Demos regenerated with other bits (another kind of CPU rounds the experts' IK differently) cannot re-derive
    the run: refused in one line that names both hashes and where the README explains the cause."""
    monkeypatch.setattr(dataset_module, "dataset_hash", lambda path: "0000000000000000")
    monkeypatch.chdir(project)
    assert main(["leaderboard", "--verify", "tiny-bc", "--run", "2", "--work-dir", str(project / "verify-demos")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "the regenerated demos hash 0000000000000000, but the checkpoint was trained on dataset" in error
    assert "'Across kinds of CPU'" in error
