"""Leaderboard: every stored submission is valid and the generated files are up to date (the CI check);
submit writes an entry and the tables; each refusal names its problem."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import pandas as pd
import pytest

import handbench.evaluation.results as evaluator_results
from handbench.cli import main
from handbench.errors import HandbenchError
from handbench.leaderboard.generate import CSV_FILE, PAGE_FILE, README_FILE, outdated_files, regenerate
from handbench.leaderboard.plots import plot_file
from handbench.leaderboard.provenance import _rerun
from handbench.leaderboard.submissions import EntryInfo
from handbench.leaderboard.submit import submit
from handbench.leaderboard.verify import verify_runs
from handbench.protocol import load_protocol
from handbench.registry import compiled_model, get_task_class
from handbench.stats import wilson_interval

REPO_LEADERBOARD = Path(__file__).resolve().parents[1] / "leaderboard"
PROTOCOL = load_protocol("hb-v1")
TASK = "lift-cube"
TASK_VERSION = PROTOCOL.task(TASK).task_version
PLOT_FILE = plot_file(PROTOCOL.name)
REPRODUCED = ("success", "success_at_end", "steps", "return", "time_to_success")


# ------------------------------------------------------------------------------------------- fixtures
def episode_rows(checkpoint_hash: str, success_rate: float, rng_seed: int,
                 pairs: tuple[tuple[str, str], ...] = ((TASK, "hb16"),), policy: str = "diffusion") -> pd.DataFrame:
    """Protocol-conformant episodes in the evaluator's own table format, with the model_hash the task and hand
    compile to. Reference policies' rows are what the policy really does on every seed (validation re-runs a
    sample of them drawn from a hash of the rows)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for task, hand in pairs:
        fixed = PROTOCOL.task(task)
        real = (_rerun(policy, task, hand, "state", PROTOCOL.name, tuple(fixed.eval_seeds)).set_index("seed")
                if policy in ("expert", "random", "hold") else None)
        for seed in fixed.eval_seeds:
            success = bool(rng.random() < success_rate)
            steps = int(rng.integers(20, fixed.episode_steps + 1)) if success else fixed.episode_steps
            outcome = {"success": success, "success_at_end": success, "steps": steps,
                       "return": round(float(rng.normal(5, 1)), 6), "time_to_success": steps if success else None}
            if real is not None and seed in real.index:
                outcome = {column: real.loc[seed, column] for column in REPRODUCED}
            rows.append({"task": task, "hand": hand, "seed": seed, **outcome, "wall_time": 0.5, "physics_time": 0.3,
                         "policy_time": 0.1, "policy": policy,
                         "checkpoint": f"runs/{checkpoint_hash}/policy.pt" if checkpoint_hash else "",
                         "checkpoint_hash": checkpoint_hash, "obs_mode": "state", "protocol": PROTOCOL.name,
                         "task_version": fixed.task_version,
                         "model_hash": compiled_model(task, hand, fixed.task_version, PROTOCOL.hand_version(hand))[1],
                         "expert_version": expert_versions(task, fixed.task_version) if policy == "expert" else "",
                         "handbench_version": "0.1.0", "mujoco_version": mujoco.__version__, "error": ""})
    return evaluator_results.episodes_frame(rows)


def expert_versions(task: str, version: int) -> int:
    return get_task_class(task, version).expert.version


def summary_frame(episodes: pd.DataFrame) -> pd.DataFrame:
    return evaluator_results.summarize(episodes, {task: len(PROTOCOL.task(task).eval_seeds)
                                                  for task in set(episodes["task"])})


def write_results(directory: Path, episodes: pd.DataFrame, training_seed: int = 0) -> Path:
    """A results directory as `handbench eval --out` writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    evaluator_results.write_csv(episodes, directory / "episodes.csv")
    evaluator_results.write_csv(summary_frame(episodes), directory / "summary.csv")
    checkpoint, policy = episodes["checkpoint_hash"].iloc[0], episodes["policy"].iloc[0]
    if checkpoint:
        tasks = sorted(set(episodes["task"]))
        meta = {"command": f"handbench eval --policy {policy} --checkpoint runs/{checkpoint}/policy.pt",
                "policy": {"label": policy, "checkpoint_hash": checkpoint,
                           "provenance": {"seed": training_seed, "dataset_hash": "d1", "obs_mode": "state",
                                          "hand": episodes["hand"].iloc[0],
                                          "task": tasks[0] if len(tasks) == 1 else tasks}}}
    else:  # the scripted expert: no checkpoint, no training provenance
        meta = {"command": f"handbench eval --policy {policy} --task all",
                "policy": {"label": policy, "checkpoint": None, "checkpoint_hash": "", "provenance": {}}}
    meta |= {"protocol": {"name": PROTOCOL.name},
             "versions": {"handbench": "0.1.0", "mujoco": mujoco.__version__, "numpy": np.__version__}}
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def make_runs(root: Path, name: str = "m", success_rate: float = 0.6, count: int = 3,
              pairs: tuple[tuple[str, str], ...] = ((TASK, "hb16"),)) -> list[Path]:
    return [write_results(root / f"{name}-seed{i}", episode_rows(f"{name}{i:015d}", success_rate, i + 10 * len(name),
                                                                  pairs), training_seed=i)
            for i in range(count)]


def make_expert_run(directory: Path, success_rate: float = 0.95,
                    pairs: tuple[tuple[str, str], ...] = ((TASK, "hb16"), (TASK, "shadow"))) -> Path:
    """`handbench eval --policy expert` output: empty checkpoint hash, no training seed."""
    return write_results(directory, episode_rows("", success_rate, 99, pairs, policy="expert"))


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return tmp_path / "leaderboard"


# ------------------------------------------------------------------------------------------- the CI check
def test_repository_leaderboard_is_valid_and_up_to_date():
    """Every submission in leaderboard/ passes validation and the generated files match a regeneration
    (CSV and README byte for byte; the PNG by the fingerprint of the data it was drawn from)."""
    assert (REPO_LEADERBOARD / "submissions" / ".gitkeep").exists()
    assert outdated_files(REPO_LEADERBOARD) == []


# ------------------------------------------------------------------------------------------- submit
def test_submit_writes_entry_tables_and_plot(tmp_path, board):
    runs = make_runs(tmp_path, "good", success_rate=0.7)
    result = submit(runs, EntryInfo(method="Good method", authors="A. B.", code_url="https://example.org/code"),
                    leaderboard_dir=board)
    entry = board / "submissions" / "good-method"
    assert result.entry_dir == entry and result.rank == 1
    for index, run in enumerate(runs):  # byte-exact copies of the results
        for name in ("episodes.csv", "summary.csv", "meta.json"):
            assert (entry / f"run-{index}" / name).read_bytes() == (run / name).read_bytes()
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["method"] == "Good method" and meta["protocol"] == PROTOCOL.name
    assert meta["runs"][1]["commands"]["eval"].startswith("handbench eval --policy diffusion")
    assert meta["runs"][1]["training_seed"] == 1 and meta["obs_mode"] == "state"
    assert meta["runs"][1]["checkpoint_hash"] == "good000000000000001"

    table = pd.read_csv(board / CSV_FILE)
    task_row = table[(table["entry_id"] == "good-method") & (table["task"] == TASK)].iloc[0]
    successes = sum(int(pd.read_csv(run / "episodes.csv")["success"].sum()) for run in runs)
    assert task_row["episodes"] == 150
    assert task_row["success_rate"] == pytest.approx(successes / 150, abs=1e-4)
    low, high = wilson_interval(successes, 150)
    assert (task_row["ci_low"], task_row["ci_high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    overall = table[(table["entry_id"] == "good-method") & (table["task"] == "overall")].iloc[0]
    assert overall["ci_low"] <= overall["success_rate"] <= overall["ci_high"]
    assert overall["iqm_ci_low"] <= overall["iqm"] <= overall["iqm_ci_high"]
    readme = (board / README_FILE).read_text()
    assert "[Good method](submissions/good-method/)" in readme and "[code](https://example.org/code)" in readme
    assert (board / PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    assert outdated_files(board) == []


def test_one_results_directory_per_task_and_training_seed(tmp_path, board):
    """Baseline checkpoints are trained per task: an entry over two tasks gives 2 x 3 directories."""
    runs = [write_results(tmp_path / f"{task}-{hand}-seed{seed}",
                          episode_rows(f"{task[:4]}{hand}{seed:08d}", 0.5, seed, ((task, hand),)), training_seed=seed)
            for seed in (2, 0, 1) for task, hand in ((TASK, "hb16"), ("pick-place", "hb16"))]
    result = submit(runs, EntryInfo(method="Per task"), leaderboard_dir=board)
    assert result.scores.entry.training_seeds == 3 and result.scores.matrix.shape == (3, 2)
    by_seed = [float(pd.read_csv(tmp_path / f"{TASK}-hb16-seed{seed}" / "episodes.csv")["success"].mean())
               for seed in (0, 1, 2)]
    assert result.scores.matrix[:, 0].tolist() == pytest.approx(by_seed)  # rows ordered by training seed
    meta = json.loads((result.entry_dir / "meta.json").read_text())
    assert meta["tasks"] == ["lift-cube/hb16", "pick-place/hb16"] and meta["runs"][0]["tasks"] == ["lift-cube/hb16"]
    table = pd.read_csv(board / CSV_FILE)
    assert table[table["task"] == "pick-place"]["training_seeds"].tolist() == [3]
    assert outdated_files(board) == []


def test_regeneration_is_byte_identical_and_ranks(tmp_path, board):
    submit(make_runs(tmp_path, "weak", success_rate=0.2), EntryInfo(method="Weak"), leaderboard_dir=board)
    submit(make_runs(tmp_path, "strong", success_rate=0.9), EntryInfo(method="Strong"), leaderboard_dir=board)
    before = {name: (board / name).read_bytes() for name in (CSV_FILE, README_FILE, PLOT_FILE)}
    regenerate(board)
    assert {name: (board / name).read_bytes() for name in before} == before
    table = pd.read_csv(board / CSV_FILE)
    overall = table[table["task"] == "overall"].set_index("entry_id")
    assert overall.loc["strong", "rank"] == 1 and overall.loc["weak", "rank"] == 2


def test_out_of_date_files_are_detected(tmp_path, board):
    submit(make_runs(tmp_path, "a"), EntryInfo(method="A"), leaderboard_dir=board)
    (board / README_FILE).write_text((board / README_FILE).read_text() + "edited\n")
    assert outdated_files(board) == [f"{board / README_FILE} differs from its regeneration"]
    regenerate(board)
    png = (board / PLOT_FILE).read_bytes()
    submit(make_runs(tmp_path, "b", success_rate=0.3), EntryInfo(method="B"), leaderboard_dir=board)
    (board / PLOT_FILE).write_bytes(png)  # a plot drawn from the old data
    assert outdated_files(board) == [f"{board / PLOT_FILE} was drawn from other data than the submissions"]


def test_a_protocols_sweep_report_is_linked_from_the_readme_and_the_page(tmp_path, board):
    submit(make_runs(tmp_path, "a"), EntryInfo(method="A"), leaderboard_dir=board)
    assert "Reference sweep" not in (board / README_FILE).read_text()  # the project has no sweep report
    report = tmp_path / "baselines" / "sweeps" / PROTOCOL.name / "report"
    report.mkdir(parents=True)
    for name, data in (("results.md", b"| table |\n"), ("compute.md", b"hours\n"), ("results.png", b"\x89PNG"),
                       ("notes.txt", b"not shown")):
        (report / name).write_bytes(data)
    # a report that appears after the last regeneration makes the board out of date (CI's check catches it)
    assert outdated_files(board) == [f"{board / README_FILE} differs from its regeneration",
                                     f"{board / PAGE_FILE} differs from its regeneration"]
    regenerate(board)
    readme, page = (board / README_FILE).read_text(), (board / PAGE_FILE).read_text()
    link = f"../baselines/sweeps/{PROTOCOL.name}/report"
    assert f"### Reference sweep ({PROTOCOL.name})" in readme and "notes.txt" not in readme
    assert f"[results.md]({link}/results.md) · [compute.md]({link}/compute.md)" in readme  # results first
    assert f"![results.png]({link}/results.png)" in readme
    assert f'<img class="plot" src="{link}/results.png"' in page and f'<a href="{link}/compute.md">' in page
    assert outdated_files(board) == []


def test_empty_leaderboard_generates(board):
    regenerate(board)
    assert (board / "submissions" / ".gitkeep").exists()
    assert "No entries yet" in (board / README_FILE).read_text()
    assert (board / CSV_FILE).read_text().startswith(
        "protocol,protocol_status,task_set,rank,entry_id,method,obs_mode,task,hand,")
    assert outdated_files(board) == []


def test_replace_overwrites_an_entry(tmp_path, board):
    submit(make_runs(tmp_path, "x", success_rate=0.1), EntryInfo(method="X"), leaderboard_dir=board)
    submit(make_runs(tmp_path, "y", success_rate=0.9), EntryInfo(method="X"), leaderboard_dir=board, replace=True)
    meta = json.loads((board / "submissions" / "x" / "meta.json").read_text())
    assert meta["runs"][0]["checkpoint_hash"] == "y000000000000000"
    assert sorted(p.name for p in (board / "submissions").iterdir()) == [".gitkeep", "x"]


# ------------------------------------------------------------------------------------------- CLI
def test_cli_submit_and_leaderboard_views(tmp_path, board, capsys):
    args = ["--leaderboard-dir", str(board)]
    assert main(["submit", *map(str, make_runs(tmp_path, "p", 0.8, pairs=((TASK, "hb16"), ("pick-place", "hb16")))),
                 "--method", "P", *args]) == 0
    assert main(["submit", *map(str, make_runs(tmp_path, "q", 0.3)), "--method", "Q", *args]) == 0
    assert "added entry 'q'" in capsys.readouterr().out

    assert main(["leaderboard", "--format", "csv", *args]) == 0
    printed = capsys.readouterr().out
    assert printed == (board / CSV_FILE).read_text()

    assert main(["leaderboard", "--task", TASK, "--format", "md", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 2 and "| 1 | P | state | hb16 |" in lines[2]  # P and Q on lift-cube/hb16

    assert main(["leaderboard", *args]) == 0
    assert "pick-place/hb16" in capsys.readouterr().out

    assert main(["leaderboard", "--compare", "p", "q", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("P(p > q) = ") and "over 1 task(s): lift-cube/hb16" in out

    assert main(["leaderboard", "--check", *args]) == 0
    assert main(["leaderboard", "--compare", "p", "nope", *args]) == 2
    assert "unknown entry 'nope'; valid: p, q" in capsys.readouterr().err
    assert main(["leaderboard", "--task", "nope", *args]) == 2
    assert "unknown task in protocol hb-v1: 'nope'; valid: " in capsys.readouterr().err


def test_cli_refusal_is_one_line(tmp_path, board, capsys):
    runs = make_runs(tmp_path, "one", count=1)
    assert main(["submit", str(runs[0]), "--method", "One", "--leaderboard-dir", str(board)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("handbench submit: error: lift-cube/hb16 is evaluated by 1 results directory; protocol "
                          "hb-v1 asks for one per training seed, at least 3")
    assert not (board / "submissions" / "one").exists()


# ------------------------------------------------------------------------------------------- refusals
Mutation = Callable[[list[Path]], None]


def edit_episodes(index: int, change: Callable[[pd.DataFrame], pd.DataFrame], keep_summary: bool = False):
    """Change run ``index``'s episodes (and, unless keep_summary, rewrite its summary to match)."""
    def mutate(runs: list[Path]) -> None:
        path = runs[index] / "episodes.csv"
        frame = change(evaluator_results.read_episodes(path))
        frame.to_csv(path, index=False)
        if not keep_summary:
            summary_frame(frame).to_csv(runs[index] / "summary.csv", index=False)
    return mutate


def edit_meta(index: int, change: Callable[[dict], dict]) -> Mutation:
    def mutate(runs: list[Path]) -> None:
        path = runs[index] / "meta.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return mutate


def set_cell(column: str, value, row: int = 0):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


def first_where(frame: pd.DataFrame, success: bool) -> int:
    return int(frame.index[frame["success"] == success][0])


def fail_with_tts(frame):
    frame.loc[first_where(frame, False), "time_to_success"] = 5
    return frame


def success_tts_beyond_steps(frame):
    row = first_where(frame, True)
    frame.loc[row, "time_to_success"] = frame.loc[row, "steps"] + 1
    return frame


def success_not_ending(frame):
    row = first_where(frame, True)
    frame.loc[row, "time_to_success"] = frame.loc[row, "steps"] - 5
    return frame


def short_failure(frame):
    frame.loc[first_where(frame, False), "steps"] = 40
    return frame


def end_success_without_success(frame):
    frame.loc[first_where(frame, False), "success_at_end"] = True
    return frame


def late_success(frame):
    """A failure turned into a success at the last step: consistent episodes, but the summary is stale."""
    row = first_where(frame, False)
    frame.loc[row, ["success", "success_at_end", "time_to_success"]] = [True, True, frame.loc[row, "steps"]]
    return frame


def copy_run(source: int, target: int) -> Mutation:
    def mutate(runs: list[Path]) -> None:
        for name in ("episodes.csv", "summary.csv", "meta.json"):
            (runs[target] / name).write_bytes((runs[source] / name).read_bytes())
    return mutate


def summary_off(runs: list[Path]) -> None:
    path = runs[1] / "summary.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "ci_low"] = frame.loc[0, "ci_low"] + 0.02
    frame.to_csv(path, index=False)


def copies_of_one_evaluation(runs: list[Path]) -> None:
    """Run 0 copied as runs 1 and 2 under invented checkpoint hashes and training seeds."""
    original = json.loads((runs[0] / "meta.json").read_text())["policy"]["checkpoint_hash"]
    for index in (1, 2):
        for name in ("episodes.csv", "summary.csv"):
            (runs[index] / name).write_text((runs[0] / name).read_text().replace(original, f"{index:016x}"))
        edit_meta(index, lambda m: m)(runs)  # keeps its own checkpoint hash and training seed
        meta = json.loads((runs[index] / "meta.json").read_text())
        assert meta["policy"]["checkpoint_hash"] != original
        episodes = pd.read_csv(runs[index] / "episodes.csv")
        episodes["checkpoint_hash"] = meta["policy"]["checkpoint_hash"]
        episodes.to_csv(runs[index] / "episodes.csv", index=False)


def other_model(runs: list[Path]) -> None:
    edit_episodes(1, lambda f: f.assign(model_hash="another-model"))(runs)


REFUSALS: dict[str, tuple[Mutation, str]] = {
    "protocol in meta.json": (edit_meta(0, lambda m: {**m, "protocol": {"name": "hb-v0"}}),
                              "meta.json: unknown protocol 'hb-v0'; valid: "),
    "protocol in rows": (edit_episodes(0, set_cell("protocol", "hb-v0", 3)),
                         "lift-cube/hb16 seed 1000003: protocol 'hb-v0' does not match"),
    "lane width": (edit_episodes(1, lambda f: f.assign(lanes=8)),
                   "lift-cube/hb16 seed 1000000 was evaluated at 8 lanes; protocol hb-v1 batches queries over 1"),
    "policy noise": (edit_meta(2, lambda m: {**m, "rollout": {"lanes": 1, "policy_noise": "episode"}}),
                     "evaluated with policy noise 'episode'; protocol hb-v1 fixes 'fixed'"),
    "task version": (edit_episodes(1, lambda f: f.assign(task_version=1)),
                     "lift-cube/hb16 was evaluated at task version '1', protocol hb-v1 fixes v0"),
    "unknown task": (edit_episodes(0, lambda f: f.assign(task="open-door"), keep_summary=True),
                     "unknown task in protocol hb-v1: 'open-door'; valid:"),
    "hand outside protocol": (edit_episodes(0, lambda f: f.assign(hand="allegro")),
                              "hand 'allegro' is not part of protocol hb-v1 for lift-cube"),
    "missing seed": (edit_episodes(2, lambda f: f.drop(index=7)),
                     "lift-cube/hb16 is missing 1 of 50 protocol seeds (1000007)"),
    "repeated seed": (edit_episodes(0, set_cell("seed", 1000001, 0)),
                      "seed(s) evaluated more than once (1000001)"),
    "seed outside protocol": (edit_episodes(0, set_cell("seed", 17, 4)),
                              "seed(s) outside the protocol (17); protocol hb-v1 uses seeds 1000000..1000049"),
    "failure with time to success": (edit_episodes(0, fail_with_tts), "success=False but time_to_success=5"),
    "success after the episode": (edit_episodes(0, success_tts_beyond_steps),
                                  "success=True but time_to_success="),
    "success that did not end the episode": (edit_episodes(0, success_not_ending),
                                             "protocol hb-v1 ends an episode on success"),
    "short failure": (edit_episodes(0, short_failure), "failed after 40 steps; a failed episode runs all 100"),
    "success at end only": (edit_episodes(0, end_success_without_success), "success_at_end=True but success=False"),
    "non-finite return": (edit_episodes(0, set_cell("return", float("nan"), 2), keep_summary=True),
                          "seed 1000002: return is nan, not a finite number"),
    "too many steps": (edit_episodes(0, lambda f: f.assign(steps=101)), "steps=101 outside 1..100"),
    "empty provenance": (edit_episodes(1, set_cell("model_hash", "", 2)),
                         "provenance column model_hash is empty in 1 row(s)"),
    "missing provenance column": (edit_episodes(0, lambda f: f.drop(columns="handbench_version")),
                                  "episodes.csv: missing column(s) handbench_version"),
    "two code versions in a run": (edit_episodes(0, set_cell("handbench_version", "0.0.9", 9)),
                                   "column handbench_version must be the same on every row of one run"),
    "no command in meta": (edit_meta(0, lambda m: {k: v for k, v in m.items() if k != "command"}),
                           "no 'command' recorded"),
    "same checkpoint twice": (copy_run(0, 2), "evaluate the same checkpoint (m000000000000000)"),
    "same training seed twice": (edit_meta(1, lambda m: {**m, "policy": {
        **m["policy"], "provenance": {**m["policy"]["provenance"], "seed": 0}}}),
                                 "were both trained with seed 0"),
    "obs mode outside protocol": (edit_episodes(0, lambda f: f.assign(obs_mode="depth")),
                                  "observation mode 'depth' is not part of protocol hb-v1"),
    "different obs modes per seed": (edit_episodes(1, lambda f: f.assign(obs_mode="pixels")),
                                     "one entry is one observation mode"),
    "summary not from episodes": (summary_off, "summary.csv: lift-cube/hb16 ci_low="),
    "stale summary": (edit_episodes(2, late_success, keep_summary=True), "summary.csv: lift-cube/hb16 successes="),
    "errored episode": (edit_episodes(0, set_cell("error", "step 3: policy raised ValueError: boom", 5)),
                        "seed 1000005 ended with an error (step 3: policy raised ValueError: boom)"),
    "different models per seed": (other_model, "lift-cube/hb16 was evaluated on different models across training"),
    # What a submitter could relabel or make up (issue #17): caught against what can be recomputed here.
    "old mujoco": (edit_episodes(0, lambda f: f.assign(mujoco_version="2.3.7")),
                   "mujoco 2.3.7 is outside the supported versions (<5,>=3.3)"),
    "unreleased handbench": (edit_episodes(1, lambda f: f.assign(handbench_version="9.9.9")),
                             "handbench 9.9.9 is not a handbench release"),
    "mixed versions across seeds": (edit_meta(2, lambda m: {**m, "versions": {**m["versions"], "numpy": "1.26.0"}}),
                                    "was made with numpy 1.26.0 but"),
    "hand relabelled": (lambda runs: [edit_episodes(i, lambda f: f.assign(hand="shadow"))(runs) for i in range(3)],
                        "lift-cube/shadow rows say model_hash"),
    "made-up model hash": (lambda runs: [edit_episodes(i, lambda f: f.assign(model_hash="0123456789abcdef"))(runs)
                                         for i in range(3)], "rows say model_hash 0123456789abcdef, but lift-cube v0"),
    "state relabelled as pixels": (lambda runs: [edit_episodes(i, lambda f: f.assign(obs_mode="pixels"))(runs)
                                                 for i in range(3)], "the checkpoint was trained on 'state'"),
    "one evaluation as three seeds": (copies_of_one_evaluation, "have bit-identical results on lift-cube/hb16"),
    "absolute path in command": (edit_meta(0, lambda m: {**m, "command": "handbench eval --out /home/me/r"}),
                                 "records the absolute path /home/me/r; paths must be relative to the project"),
    "missing summary": (lambda runs: (runs[1] / "summary.csv").unlink(), "seed1: missing summary.csv"),
    "corrupt meta": (lambda runs: (runs[0] / "meta.json").write_text("{oops"), "meta.json: not valid JSON"),
    "bad boolean": (edit_episodes(0, set_cell("success", "maybe", 1), keep_summary=True), "column success has 'maybe'"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_submit_refuses(name, tmp_path, board):
    mutate, message = REFUSALS[name]
    runs = make_runs(tmp_path)
    mutate(runs)
    with pytest.raises(HandbenchError) as error:
        submit(runs, EntryInfo(method="M"), leaderboard_dir=board)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (board / "submissions" / "m").exists()


def physics_failure(frame):
    """An episode the simulation blew up in: truncated early, failed, its error naming the MuJoCo warning."""
    row = first_where(frame, False)
    frame["error"] = frame["error"].astype(object)
    frame.loc[row, ["steps", "error"]] = [4, "step 3: physics error: mjWARN_BADQACC"]
    return frame


def test_physics_failures_count_as_failed_episodes(tmp_path, board):
    """Issue #12: a physics failure is a failed episode, not a broken run: submit accepts it and counts it."""
    runs = make_runs(tmp_path)
    edit_episodes(0, physics_failure)(runs)
    result = submit(runs, EntryInfo(method="M"), leaderboard_dir=board)
    assert result.scores.entry.runs
    edit_episodes(1, set_cell("error", "step 3: policy raised ValueError: boom", 5))(runs)
    with pytest.raises(HandbenchError, match="ended with an error"):  # any other error still refuses the run
        submit(runs, EntryInfo(method="M2"), leaderboard_dir=board)


def test_refuses_too_few_training_seeds(tmp_path, board):
    with pytest.raises(HandbenchError, match="lift-cube/hb16 is evaluated by 2 results directories; protocol hb-v1 "
                                             "asks for one per training seed, at least 3"):
        submit(make_runs(tmp_path, count=2), EntryInfo(method="M"), leaderboard_dir=board)


def test_refuses_uneven_training_seeds_per_task(tmp_path, board):
    runs = make_runs(tmp_path, "a", count=4) + make_runs(tmp_path, "b", pairs=(("pick-place", "hb16"),))
    with pytest.raises(HandbenchError, match=r"tasks have different numbers of training seeds \(lift-cube/hb16: 4, "
                                             r"pick-place/hb16: 3\); report the same number for every task"):
        submit(runs, EntryInfo(method="M"), leaderboard_dir=board)


def test_refuses_existing_entry_without_replace(tmp_path, board):
    submit(make_runs(tmp_path, "a"), EntryInfo(method="A"), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="entry 'a' already exists .* pass --replace"):
        submit(make_runs(tmp_path, "b"), EntryInfo(method="A"), leaderboard_dir=board)


def test_refuses_checkpoints_already_on_the_leaderboard(tmp_path, board):
    runs = make_runs(tmp_path, "a")
    submit(runs, EntryInfo(method="A"), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="already on the leaderboard in entry 'a'"):
        submit(runs, EntryInfo(method="Same runs, new name"), leaderboard_dir=board)


def test_refuses_bad_url_and_entry_id(tmp_path, board):
    runs = make_runs(tmp_path)
    with pytest.raises(HandbenchError, match="--paper-url 'arxiv.org/abs/1' is not an http"):
        submit(runs, EntryInfo(method="M", paper_url="arxiv.org/abs/1"), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="entry id '../up' is not valid"):
        submit(runs, EntryInfo(method="M"), leaderboard_dir=board, entry_id="../up")


def test_refuses_missing_results_dir(tmp_path, board):
    with pytest.raises(HandbenchError, match="results directory .*nowhere does not exist"):
        submit([tmp_path / "nowhere"], EntryInfo(method="M"), leaderboard_dir=board)


def test_tampered_submission_fails_the_check(tmp_path, board):
    submit(make_runs(tmp_path, "a"), EntryInfo(method="A"), leaderboard_dir=board)
    edit_episodes(0, set_cell("seed", 1000002, 1), keep_summary=True)([board / "submissions" / "a" / "run-1"])
    with pytest.raises(HandbenchError, match="run-1: lift-cube/hb16 has seed"):
        outdated_files(board)


# ------------------------------------------------------------------------------------------- real evaluator output
class HoldPolicy:
    """Holds every actuator at mid-range: never succeeds, but runs the real evaluator end to end."""

    def __init__(self, env, checkpoint=None):
        self.action = (env.action_space.low + env.action_space.high) / 2

    def reset(self) -> None:
        pass

    def act(self, observation):
        return self.action


@pytest.mark.slow
def test_real_evaluator_output_without_training_provenance_is_refused(tmp_path, board, monkeypatch):
    """`handbench eval` output as the evaluator writes it passes the protocol checks, but a checkpoint that does
    not say what it was trained on (observation mode, task, hand) cannot back a leaderboard row. (Real output that
    is accepted end to end: tests/test_leaderboard_verify.py.)"""
    from handbench.evaluation import evaluate

    monkeypatch.chdir(tmp_path)  # the project folder: recorded paths are stored relative to it
    checkpoint = tmp_path / "weights.bin"
    checkpoint.write_bytes(b"weights")
    evaluate(policy=f"{__name__}:HoldPolicy", checkpoint=str(checkpoint), task=TASK, workers=0, protocol=PROTOCOL.name,
             out=tmp_path / "run0", progress=False)
    runs = [tmp_path / "run0"]
    for index in (1, 2):
        target = tmp_path / f"run{index}"
        target.mkdir()
        for name in ("episodes.csv", "summary.csv", "meta.json"):
            text = (runs[0] / name).read_text()
            original = pd.read_csv(runs[0] / "episodes.csv", dtype=str)["checkpoint_hash"].iloc[0]
            (target / name).write_text(text.replace(original, f"{index:016x}"))
        runs.append(target)
    with pytest.raises(HandbenchError, match="the checkpoint does not record its obs_mode, hand, task"):
        submit(runs, EntryInfo(method="Hold"), leaderboard_dir=board)
    assert not (board / "submissions").exists()


# ------------------------------------------------------------------------------------------- reference entries
def test_reference_entry_is_stored_and_shown_unranked(tmp_path, board):
    """The scripted expert goes in as a reference: validated like any result, shown apart, never ranked."""
    submit(make_runs(tmp_path, "m", success_rate=0.4), EntryInfo(method="M"), leaderboard_dir=board)
    result = submit([make_expert_run(tmp_path / "expert")], EntryInfo(method="Scripted expert"),
                    leaderboard_dir=board, reference=True)
    assert result.rank is None and result.entries == 1
    assert result.describe().startswith("added reference entry 'scripted-expert'")
    meta = json.loads((board / "submissions" / "scripted-expert" / "meta.json").read_text())
    assert meta["reference"] is True and meta["policy"] == "expert" and meta["runs"][0]["checkpoint_hash"] == ""
    assert meta["tasks"] == ["lift-cube/hb16", "lift-cube/shadow"]

    table = pd.read_csv(board / CSV_FILE, keep_default_na=False)
    assert list(table.columns)[-1] == "kind"
    method_rows, reference_rows = table[table["entry_id"] == "m"], table[table["entry_id"] == "scripted-expert"]
    assert set(method_rows["kind"]) == {"method"} and method_rows["rank"].tolist() == ["1", "1"]
    assert set(reference_rows["kind"]) == {"reference"} and set(reference_rows["rank"]) == {""}
    assert reference_rows["task"].tolist() == ["overall", TASK, TASK]
    assert table.index[table["entry_id"] == "scripted-expert"].min() > table.index[table["entry_id"] == "m"].max()
    overall = reference_rows[reference_rows["task"] == "overall"].iloc[0]
    assert overall["training_seeds"] == 0 and overall["ci_low"] == "" and overall["iqm_ci_low"] == ""
    expert = pd.read_csv(tmp_path / "expert" / "episodes.csv")
    hb16 = reference_rows[reference_rows["hand"] == "hb16"].iloc[0]
    assert float(hb16["success_rate"]) == pytest.approx(expert[expert["hand"] == "hb16"]["success"].mean(), abs=1e-4)

    readme = (board / README_FILE).read_text()
    ranking, reference = readme.split("### Reference (hb-v1)", 1)
    assert "[M](submissions/m/)" in ranking and "Scripted expert" not in ranking
    assert "Not ranked." in reference and "| [Scripted expert](submissions/scripted-expert/) | state |" in reference
    before = {name: (board / name).read_bytes() for name in (CSV_FILE, README_FILE, PLOT_FILE)}
    regenerate(board)
    assert {name: (board / name).read_bytes() for name in before} == before
    assert outdated_files(board) == []


def test_reference_is_refused_for_a_non_expert_policy(tmp_path, board):
    with pytest.raises(HandbenchError, match="evaluates policy 'diffusion'; --reference is only for the reference "
                                             r"policies' results \(expert, random, hold\)"):
        submit(make_runs(tmp_path, count=1), EntryInfo(method="M"), leaderboard_dir=board, reference=True)
    assert not (board / "submissions" / "m").exists()


def test_expert_results_are_refused_as_a_method(tmp_path, board):
    with pytest.raises(HandbenchError, match="evaluates the reference policy 'expert', which has no checkpoint or "
                                             "training seeds; submit it as a reference entry with --reference"):
        submit([make_expert_run(tmp_path / "expert")], EntryInfo(method="Expert"), leaderboard_dir=board)


def test_method_entry_still_needs_three_training_seeds(tmp_path, board):
    """--reference is no way around the training seeds: one diffusion run is refused with or without it."""
    runs = make_runs(tmp_path, count=1)
    with pytest.raises(HandbenchError, match="is evaluated by 1 results directory; protocol hb-v1 asks for one per "
                                             "training seed, at least 3"):
        submit(runs, EntryInfo(method="M"), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="--reference is only for the reference policies"):
        submit(runs, EntryInfo(method="M"), leaderboard_dir=board, reference=True)


def test_reference_holds_one_evaluation_per_task_and_hand(tmp_path, board):
    runs = [make_expert_run(tmp_path / "a"), make_expert_run(tmp_path / "b", pairs=((TASK, "hb16"),))]
    with pytest.raises(HandbenchError, match="lift-cube/hb16 is evaluated by 2 results directories .* a reference "
                                             "entry holds exactly one evaluation per task and hand"):
        submit(runs, EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)
    per_hand = [make_expert_run(tmp_path / hand, pairs=((TASK, hand),)) for hand in ("hb16", "shadow")]
    result = submit(per_hand, EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)
    assert sorted(result.scores.tasks) == [(TASK, "hb16"), (TASK, "shadow")] and len(result.scores.entry.runs) == 2


@pytest.mark.parametrize("name", ["protocol in meta.json", "protocol in rows", "task version", "repeated seed",
                                  "seed outside protocol", "short failure", "failure with time to success",
                                  "missing provenance column", "errored episode"])
def test_reference_keeps_the_protocol_checks(name, tmp_path, board):
    mutate, message = REFUSALS[name]
    if "failure" in name:  # the expert succeeds on every seed: a floor's results have the failures to edit
        run = write_results(tmp_path / "expert", episode_rows("", 0.0, 7, ((TASK, "hb16"),), policy="hold"))
    else:
        run = make_expert_run(tmp_path / "expert", pairs=((TASK, "hb16"),))
    mutate([run, run])  # the mutations address run 0 or 1; both are this one run
    with pytest.raises(HandbenchError) as error:
        submit([run], EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)
    assert message in str(error.value)
    assert not (board / "submissions" / "scripted-expert").exists()


def test_reference_from_an_older_expert_is_refused(tmp_path, board):
    """An expert changed since the reference was evaluated makes its row stale; submit and the check say so."""
    run = make_expert_run(tmp_path / "expert", pairs=((TASK, "hb16"),))
    current = expert_versions(TASK, TASK_VERSION)
    edit_episodes(0, lambda f: f.assign(expert_version=current - 1))([run])
    stale = f"expert version {current - 1} but the current expert is version {current}"
    with pytest.raises(HandbenchError, match=stale):
        submit([run], EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)


def test_a_stale_reference_is_replaced_by_a_fresh_one(tmp_path, board):
    """After an expert changes, the stored reference fails the check, and --replace with new results fixes it."""
    run = make_expert_run(tmp_path / "old", pairs=((TASK, "hb16"),))
    submit([run], EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)
    stored = board / "submissions" / "scripted-expert" / "run-0"
    edit_episodes(0, lambda f: f.assign(expert_version=0))([stored])
    with pytest.raises(HandbenchError, match="current expert is version"):
        submit(make_runs(tmp_path, "m"), EntryInfo(method="M"), leaderboard_dir=board)
    fresh = make_expert_run(tmp_path / "fresh", pairs=((TASK, "hb16"),))
    submit([fresh], EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True, replace=True)
    submit(make_runs(tmp_path, "m"), EntryInfo(method="M"), leaderboard_dir=board)
    assert outdated_files(board) == []


def test_stored_reference_flag_cannot_be_flipped(tmp_path, board):
    """Editing meta.json to rank the expert as a method, or to a non-boolean flag, fails the check."""
    submit([make_expert_run(tmp_path / "expert")], EntryInfo(method="Scripted expert"), leaderboard_dir=board,
           reference=True)
    meta_path = board / "submissions" / "scripted-expert" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "reference": False}))
    with pytest.raises(HandbenchError, match="submit it as a reference entry with --reference"):
        outdated_files(board)
    meta_path.write_text(json.dumps({**meta, "reference": "yes"}))
    with pytest.raises(HandbenchError, match="reference must be true or false, not 'yes'"):
        outdated_files(board)


def test_cli_reference_submit_and_views(tmp_path, board, capsys):
    args = ["--leaderboard-dir", str(board)]
    assert main(["submit", *map(str, make_runs(tmp_path, "p", 0.5)), "--method", "P", *args]) == 0
    assert main(["submit", str(make_expert_run(tmp_path / "expert")), "--method", "Scripted expert", "--reference",
                 *args]) == 0
    assert "added reference entry 'scripted-expert'" in capsys.readouterr().out
    assert main(["leaderboard", "--task", TASK, "--format", "md", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| 1 | P | state | hb16 |" in lines[2] and lines[3].startswith("| ref | Scripted expert | state | hb16 |")
    assert main(["leaderboard", "--format", "md", *args]) == 0
    assert "| [Scripted expert](submissions/scripted-expert/) |" in capsys.readouterr().out
    # The terminal table shows the ranked entries' tasks; the expert's other results are one flag away.
    assert main(["leaderboard", *args]) == 0
    printed = capsys.readouterr().out
    assert "Scripted expert" in printed and "lift-cube/shadow" not in printed
    assert "1 task/hand result column(s) not shown" in printed and "no entry reports 10 of the 12" in printed
    assert "cannot be: no train command recorded" in printed  # these made-up runs record no train command
    assert main(["leaderboard", "--check", *args]) == 0
    assert main(["submit", *map(str, make_runs(tmp_path, "q", 0.5, count=1)), "--method", "Q", "--reference",
                 *args]) == 2
    assert "--reference is only for the reference policies" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- fair ranking
def test_entries_are_ranked_overall_only_against_the_same_task_set(tmp_path, board):
    """Cherry-picking: an entry's best task resubmitted alone does not outrank entries reporting more tasks; it is
    ranked in its own task set's table, and the per-task ranking still compares everyone on that task."""
    both = [write_results(tmp_path / f"both-{task}-{seed}", episode_rows(f"both{task[:4]}{seed:08d}", rate, seed,
                                                                         ((task, "hb16"),)), training_seed=seed)
            for seed in range(3) for task, rate in ((TASK, 0.95), ("pick-place", 0.3))]
    submit(both, EntryInfo(method="Both tasks"), leaderboard_dir=board)
    picked = submit(make_runs(tmp_path, "picked", 0.9), EntryInfo(method="Lift only"), leaderboard_dir=board)
    assert picked.rank == 1 and picked.entries == 1
    assert "rank 1 of 1 on hb-v1 task set lift-cube/hb16" in picked.describe()
    readme = (board / README_FILE).read_text()
    two, one = readme.index("**Ranked on `lift-cube/hb16`, `pick-place/hb16` (2 of the 12"), readme.index(
        "**Ranked on `lift-cube/hb16` (1 of the 12")
    assert two < readme.index("[Both tasks]") < one < readme.index("[Lift only]")
    table = pd.read_csv(board / CSV_FILE, keep_default_na=False)
    overall = table[table["task"] == "overall"].set_index("entry_id")
    assert overall.loc["both-tasks", "rank"] == overall.loc["lift-only", "rank"] == 1
    assert overall.loc["lift-only", "task_set"] == "lift-cube/hb16"
    lift = table[(table["task"] == TASK) & (table["kind"] == "method")].set_index("entry_id")
    assert sorted(lift["rank"]) == [1, 2]  # per task, both are ranked together


# ------------------------------------------------------------------------------------------- submitter text
def test_submitter_text_is_capped_and_escaped(tmp_path, board):
    runs = make_runs(tmp_path)
    with pytest.raises(HandbenchError, match="--method is 10000 characters long; at most 80"):
        submit(runs, EntryInfo(method="x" * 10_000), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="--notes contains a control character"):
        submit(runs, EntryInfo(method="M", notes="line\nbreak"), leaderboard_dir=board)
    with pytest.raises(HandbenchError, match="is not an http"):
        submit(runs, EntryInfo(method="M", code_url="https://x.org/a) <b>"), leaderboard_dir=board)
    evil = "x](https://evil.example) <img src=x onerror=alert(1)>"
    submit(runs, EntryInfo(method=evil, authors="<script>alert(1)</script> | A"), leaderboard_dir=board,
           entry_id="evil")
    readme = (board / README_FILE).read_text()
    assert not re.search(r"(?<!\\)<(img|script)", readme) and "x](https://evil.example)" not in readme
    assert r"[x\](https://evil.example) \<img src=x onerror=alert(1)\>](submissions/evil/)" in readme
    assert r"\<script\>alert(1)\</script\> \| A" in readme
    page = (board / PAGE_FILE).read_text()
    assert "<img src=x" not in page and "<script>alert" not in page
    assert outdated_files(board) == []


# ------------------------------------------------------------------------------------------- paths
def test_project_paths_are_stored_relative(tmp_path, board, monkeypatch):
    """Results recorded with absolute paths inside the project are stored relative to it; paths outside it are
    refused (nobody else could replay them)."""
    monkeypatch.chdir(tmp_path)
    runs = make_runs(tmp_path / "experiments" / "results")
    for run in runs:
        for name in ("meta.json", "episodes.csv"):
            path = run / name
            path.write_text(path.read_text().replace("runs/", f"{tmp_path}/experiments/runs/"))
    assert str(tmp_path) in (runs[0] / "meta.json").read_text()
    result = submit(runs, EntryInfo(method="M"), leaderboard_dir=board)
    stored = (result.entry_dir / "run-0" / "meta.json").read_text() + (result.entry_dir / "meta.json").read_text()
    assert str(tmp_path) not in stored and "--checkpoint experiments/runs/m000000000000000/policy.pt" in stored
    assert str(tmp_path) not in (result.entry_dir / "run-0" / "episodes.csv").read_text()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # another project folder: the paths are outside it
    with pytest.raises(HandbenchError, match="records the absolute path .*paths must be relative to the project"):
        submit(runs, EntryInfo(method="N"), leaderboard_dir=board)


def test_repository_entries_record_no_machine_paths():
    text = "".join(path.read_text() for path in (REPO_LEADERBOARD / "submissions").rglob("*") if path.is_file()
                   and path.suffix in (".json", ".csv"))
    assert "/work/" not in text and "/home/" not in text


# ------------------------------------------------------------------------------------------- reference re-run
def test_a_method_relabelled_as_a_reference_is_refused(tmp_path, board):
    """Learned-policy results relabelled as the scripted expert pass the protocol checks, but the expert is
    deterministic: evaluated again on a sample of seeds, it does not give those episodes."""
    run = write_results(tmp_path / "fake", episode_rows("", 0.42, 5, ((TASK, "hb16"),), policy="diffusion")
                        .assign(policy="expert", expert_version=expert_versions(TASK, TASK_VERSION)))
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "policy": {**meta["policy"], "provenance": {}}}))
    with pytest.raises(HandbenchError, match=r"lift-cube/hb16 seed \d+ records .* but policy 'expert' gives .* "
                                             "when evaluated again here"):
        submit([run], EntryInfo(method="Scripted expert"), leaderboard_dir=board, reference=True)


def test_the_reference_sample_is_drawn_from_the_results_and_catches_a_late_forgery(tmp_path, board):
    """The seeds evaluated again are drawn from a hash of the recorded outcomes: deterministic, spread over all the
    protocol's seeds, and re-drawn by any change, so a forged episode past the first seeds can be the one drawn."""
    from handbench.leaderboard.provenance import REFERENCE_RERUN_EPISODES, rerun_seeds

    honest = episode_rows("", 1.0, 7, ((TASK, "hb16"),), policy="hold")
    seeds = list(PROTOCOL.task(TASK).eval_seeds)
    drawn = rerun_seeds(honest)
    assert drawn == rerun_seeds(honest.copy()) and len(drawn) == REFERENCE_RERUN_EPISODES
    assert set(drawn) <= set(seeds) and drawn != tuple(seeds[:REFERENCE_RERUN_EPISODES])
    # Forge one late episode (a success for the hold floor) such that the draw lands on it; the forger cannot
    # choose the draw without changing the results it is drawn from.
    for seed in seeds[REFERENCE_RERUN_EPISODES:]:
        forged = honest.copy()
        row = int(forged.index[forged["seed"] == seed][0])
        forged.loc[row, ["success", "success_at_end", "steps", "time_to_success"]] = [True, True, 30, 30.0]
        if seed in rerun_seeds(forged):
            break
    else:
        pytest.fail("no single forged episode was drawn")
    assert rerun_seeds(forged) != drawn
    run = write_results(tmp_path / "hold", forged)
    with pytest.raises(HandbenchError, match=f"lift-cube/hb16 seed {seed} records success=True but policy 'hold' "
                                             f"gives success=False when evaluated again here"):
        submit([run], EntryInfo(method="Hold floor"), leaderboard_dir=board, reference=True)



def test_a_reference_return_may_differ_by_rounding_but_no_more(tmp_path, board):
    """Returns go through numpy's BLAS, whose kernel depends on the CPU: a return recorded on another machine may
    differ in its last digits (265.845715 against 265.845691 measured, relative 9e-8) and is accepted; one off by
    more than RETURN_RELATIVE_TOLERANCE, like any other changed column, is refused."""
    from handbench.leaderboard.provenance import RETURN_RELATIVE_TOLERANCE

    honest = episode_rows("", 1.0, 7, ((TASK, "hb16"),), policy="hold")
    assert honest["return"].abs().max() > 1.0  # a perturbation of the returns is visible at six decimals
    rounding = honest.assign(**{"return": (honest["return"] * (1 + RETURN_RELATIVE_TOLERANCE / 3)).round(6)})
    assert not rounding["return"].equals(honest["return"])
    submit([write_results(tmp_path / "rounding", rounding)], EntryInfo(method="Hold floor"), leaderboard_dir=board,
           reference=True)
    off = honest.assign(**{"return": (honest["return"] * (1 + 30 * RETURN_RELATIVE_TOLERANCE)).round(6)})
    with pytest.raises(HandbenchError, match=r"lift-cube/hb16 seed \d+ records return=.* but policy 'hold' gives "
                                             r"return=.* when evaluated again here"):
        submit([write_results(tmp_path / "off", off)], EntryInfo(method="Hold floor 2"), leaderboard_dir=board,
               reference=True)

# ------------------------------------------------------------------------------------------- the page
def add_video(run: Path) -> tuple[str, pd.Series]:
    """A (fake) video of the run's first protocol seed, named as ``handbench eval --videos`` names it."""
    episodes = pd.read_csv(run / "episodes.csv")
    first = episodes[episodes["seed"] == PROTOCOL.task(TASK).eval_seeds[0]].iloc[0]
    outcome = "success" if first["success"] else "failure"
    (run / "videos").mkdir()
    video = f"{TASK}-hb16-seed{first['seed']}-{outcome}.mp4"
    (run / "videos" / video).write_bytes(b"not really an mp4")
    return video, first


def test_page_shows_tables_plot_and_side_by_side_videos(tmp_path, board):
    """index.html: sortable ranked and per-task tables, the plot, and per task and hand the same first protocol
    seeds of every entry side by side, marked from the stored episodes; an entry without videos says so."""
    runs = make_runs(tmp_path, "filmed", 0.5)
    video, first = add_video(runs[0])
    submit(runs, EntryInfo(method="Filmed"), leaderboard_dir=board)
    submit(with_train_commands(make_runs(tmp_path, "unfilmed", 0.3)), EntryInfo(method="Unfilmed"),
           leaderboard_dir=board)
    assert (board / "submissions" / "filmed" / "run-0" / "videos" / video).is_file()
    page = (board / PAGE_FILE).read_text()
    assert page.count('<table class="sortable">') == 2 and "th.sortable" in page and "addEventListener" in page
    assert f'<img class="plot" src="{PLOT_FILE}"' in page
    assert f'<video src="submissions/filmed/run-0/videos/{video}"' in page
    mark = "✓ success" if first["success"] else "✗ failure"
    cells = page.split("<h4>lift-cube/hb16</h4>")[-1]
    assert cells.count(mark) >= 1 and "no video: the checkpoints are not in the repository" in cells
    assert "<code>handbench leaderboard --verify unfilmed --run 0</code> re-derives the run" in cells
    assert outdated_files(board) == []
    (board / "submissions" / "filmed" / "run-0" / "videos" / video).unlink()
    assert outdated_files(board) == [f"{board / PAGE_FILE} differs from its regeneration"]


def with_train_commands(runs: list[Path], which: tuple[int, ...] = (0, 1, 2)) -> list[Path]:
    """The runs, with a recorded train command in the checkpoint provenance of those in ``which``."""
    for index in which:
        edit_meta(index, lambda m: {**m, "policy": {**m["policy"], "provenance": {
            **m["policy"]["provenance"], "command": "handbench train --policy diffusion --dataset d.hdf5 --out r"}}})(
            runs)
    return runs


def test_runs_without_train_commands_say_they_cannot_be_re_derived(tmp_path, board):
    """Checkpoints trained before handbench recorded train commands cannot be retrained as they were: the tables,
    the terminal view and the page say so instead of offering --verify."""
    submit(make_runs(tmp_path, "none", 0.5), EntryInfo(method="None"), leaderboard_dir=board)
    submit(with_train_commands(make_runs(tmp_path, "some", 0.4), which=(0,)), EntryInfo(method="Some"),
           leaderboard_dir=board)
    filmed = with_train_commands(make_runs(tmp_path, "all", 0.3))
    add_video(filmed[0])
    submit(filmed, EntryInfo(method="All"), leaderboard_dir=board)
    readme = (board / README_FILE).read_text()
    assert "| 3 | cannot be: no train command recorded |" in readme.split("[None]")[1].split("\n")[0]
    assert "| 3 | no; 1 of 3 runs can be (run-0) |" in readme.split("[Some]")[1].split("\n")[0]
    assert "| 3 | no |" in readme.split("[All]")[1].split("\n")[0]
    page = (board / PAGE_FILE).read_text().split("<h4>lift-cube/hb16</h4>")[-1]
    assert ("the run records no train command, so it cannot be re-derived; whoever holds the checkpoint can add "
            "them: <code>handbench leaderboard --verify none --run 0 --checkpoint PATH</code>") in page
    with pytest.raises(HandbenchError, match=r"none run-0 records no train command .* runs that can: none "
                                             r"\(whoever holds a run's checkpoint can re-evaluate it"):
        verify_runs(board, "none", [0])
    with pytest.raises(HandbenchError, match=r"some run-1, run-2 record no train command .* runs that can: 0 "):
        verify_runs(board, "some", None)  # --run all: refused before any work starts


def test_floor_policies_are_reference_rows(tmp_path, board):
    """The random and hold floors go in as reference rows like the expert, and are re-run the same way."""
    submit(make_runs(tmp_path, "m", 0.5), EntryInfo(method="M"), leaderboard_dir=board)
    hold = write_results(tmp_path / "hold", episode_rows("", 0.0, 7, ((TASK, "hb16"),), policy="hold"))
    result = submit([hold], EntryInfo(method="Hold floor"), leaderboard_dir=board, reference=True)
    assert result.rank is None
    readme = (board / README_FILE).read_text()
    assert "| [Hold floor](submissions/hold-floor/) | state |" in readme.split("### Reference (hb-v1)")[1]
    faked = write_results(tmp_path / "faked", episode_rows("", 0.0, 7, ((TASK, "hb16"),), policy="hold")
                          .assign(policy="random"))
    with pytest.raises(HandbenchError, match="but policy 'random' gives"):
        submit([faked], EntryInfo(method="Random floor"), leaderboard_dir=board, reference=True)


def test_an_older_protocol_is_kept_as_legacy_once_a_newer_one_has_entries(tmp_path, board, monkeypatch):
    """Entries stay with the protocol they were made under: the newest protocol's tables come first, the older
    one's follow, marked legacy, and the two are never ranked together."""
    import dataclasses

    import handbench.leaderboard.generate as generate
    import handbench.leaderboard.submissions as submissions

    newer = dataclasses.replace(PROTOCOL, name="hb-v9")

    def fake_load(name="hb-v1"):
        return newer if name == "hb-v9" else load_protocol(name)

    monkeypatch.setattr(generate, "load_protocol", fake_load)
    monkeypatch.setattr(submissions, "load_protocol", fake_load)
    submit(make_runs(tmp_path, "old", 0.9), EntryInfo(method="Old rules"), leaderboard_dir=board)
    readme = (board / README_FILE).read_text()
    assert "## Protocol hb-v1\n" in readme and "legacy: made under" not in readme
    new_runs = make_runs(tmp_path, "new", 0.2)
    for run in new_runs:
        edit_episodes(0, lambda f: f.assign(protocol="hb-v9"))([run])
        edit_meta(0, lambda m: {**m, "protocol": {"name": "hb-v9"}})([run])
    result = submit(new_runs, EntryInfo(method="New rules"), leaderboard_dir=board, protocol=newer)
    assert result.rank == 1 and result.entries == 1  # not ranked against the older protocol's entry
    readme = (board / README_FILE).read_text()
    new_at = readme.index("## Protocol hb-v9")
    old_at = readme.index("## Protocol hb-v1 (legacy: made under the older rules)")
    assert new_at < readme.index("[New rules]") < old_at < readme.index("[Old rules]")
    assert (board / plot_file("hb-v9")).is_file() and (board / PLOT_FILE).is_file()
    page = (board / PAGE_FILE).read_text()
    assert page.index('<section id="hb-v9">') < page.index("Protocol hb-v1 (legacy: made under the older rules)")
    table = pd.read_csv(board / CSV_FILE)
    assert table.groupby("protocol")["rank"].min().to_dict() == {"hb-v1": 1, "hb-v9": 1}
    with pytest.raises(HandbenchError, match="evaluated under different protocols"):
        main_compare = __import__("handbench.leaderboard.scores", fromlist=["compare"]).compare
        scores = {s.entry_id: s for s in generate.Leaderboard.load(board).scores}
        main_compare(scores["new-rules"], scores["old-rules"])
    assert outdated_files(board) == []


def test_a_replaced_entry_keeps_the_videos_and_verifications_of_its_unchanged_runs(tmp_path, board):
    """A sweep resubmits its entry (--replace) each time it covers one more task: the runs that did not change
    keep their videos and verification records, under their new run folders; a changed run keeps neither."""
    lift = make_runs(tmp_path, "lift", 0.5)
    video, _ = add_video(lift[1])
    submit(lift, EntryInfo(method="Sweep"), leaderboard_dir=board)
    entry = board / "submissions" / "sweep"
    meta = json.loads((entry / "meta.json").read_text())
    records = [{"date": "2026-11-29", "run": "run-1", "kind": "re-derived"},
               {"date": "2026-11-29", "run": "run-2", "kind": "re-derived"}]
    (entry / "meta.json").write_text(json.dumps({**meta, "verifications": records}))
    shutil.rmtree(lift[1] / "videos")  # the sweep's results folders have no videos: --verify added them
    edit_episodes(2, lambda f: f.assign(wall_time=0.75))(lift)  # run-2 evaluated again: not the same result
    pick = make_runs(tmp_path, "pick", 0.5, pairs=(("pick-place", "hb16"),))
    submit([*pick, *lift], EntryInfo(method="Sweep"), leaderboard_dir=board, replace=True)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["verifications"] == [{**records[0], "run": "run-4"}]
    assert (entry / "run-4" / "videos" / video).is_file() and not (entry / "run-1" / "videos").exists()
    assert "| 2026-11-29 (run-4) |" in (board / README_FILE).read_text()
    assert outdated_files(board) == []


def test_an_open_protocol_is_marked_and_the_released_one_stays_current(tmp_path, board, monkeypatch, capsys):
    """Entries of an open (unreleased) protocol are provisional and say so; the released protocol's entries are not
    legacy until a newer *released* protocol has entries. Which of the protocol's pairs nobody reports is listed."""
    import dataclasses

    import handbench.leaderboard.generate as generate
    import handbench.leaderboard.submissions as submissions

    newer = dataclasses.replace(PROTOCOL, name="hb-v9", released=False)

    def fake_load(name="hb-v1"):
        return newer if name == "hb-v9" else load_protocol(name)

    monkeypatch.setattr(generate, "load_protocol", fake_load)
    monkeypatch.setattr(submissions, "load_protocol", fake_load)
    submit(make_runs(tmp_path, "old", 0.9), EntryInfo(method="Old rules"), leaderboard_dir=board)
    new_runs = make_runs(tmp_path, "new", 0.2)
    for run in new_runs:
        edit_episodes(0, lambda f: f.assign(protocol="hb-v9"))([run])
        edit_meta(0, lambda m: {**m, "protocol": {"name": "hb-v9"}})([run])
    submit(new_runs, EntryInfo(method="New rules"), leaderboard_dir=board, protocol=newer)
    readme = (board / README_FILE).read_text()
    assert readme.index("## Protocol hb-v9 (open: not released yet") < readme.index("## Protocol hb-v1\n")
    assert "legacy" not in readme.split("## Protocol hb-v1")[1].split("\n")[0]
    assert ("**Open protocol.** hb-v9 is not released yet: until it is, its tasks may still change (a change re-runs "
            "the affected entries), so these entries are provisional; hb-v1 is the released protocol until then.") in (
        " ".join(readme.split()).replace("** Open", "**Open"))
    assert "Reported so far: 1 of the 12 task/hand pairs of hb-v9. No entry reports `lift-cube/shadow`," in readme
    page = (board / PAGE_FILE).read_text()
    assert '<h2 class="open">Protocol hb-v9 (open:' in page and '<p class="status"><b>Open protocol.</b>' in page
    assert '<a href="#hb-v9">hb-v9 (open)</a> · <a href="#hb-v1">hb-v1</a>' in page
    table = pd.read_csv(board / CSV_FILE, keep_default_na=False)  # the machine-readable export says so too
    assert table.groupby("protocol")["protocol_status"].agg(set).to_dict() == {"hb-v9": {"open"}, "hb-v1": {"released"}}
    assert outdated_files(board) == []
    capsys.readouterr()
    for view in (["--format", "md"], ["--format", "md", "--task", TASK]):
        assert main(["leaderboard", "--leaderboard-dir", str(board), *view]) == 0
        assert capsys.readouterr().out.startswith("**Open protocol.** hb-v9 is not released yet")
    assert main(["leaderboard", "--leaderboard-dir", str(board), "--format", "csv"]) == 0
    assert {line.split(",")[1] for line in capsys.readouterr().out.splitlines()[1:]} == {"open"}
    assert main(["leaderboard", "--leaderboard-dir", str(board), "--format", "md", "--protocol", "hb-v1"]) == 0
    assert "Open protocol" not in capsys.readouterr().out
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard-dir", str(board)]) == 0  # the newest protocol, and where the rest is
    printed = capsys.readouterr().out
    assert "handbench leaderboard hb-v9 (open: not released yet" in " ".join(printed.split())
    assert "also on the leaderboard: hb-v1 (released); show one with --protocol NAME" in printed


def test_verification_records_are_shown_only_when_well_formed(tmp_path, board):
    submit(make_runs(tmp_path), EntryInfo(method="M"), leaderboard_dir=board)
    meta_path = board / "submissions" / "m" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "verifications": [{"date": "2026-11-29", "run": "run-2"}]}))
    regenerate(board)
    assert "| 3 | 2026-11-29 (run-2) |" in (board / README_FILE).read_text()
    every_run = [{"date": f"2026-11-{day}", "run": f"run-{day - 28}"} for day in (28, 29, 30)]
    meta_path.write_text(json.dumps({**meta, "verifications": every_run}))
    regenerate(board)
    assert "| 3 | 2026-11-28 (all 3 runs) |" in (board / README_FILE).read_text()
    two_runs = [every_run[0], {**every_run[2], "kind": "re-evaluated"}]  # counted, with how they were verified
    meta_path.write_text(json.dumps({**meta, "verifications": two_runs}))
    regenerate(board)
    assert "| 3 | 2026-11-28 (2 of 3 runs, 1 re-evaluated from their checkpoints) |" in (
        board / README_FILE).read_text()
    meta_path.write_text(json.dumps({**meta, "verifications": [{"date": "<b>soon</b>", "run": "run-2"}]}))
    with pytest.raises(HandbenchError, match="verifications record .* is not a date and one of the entry's runs"):
        regenerate(board)


def test_a_reference_policys_run_counts_at_any_lane_width(tmp_path):
    """The expert and the floors act lane by lane (no batched model): their episodes are the same at any width,
    so a reference run evaluated at another width than the protocol's is still valid; a learned run is not."""
    from handbench.leaderboard.validate import load_results_dir, validate_run

    rows = episode_rows("", 0.0, 5, policy="hold").assign(lanes=8)
    run = load_results_dir(write_results(tmp_path / "hold", rows))
    validate_run(run, PROTOCOL, reference=True)
    learned = load_results_dir(write_results(tmp_path / "learned", episode_rows("c" * 16, 0.5, 5).assign(lanes=8)))
    with pytest.raises(HandbenchError, match="evaluated at 8 lanes; protocol hb-v1 batches queries over 1"):
        validate_run(learned, PROTOCOL)
    older = write_results(tmp_path / "older", episode_rows("d" * 16, 0.5, 5))
    pd.read_csv(older / "episodes.csv").drop(columns=["lanes"]).to_csv(older / "episodes.csv", index=False)
    validate_run(load_results_dir(older), PROTOCOL)  # written before batching: one episode per query, hb-v1's width
