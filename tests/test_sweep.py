"""``handbench sweep``: plans expand in order and refuse bad input in one line, shards partition the runs, a tiny
real sweep records relative commands and wall times, skips finished runs, resumes after an interruption and
submits a reference entry; the learning-curve report from fake ledger rows."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from handbench.cli import main
from handbench.errors import HandbenchError
from handbench.stats import wilson_interval
from handbench.sweep import report, runner
from handbench.sweep.plan import load_plan, parse_shard, select
from handbench.sweep.runner import ClaimedElsewhere, StepTimes, Sweep, SweepOptions

PROTOCOL_TASKS = {"lift-cube": ("hb16", "shadow"), "pick-place": ("hb16", "shadow"), "stack": ("hb16",)}

PLAN = """
protocol = "hb-v1"
work_dir = "experiments/sweep"
record_dir = "record"
[methods]
bc = "BC (test)"
diffusion = "DP (test)"
[[stages]]
name = "reference"
policies = ["expert", "hold"]
tasks = "all"
hands = ["hb16", "shadow"]
[[stages]]
name = "state"
policies = ["bc", "diffusion"]
tasks = "all"
hands = ["hb16", "shadow"]
seeds = [0, 1, 2]
[[stages]]
name = "curves"
policies = ["bc"]
tasks = ["lift-cube"]
hands = ["hb16"]
seeds = [0, 1, 2]
demos = [10, 100]
submit = false
"""


def write_plan(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_plan_expands_in_order_without_duplicates(tmp_path):
    runs = load_plan(write_plan(tmp_path)).runs(PROTOCOL_TASKS)
    ids = [run.id for run in runs]
    assert len(ids) == len(set(ids))
    pairs = 5  # stack has no shadow hand in this protocol
    assert len(runs) == 2 * pairs + 2 * pairs * 3 + 3  # references, state sweep, the curve's 10-demo runs
    assert ids[0] == "state-expert-lift-cube-hb16" and ids[2 * pairs] == "state-bc-lift-cube-hb16-d100-s0"
    first_dp = ids.index("state-diffusion-lift-cube-hb16-d100-s0")
    assert all(run.policy == "bc" for run in runs[2 * pairs:first_dp])  # each policy covers everything first
    assert ids[-3:] == [f"state-bc-lift-cube-hb16-d10-s{seed}" for seed in range(3)]
    curve_100 = next(run for run in runs if run.id == "state-bc-lift-cube-hb16-d100-s0")
    assert curve_100.stage == "state" and curve_100.submit  # shared with the state stage, which asked first


def test_shards_partition_the_runs_and_keep_a_task_hand_together(tmp_path):
    runs = load_plan(write_plan(tmp_path)).runs(PROTOCOL_TASKS)
    shards = [select(runs, shard=(index, 3)) for index in range(3)]
    assert sorted(run.id for shard in shards for run in shard) == sorted(run.id for run in runs)
    owners = {}
    for index, shard in enumerate(shards):
        for run in shard:
            assert owners.setdefault((run.task, run.hand), index) == index
    assert all(shards)
    only = select(runs, only=["state-diffusion-*-s0", "*-hold-*"])
    assert {run.policy for run in only} == {"diffusion", "hold"} and all(run.seed in (0, None) for run in only)


@pytest.mark.parametrize("text, message", [
    ('protocol = "hb-v1"\nwork_dir = "/tmp/x"\nrecord_dir = "r"\n[[stages]]\nname = "s"\npolicies = ["bc"]\n'
     'hands = ["hb16"]\nsubmit = false', "relative to the project"),
    ('protocol = "hb-v1"\nwork_dir = "w"\nrecord_dir = "r"\n[[stages]]\nname = "s"\npolicies = ["gpt"]\n'
     'hands = ["hb16"]', "unknown policy gpt; valid: bc"),
    ('protocol = "hb-v1"\nwork_dir = "w"\nrecord_dir = "r"\n[[stages]]\nname = "s"\npolicies = ["bc"]\n'
     'hands = ["hb16"]', "gives no leaderboard name"),
    ('protocol = "hb-v1"\nwork_dir = "w"\nrecord_dir = "r"\n[[stages]]\nname = "s"\npolicies = ["hold"]\n'
     'hands = ["hb16"]\nseed = [0]', "unknown key(s) seed; valid:"),
    ('protocol = "hb-v1"\nwork_dir = "w"\nrecord_dir = "r"\n[[stages]]\nname = "s"\npolicies = ["hold"]\n'
     'hands = ["hb16"]\nimage_size = [64, 64]', "for obs = \"pixels\" only"),
    ("protocol = [", "not a readable TOML file"),
])
def test_bad_plans_are_one_line(tmp_path, text, message):
    with pytest.raises(HandbenchError, match=None) as caught:
        load_plan(write_plan(tmp_path, text))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_task_and_bad_shard_are_one_line(tmp_path, capsys):
    plan = write_plan(tmp_path, PLAN.replace('tasks = ["lift-cube"]', 'tasks = ["juggle"]'))
    with pytest.raises(HandbenchError, match="names task\\(s\\) juggle that protocol hb-v1 does not have"):
        load_plan(plan).runs(PROTOCOL_TASKS)
    assert main(["sweep", str(plan), "--dry-run", "--shard", "3/3"]) == 2
    assert "--shard must be I/N with 0 <= I < N" in capsys.readouterr().err
    with pytest.raises(HandbenchError):
        parse_shard("1")
    assert main(["sweep", str(write_plan(tmp_path)), "--dry-run", "--only", "state-gpt-*"]) == 2
    assert "no run of" in capsys.readouterr().err


def tiny_plan(tmp_path: Path, seeds: str) -> Path:
    return write_plan(tmp_path, f"""
        protocol = "hb-v1"
        work_dir = "work"
        record_dir = "record"
        [methods]
        bc = "BC (tiny)"
        [[stages]]
        name = "reference"
        policies = ["hold"]
        tasks = ["lift-cube"]
        hands = ["hb16"]
        [[stages]]
        name = "tiny"
        policies = ["bc"]
        tasks = ["lift-cube"]
        hands = ["hb16"]
        seeds = {seeds}
        demos = [2]
        steps = 3
        episodes = 2
        submit = false
        """)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A project folder where the tiny sweep with seed 0 has finished (its ledger and record folders name paths
    relative to the project, so a copy is a finished sweep too; its policy.pt records this folder's absolute dataset
    path, as `handbench train` does): made once, copied by :func:`start_from_finished`."""
    folder = tmp_path_factory.mktemp("finished-tiny-sweep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(["sweep", str(tiny_plan(folder, "[0]")), "--leaderboard-dir", "board"]) == 0
    return folder


def start_from_finished(finished: Path, tmp_path: Path, monkeypatch, seeds: str = "[0]") -> Path:
    """``tmp_path`` as a copy of the finished tiny sweep, the current folder; returns its plan with ``seeds``."""
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tiny_plan(tmp_path, seeds)


def ledger(tmp_path: Path) -> dict[str, dict[str, str]]:
    with (tmp_path / "record" / "runs.csv").open() as handle:
        return {row["run_id"]: row for row in csv.DictReader(handle)}


def test_tiny_sweep_records_skips_resumes_and_submits(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plan = tiny_plan(tmp_path, "[0]")
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 0
    rows = ledger(tmp_path)
    assert set(rows) == {"state-hold-lift-cube-hb16", "state-bc-lift-cube-hb16-d2-s0"}
    trained = rows["state-bc-lift-cube-hb16-d2-s0"]
    assert trained["train_command"] == ("handbench train --policy bc --dataset work/demos/lift-cube-hb16-state-2.hdf5 "
                                        "--seed 0 --preset cpu-small --threads 1 --no-progress "
                                        "--out work/runs/state-bc-lift-cube-hb16-d2-s0 --steps 3")
    assert float(trained["train_seconds"]) > 0 and float(trained["eval_seconds"]) > 0
    assert trained["episodes"] == "2"
    for row in rows.values():  # every recorded command is relative: it replays from any checkout
        assert str(tmp_path) not in row["train_command"] + row["eval_command"]
    meta = json.loads((tmp_path / "record/results/state-bc-lift-cube-hb16-d2-s0/meta.json").read_text())
    assert meta["command"] == trained["eval_command"]
    # The record folders are committed (not their episodes/ resume records): the checkpoint and dataset paths in
    # them are relative too.
    assert meta["policy"]["checkpoint"] == "work/runs/state-bc-lift-cube-hb16-d2-s0/policy.pt"
    assert meta["policy"]["provenance"]["dataset_path"] == "work/demos/lift-cube-hb16-state-2.hdf5"
    committed = [path for path in (tmp_path / "record/results").glob("*/*.*") if path.suffix in (".csv", ".json")]
    assert len(committed) == 8 and not [path for path in committed if str(tmp_path) in path.read_text()]
    assert meta["policy"]["provenance"]["command"] == trained["train_command"]
    entry = json.loads((tmp_path / "board/submissions/hold-floor-" f"{meta['protocol']['name']}-state/meta.json")
                       .read_text())
    assert entry["reference"] and entry["tasks"] == ["lift-cube/hb16"]
    demos = (tmp_path / "record/demos.csv").read_text()
    assert ("handbench generate-demos --task lift-cube --hand hb16 --num-demos 2 --obs state --protocol hb-v1 "
            "--workers 0 --quiet --out work/demos/lift-cube-hb16-state-2.hdf5") in demos

    # A process stopped during a submission (after the ledger row) leaves the entry out: the next start submits it.
    entry_dir = tmp_path / "board/submissions" / f"hold-floor-{meta['protocol']['name']}-state"
    shutil.rmtree(entry_dir)
    capsys.readouterr()
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 0
    assert "(a submission an earlier process did not finish)" in capsys.readouterr().out
    assert json.loads((entry_dir / "meta.json").read_text())["tasks"] == ["lift-cube/hb16"]

    # Finished runs are skipped: nothing is run again.
    def refuse(*args, **kwargs):
        raise AssertionError(f"ran {args[0]} again")

    # A finished folder an older sweep left with absolute paths is made relative when the sweep starts.
    episodes = tmp_path / "record/results/state-bc-lift-cube-hb16-d2-s0/episodes.csv"
    relative = episodes.read_text()
    episodes.write_text(relative.replace("work/runs/", f"{tmp_path}/work/runs/"))
    capsys.readouterr()
    monkeypatch.setattr(Sweep, "execute", refuse)
    from handbench.locking import output_lock

    with output_lock(tmp_path / "work/claims/state-bc-lift-cube-hb16-d2-s0"):  # another process reruns it: left alone
        assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 0
    assert "made the project paths" not in capsys.readouterr().out and str(tmp_path) in episodes.read_text()
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 0
    assert "made the project paths in 1 results folder(s) under record/results relative" in capsys.readouterr().out
    assert episodes.read_text() == relative
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    # A second seed, interrupted between training and evaluation, resumes with the evaluation: the finished
    # training is not rerun (that would rewrite policy.pt, and a started evaluation would refuse its episodes).
    plan = tiny_plan(tmp_path, "[0, 1]")
    original = Sweep.execute

    def interrupt_eval(self, command, log, times, step):
        if step == "eval" and "s1" in log.name:
            raise KeyboardInterrupt
        return original(self, command, log, times, step)

    monkeypatch.setattr(Sweep, "execute", interrupt_eval)
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 130
    first_attempt = json.loads((tmp_path / "work/times/state-bc-lift-cube-hb16-d2-s1.json").read_text())["train"]
    assert "state-bc-lift-cube-hb16-d2-s1" not in ledger(tmp_path)
    capsys.readouterr()
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[:1] == ["2 of 3 selected runs finished; 1 left"]
    monkeypatch.setattr(Sweep, "execute", original)
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 0
    resumed = ledger(tmp_path)["state-bc-lift-cube-hb16-d2-s1"]
    assert float(resumed["train_seconds"]) == pytest.approx(first_attempt, abs=0.1)
    assert (tmp_path / "work/logs/state-bc-lift-cube-hb16-d2-s1.train.log").read_text().count("$ handbench train") == 1
    assert shlex.split(resumed["eval_command"])[:2] == ["handbench", "eval"]


def fake_rows() -> list[dict[str, str]]:
    rows = []
    for policy, base in (("bc", 0.2), ("diffusion", 0.4)):
        for demos in (10, 30, 100):
            for seed in range(3):
                rate = min(1.0, base + demos / 200 + 0.02 * seed)
                rows.append({"run_id": f"{policy}-{demos}-{seed}", "stage": "curves", "policy": policy,
                             "obs": "state", "task": "lift-cube", "hand": "hb16", "demos": str(demos),
                             "seed": str(seed), "success_rate": f"{round(rate * 50) / 50}", "episodes": "50",
                             "train_seconds": "60", "eval_seconds": "10", "device": "cpu", "host": "a"})
    rows.append({**rows[0], "run_id": "x", "task": "stack", "demos": "100"})  # one demo count: no curve
    rows.append({**rows[0], "run_id": "floor", "policy": "hold", "demos": "", "seed": "", "stage": "reference"})
    return rows


def test_an_attempt_killed_outright_still_counts_up_to_its_last_heartbeat(tmp_path):
    times = StepTimes(tmp_path / "times" / "run.json")
    times.add("train", 100.0)               # a first attempt, interrupted by Ctrl-C: counted in full
    times.begin("train")
    times.beat("train", 30.0)
    times.beat("train", 60.0)               # ... then the process is killed: no add() comes
    assert times.get("train") == 160.0      # the ledger would read 160 s, not 100
    times.begin("train")                    # the rerun folds the dead attempt in
    assert json.loads(times.path.read_text()) == {"train": 160.0}
    times.beat("train", 5.0)
    times.add("train", 7.5)                 # it ends: its heartbeats give way to its full time
    assert times.get("train") == 167.5
    assert json.loads(times.path.read_text()) == {"train": 167.5}
    times.beat("train", 9.0)
    times.forget("train")
    assert json.loads(times.path.read_text()) == {}


def test_a_running_step_writes_heartbeats(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.05)
    beats = []
    original = StepTimes.beat
    monkeypatch.setattr(StepTimes, "beat", lambda self, step, seconds: beats.append(seconds)
                        or original(self, step, seconds))
    sweep = Sweep(load_plan(tiny_plan(tmp_path, "[0]")), [], [], SweepOptions(project_dir=tmp_path))
    times = StepTimes(tmp_path / "times" / "run.json")
    total = sweep.execute(["handbench", "--version"], tmp_path / "logs" / "run.version.log", times, "train")
    assert len(beats) >= 2 and beats == sorted(beats)
    stored = json.loads(times.path.read_text())  # the attempt's full time replaced its heartbeats
    assert set(stored) == {"train"} and stored["train"] >= beats[-1] and total == round(stored["train"], 1)


def test_processes_running_one_selection_share_it_through_claims(tmp_path, monkeypatch):
    """A run another process holds is passed over, tried again after the others and left to its holder if still
    held; a run another process finished meanwhile is not run again; a dataset being made elsewhere is not made."""
    from handbench.locking import output_lock

    plan = load_plan(tiny_plan(tmp_path, "[0, 1]"))
    runs = plan.runs({"lift-cube": ("hb16",)})
    hold, seed0, seed1 = (run.id for run in runs)
    sweep = Sweep(plan, runs, runs, SweepOptions(project_dir=tmp_path))
    claims = tmp_path / plan.work_dir / "claims"
    ran: list[str] = []
    monkeypatch.setattr(Sweep, "run_one", lambda self, run, say: ran.append(run.id))
    said: list[str] = []
    with output_lock(claims / seed1):  # another process is on seed 1 throughout
        outcome = sweep.run_all(said.append)
    assert ran == [hold, seed0] and outcome.elsewhere == [seed1] and outcome.failed == []
    assert f"  passing over {seed1} for now: another process is on {seed1}" in said

    ran.clear()
    other = output_lock(claims / seed0)
    other.__enter__()  # another process is on seed 0 ... and lets it go while this one runs seed 1

    def run_and_release(self, run, say):
        ran.append(run.id)
        if run.id == seed1:
            other.__exit__(None, None, None)

    monkeypatch.setattr(Sweep, "run_one", run_and_release)
    outcome = sweep.run_all(said.append)
    assert ran == [hold, seed1, seed0] and outcome.elsewhere == []  # seed 0 on the second pass

    ran.clear()
    monkeypatch.setattr(Sweep, "finished", lambda self: {seed0} if ran else set())  # finished elsewhere meanwhile
    monkeypatch.setattr(Sweep, "run_one", lambda self, run, say: ran.append(run.id))
    assert sweep.run_all(said.append).elsewhere == [] and ran == [hold, seed1]

    dataset = runs[1].dataset
    with output_lock(claims / dataset.name), pytest.raises(ClaimedElsewhere, match=dataset.name):
        sweep.make_dataset(dataset, said.append)
    assert not (tmp_path / sweep.dataset_path(dataset)).exists()


@pytest.mark.parametrize("maker_finishes", [True, False])
def test_runs_whose_dataset_is_made_elsewhere_wait_for_it(tmp_path, monkeypatch, maker_finishes):
    """A run passed over only because another process is making its dataset is nobody's: the process waits for the
    dataset and runs it (it used to leave it 'to the other processes running it', which none was, so a process of
    another --only selection never ran it); if the maker stops without the dataset, the process makes it itself."""
    import threading

    from handbench.locking import output_lock

    monkeypatch.setattr(runner, "CLAIM_POLL_S", 0.05)
    plan = load_plan(tiny_plan(tmp_path, "[0, 1]"))
    runs = plan.runs({"lift-cube": ("hb16",)})
    hold, seed0, seed1 = (run.id for run in runs)
    sweep = Sweep(plan, runs, runs, SweepOptions(project_dir=tmp_path))
    dataset = runs[1].dataset
    ran: list[str] = []
    generated: list[str] = []

    def run_one(self, run, say):
        if run.dataset is not None:
            self.make_dataset(run.dataset, say)
        ran.append(run.id)

    def make(path):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
        sweep.demo_ledger.record({**dict.fromkeys(sweep.demo_ledger.columns, ""), "dataset": path})

    monkeypatch.setattr(Sweep, "run_one", run_one)
    monkeypatch.setattr(Sweep, "_generate", lambda self, dataset, path, say: generated.append(path) or make(path))
    other = output_lock(tmp_path / plan.work_dir / "claims" / dataset.name)
    other.__enter__()  # another process is making the dataset ...

    def make_it_then_let_go():
        if maker_finishes:
            make(sweep.dataset_path(dataset))
        other.__exit__(None, None, None)

    timer = threading.Timer(0.3, make_it_then_let_go)  # ... and is done with it while this one waits
    timer.start()
    said: list[str] = []
    try:
        outcome = sweep.run_all(said.append)
    finally:
        timer.join()
    assert outcome.elsewhere == [] and outcome.failed == [] and ran == [hold, seed0, seed1]
    assert generated == ([] if maker_finishes else [sweep.dataset_path(dataset)])
    assert f"  waiting for {dataset.name} (another process is making it)" in "\n".join(said)
    assert sum(line.startswith(f"  passing over {seed0}") for line in said) == 1
    assert sum(line.startswith(f"[2/3] {seed0}") for line in said) == 1  # announced when it starts, not before

    if not maker_finishes:  # Ctrl-C while waiting says what to do, like Ctrl-C during a run
        def interrupted(self, datasets):
            raise KeyboardInterrupt

        monkeypatch.setattr(Sweep, "wait_for_datasets", interrupted)
        monkeypatch.setattr(Sweep, "finished", lambda self: set())
        with output_lock(tmp_path / plan.work_dir / "claims" / dataset.name), output_lock(
                tmp_path / plan.work_dir / "claims" / hold), pytest.raises(
                KeyboardInterrupt, match=f"stopped while waiting for {dataset.name}; .*rerun the same command"):
            (tmp_path / sweep.dataset_path(dataset)).unlink()
            sweep.run_all(said.append)


def test_a_claim_that_cannot_be_written_is_an_error_not_another_process(tmp_path, monkeypatch):
    """A claims folder the process cannot write is no other process's doing: the sweep stops in one line (exit 2);
    it used to pass every run over and exit 0 with them 'left to the other processes running them'."""
    monkeypatch.chdir(tmp_path)
    plan = tiny_plan(tmp_path, "[0]")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "claims").write_text("")  # in the way of the claims folder
    monkeypatch.setattr(Sweep, "run_one", lambda self, run, say: pytest.fail(f"ran {run.id}"))
    with pytest.raises(HandbenchError, match="claims is a file"):
        Sweep(load_plan(plan), [], load_plan(plan).runs({"lift-cube": ("hb16",)}),
              SweepOptions(project_dir=tmp_path)).run_all()
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 2

    from handbench.sweep.ledger import waiting_lock

    began = time.monotonic()  # nor does the ledger's or the board's lock wait 10 minutes for one it cannot write
    with pytest.raises(HandbenchError, match="claims is a file"), waiting_lock(tmp_path / "work/claims/x", wait_s=5):
        pass
    assert time.monotonic() - began < 1


def test_learning_curves_from_fake_results(tmp_path):
    frame = report.ledger_frame(fake_rows())
    table = report.learning_curves(frame)
    assert set(table["task"]) == {"lift-cube"} and len(table) == 6
    point = table[(table["policy"] == "bc") & (table["demos"] == 30)].iloc[0]
    successes = sum(round(min(1.0, 0.2 + 30 / 200 + 0.02 * seed) * 50) for seed in range(3))
    assert point["episodes"] == 150 and point["success"] == pytest.approx(successes / 150)
    assert (point["ci_low"], point["ci_high"]) == pytest.approx(wilson_interval(successes, 150))
    assert list(table[table["policy"] == "diffusion"]["demos"]) == [10, 30, 100]
    markdown = report.curves_markdown(table)
    assert "| method | task | hand | obs | 10 demos | 30 demos | 100 demos |" in markdown
    assert "| bc | lift-cube | hb16 | state | " in markdown and "(3 seeds)" in markdown
    png = report.curves_png(table)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == report.curves_png(table)  # same data, same bytes
    curve_ids = list(frame.loc[frame["stage"] == "curves", "run_id"])
    planned = {"first": ["a", "b", "c", "d"], "curves": [*curve_ids[1:], "new-1", "new-2"]}  # the plan dropped one
    compute = report.compute_markdown(frame, [{"seconds": "3600"}], planned)
    # in plan order, a stage not started included; only planned runs count as finished, every row's hours count
    assert "| first | 0 of 4 | 0.00 | 0.00 | | |\n| curves | 18 of 20 | 0.32 | 0.05 | cpu | a |" in compute
    assert "Total wall time: 1.39 h" in compute
    # a stage the ledger holds and the plan no longer names still counts, without a planned number
    assert "| curves | 19 | 0.32 | 0.05 | cpu | a |" in report.compute_markdown(frame, [], {})


def test_results_table_pools_each_method_and_shows_references_beside_it():
    frame = report.ledger_frame(fake_rows())
    assert report.results_markdown(report.results_table(frame, set()), ["hold", "bc"]).startswith("No trained run")
    table = report.results_table(frame, {"curves"})
    bc = table[(table["policy"] == "bc") & (table["task"] == "lift-cube") & (table["demos"] == 100)].iloc[0]
    rates = [round(min(1.0, 0.2 + 0.5 + 0.02 * seed) * 50) / 50 for seed in range(3)]
    assert bc["seeds"] == 3 and bc["success"] == pytest.approx(sum(rates) / 3)
    markdown = report.results_markdown(table, ["expert", "hold", "bc", "diffusion"])
    assert "**state, 100 demos**" in markdown and "| task | hand | hold | bc | diffusion |" in markdown
    low, high = wilson_interval(round(sum(rates) * 50), 150)
    cell = (f"{100 * sum(rates) / 3:.0f} [{100 * low:.0f}, {100 * high:.0f}] ("
            + " / ".join(f"{100 * rate:.0f}" for rate in rates) + ")")
    hold_low, hold_high = wilson_interval(12, 50)  # the fake hold run copies bc's 10-demo seed 0: 0.24
    assert f"| lift-cube | hb16 | 24 [{100 * hold_low:.0f}, {100 * hold_high:.0f}] | {cell} |" in markdown
    assert "| stack | hb16 |  | " in markdown  # no hold run on stack: an empty cell, not a number
    png = report.results_png(table, ["hold", "bc", "diffusion"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == report.results_png(table, ["hold", "bc", "diffusion"])


@pytest.mark.parametrize("column, value", [("success_rate", ""), ("success_rate", "1.5"), ("episodes", ""),
                                           ("episodes", "0")])
def test_a_ledger_row_without_a_result_is_one_line_not_a_failed_seed(column, value):
    rows = fake_rows()
    rows[1][column] = value
    with pytest.raises(HandbenchError, match=f"1 ledger row.*: {rows[1]['run_id']};"):
        report.ledger_frame(rows)


def test_results_csv_writes_demos_as_whole_numbers():
    table = report.results_table(report.ledger_frame(fake_rows()), {"curves"})
    lines = table.to_csv(index=False, float_format="%.4f").splitlines()
    assert any(line.startswith("bc,state,lift-cube,hb16,100,3,150,") for line in lines)
    assert any(line.startswith("hold,state,lift-cube,hb16,,1,50,") for line in lines)  # a reference: no demos


def test_report_command_writes_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = write_plan(tmp_path)
    from handbench.sweep.ledger import RUN_COLUMNS

    (tmp_path / "record").mkdir()
    with (tmp_path / "record/runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(fake_rows())
    assert main(["sweep", str(plan), "--report"]) == 0
    folder = tmp_path / "record/report"
    assert "| diffusion | lift-cube | hb16 | state |" in (folder / "learning-curves.md").read_text()
    assert (folder / "learning-curves.png").stat().st_size > 0 and (folder / "compute.md").is_file()
    # the fake runs' stage ("curves") is not one of the plan's submitting stages: the table has no trained run
    assert (folder / "results.md").read_text().startswith("No trained run") and (folder / "results.png").is_file()


def test_device_reaches_train_and_eval_of_trained_runs_only(tmp_path, capsys):
    plan = load_plan(write_plan(tmp_path))
    runs = plan.runs(PROTOCOL_TASKS)
    sweep = Sweep(plan, runs, runs, SweepOptions(device="cuda", project_dir=tmp_path))
    trained = next(run for run in runs if run.trained)
    reference = next(run for run in runs if not run.trained)
    assert sweep.train_command(trained)[-2:] == ["--device", "cuda"]
    assert sweep.eval_command(trained)[-2:] == ["--device", "cuda"]
    assert "--device" not in sweep.eval_command(reference)  # the expert and the floors have no model
    import torch

    if not torch.cuda.is_available():
        assert main(["sweep", str(plan.source), "--dry-run", "--device", "cuda"]) == 2
        assert "CUDA is not available here" in capsys.readouterr().err


def test_stale_runs_are_refused_then_set_aside_and_rerun(finished_sweep, tmp_path, monkeypatch, capsys):
    """A finished run whose train command the plan no longer builds, or whose scene the protocol no longer builds,
    stops the sweep in one line; --forget-stale moves it aside (nothing deleted) and makes it again."""
    from handbench.sweep import stale

    plan = start_from_finished(finished_sweep, tmp_path, monkeypatch)
    first = ledger(tmp_path)["state-bc-lift-cube-hb16-d2-s0"]
    capsys.readouterr()

    text = plan.read_text().replace("[[stages]]", '[train_options]\nbc = ["--temporal-ensemble", "0.5"]\n[[stages]]', 1)
    plan.write_text(text)
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 2
    error = capsys.readouterr().err.strip()
    assert "1 run(s) and 0 dataset(s) of this selection are stale" in error and "\n" not in error
    assert "state-bc-lift-cube-hb16-d2-s0: trained with" in error and "--temporal-ensemble 0.5" in error
    from handbench.locking import output_lock

    with output_lock(tmp_path / "work/claims/state-bc-lift-cube-hb16-d2-s0"):  # another sweep process is on it
        assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 2
    error = capsys.readouterr().err.strip()
    assert "1 stale run(s) or dataset(s) are in use by another sweep process (state-bc-lift-cube-hb16-d2-s0)" in error
    assert (tmp_path / "work/runs/state-bc-lift-cube-hb16-d2-s0/policy.pt").is_file()  # nothing moved
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 0
    again = ledger(tmp_path)["state-bc-lift-cube-hb16-d2-s0"]
    assert again["train_command"] == first["train_command"] + " --temporal-ensemble 0.5"
    aside = list((tmp_path / "work/stale").glob("*/runs/state-bc-lift-cube-hb16-d2-s0/policy.pt"))
    assert len(aside) == 1  # the old checkpoint is kept, not deleted
    assert ledger(tmp_path)["state-hold-lift-cube-hb16"]["finished_at"]  # the hold floor was not stale: kept

    # A scene the protocol no longer builds makes the dataset and every run on that scene stale.
    monkeypatch.setattr(stale, "scene_hash", lambda sweep, task, hand: "0123456789abcdef")
    capsys.readouterr()
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]
    assert len(listed) == 3 and any("work/demos/lift-cube-hb16-state-2.hdf5: recorded on scene" in line
                                    for line in listed)
    made = []
    monkeypatch.setattr(Sweep, "execute", lambda self, command, log, times, step: made.append(command[1]) or 0.0)
    monkeypatch.setattr("handbench.sweep.runner.load_summary",
                        lambda path: {"success_rate": 0.0, "episodes": 2, "checkpoint_hash": ""})
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 0
    assert made == ["eval", "generate-demos", "train", "eval"]  # hold floor, then the dataset and the BC run again
    assert len(list((tmp_path / "work/stale").glob("*/demos/lift-cube-hb16-state-2.hdf5"))) == 1



def test_a_new_lane_width_redoes_learned_evaluations_only_and_keeps_their_checkpoints(
        finished_sweep, tmp_path, monkeypatch, capsys):
    """The protocol's lane width changes what a learned policy's batched query returns in the last bits: its
    evaluation is stale, not its training. --forget-stale moves the results aside, keeps the checkpoint and the
    training time, and the sweep evaluates again without training; the hold floor (no model) stays finished."""
    import dataclasses
    import json

    import handbench.protocol

    plan = start_from_finished(finished_sweep, tmp_path, monkeypatch)
    run_id = "state-bc-lift-cube-hb16-d2-s0"
    checkpoint = tmp_path / "work/runs" / run_id / "policy.pt"
    weights = checkpoint.read_bytes()
    times = tmp_path / "work/times" / f"{run_id}.json"
    assert {"train:finished", "eval"} <= set(json.loads(times.read_text()))
    capsys.readouterr()

    real = handbench.protocol.load_protocol
    monkeypatch.setattr(handbench.protocol, "load_protocol",
                        lambda name=handbench.protocol.DEFAULT_PROTOCOL: dataclasses.replace(real(name), lanes=2))
    assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"{run_id}: evaluated at 1 lanes; hb-v1 now batches queries over 2" in error
    assert "1 run(s) and 0 dataset(s)" in error  # the hold floor acts lane by lane: not stale
    made = []
    monkeypatch.setattr(Sweep, "execute", lambda self, command, log, times, step: made.append(command[1]) or 0.0)
    monkeypatch.setattr("handbench.sweep.runner.load_summary",
                        lambda path: {"success_rate": 0.0, "episodes": 2, "checkpoint_hash": ""})
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 0
    assert "set aside 0 run(s), the evaluations of 1 more and 0 dataset(s)" in capsys.readouterr().out
    assert made == ["eval"]  # no training: the checkpoint still matches the plan
    assert checkpoint.read_bytes() == weights
    assert "train:finished" in json.loads(times.read_text())
    assert len(list((tmp_path / "work/stale").glob(f"*/results/{run_id}/episodes.csv"))) == 1
    assert len(list((tmp_path / "work/stale").glob(f"*/times/{run_id}.json"))) == 1


def test_runs_and_datasets_of_another_task_version_are_stale(finished_sweep, tmp_path, monkeypatch, capsys):
    """A task version may change only what an episode sets (hb-v2's lift-cube v2 recomputes the cube's mass
    constants), so the compiled model's hash cannot tell: the recorded task version does."""
    import h5py
    import pandas as pd

    plan = start_from_finished(finished_sweep, tmp_path, monkeypatch)
    episodes = tmp_path / "record/results/state-bc-lift-cube-hb16-d2-s0/episodes.csv"
    table = pd.read_csv(episodes)
    table["task_version"] = 9
    table.to_csv(episodes, index=False)
    capsys.readouterr()
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]
    assert len(listed) == 1 and "state-bc-lift-cube-hb16-d2-s0: evaluated on lift-cube v9; " in listed[0]
    with h5py.File(tmp_path / "work/demos/lift-cube-hb16-state-2.hdf5", "a") as handle:
        handle["data"].attrs["task_version"] = 9
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]
    assert any("work/demos/lift-cube-hb16-state-2.hdf5: recorded on lift-cube v9; " in line for line in listed)


UNFINISHED = "state-bc-lift-cube-hb16-d2-s1"


def unfinished_second_seed(finished: Path, tmp_path: Path, monkeypatch,
                           dataset_hash: str | None = None) -> tuple[Path, Path]:
    """A tiny sweep whose seed-0 run finished and whose seed-1 folder holds an unfinished training; its
    train_state.pt records ``dataset_hash`` (default: the dataset's own). Returns (plan, that folder)."""
    import torch

    from handbench.dataset import dataset_hash as content_hash

    plan = start_from_finished(finished, tmp_path, monkeypatch, "[0, 1]")
    folder = tmp_path / "work/runs" / UNFINISHED
    folder.mkdir(parents=True)
    recorded = dataset_hash or content_hash(tmp_path / "work/demos/lift-cube-hb16-state-2.hdf5")
    torch.save({"signature": {"dataset_hash": recorded}, "step": 1}, folder / "train_state.pt")
    return plan, folder


def test_an_unfinished_run_started_on_another_dataset_is_set_aside(finished_sweep, tmp_path, monkeypatch, capsys):
    """A run folder whose training started on a dataset since remade (its train_state.pt signature records the old
    hash) would make `handbench train` refuse to resume: --dry-run lists it, --forget-stale moves it aside."""
    plan, _ = unfinished_second_seed(finished_sweep, tmp_path, monkeypatch, "0123456789abcdef")
    run_id = UNFINISHED
    capsys.readouterr()
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]
    assert len(listed) == 1 and f"{run_id}: unfinished, its training started on dataset 0123456789abcdef" in listed[0]
    made = []
    monkeypatch.setattr(Sweep, "execute", lambda self, command, log, times, step: made.append(command[1]) or 0.0)
    monkeypatch.setattr("handbench.sweep.runner.load_summary",
                        lambda path: {"success_rate": 0.0, "episodes": 2, "checkpoint_hash": ""})
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 0
    assert made == ["train", "eval"]  # trained afresh
    assert len(list((tmp_path / "work/stale").glob(f"*/runs/{run_id}/train_state.pt"))) == 1


def test_an_unfinished_run_on_a_stale_dataset_is_set_aside_with_it(finished_sweep, tmp_path, monkeypatch, capsys):
    """When a dataset is remade, a training started on it but not finished could never resume: it goes with it."""
    from handbench.sweep import stale

    plan, folder = unfinished_second_seed(finished_sweep, tmp_path, monkeypatch)
    monkeypatch.setattr(stale, "scene_hash", lambda sweep, task, hand: "0123456789abcdef")
    monkeypatch.setattr(Sweep, "execute", lambda self, command, log, times, step: 0.0)
    monkeypatch.setattr("handbench.sweep.runner.load_summary",
                        lambda path: {"success_rate": 0.0, "episodes": 2, "checkpoint_hash": ""})
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--only", "*-s0", "--forget-stale"]) == 0
    assert len(list((tmp_path / "work/stale").glob("*/runs/state-bc-lift-cube-hb16-d2-s1/train_state.pt"))) == 1
    assert not folder.exists()


def test_an_unfinished_run_started_by_another_train_command_is_set_aside(finished_sweep, tmp_path, monkeypatch,
                                                                         capsys):
    """A [train_options] change makes an unfinished run's training unresumable (its signature records other
    configs): the partial checkpoint's command tells, --dry-run lists the run and --forget-stale moves it aside."""
    import torch

    plan, folder = unfinished_second_seed(finished_sweep, tmp_path, monkeypatch)
    run_id = UNFINISHED
    started = (f"handbench train --policy bc --dataset work/demos/lift-cube-hb16-state-2.hdf5 --seed 1 --preset "
               f"cpu-small --threads 1 --no-progress --out work/runs/{run_id} --steps 3")
    torch.save({"provenance": {"command": started}}, folder / "policy.pt")
    capsys.readouterr()
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]  # same command
    torch.save({"provenance": {"command": started + " --clamp-states"}}, folder / "policy.pt")
    assert main(["sweep", str(plan), "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stale: ")]
    assert len(listed) == 1 and f"{run_id}: unfinished, its training started as `{started} --clamp-states`" in listed[0]
    monkeypatch.setattr(Sweep, "execute", lambda self, command, log, times, step: 0.0)
    monkeypatch.setattr("handbench.sweep.runner.load_summary",
                        lambda path: {"success_rate": 0.0, "episodes": 2, "checkpoint_hash": ""})
    assert main(["sweep", str(plan), "--leaderboard-dir", "board", "--forget-stale"]) == 0
    assert len(list((tmp_path / "work/stale").glob(f"*/runs/{run_id}/policy.pt"))) == 1


def test_shards_look_for_stale_work_one_at_a_time(tmp_path, monkeypatch, capsys):
    """While one sweep process sets stale work aside (holding the lock of <work_dir>/stale), another waits."""
    from handbench.locking import output_lock
    from handbench.sweep import ledger

    monkeypatch.chdir(tmp_path)
    plan = tiny_plan(tmp_path, "[0]")
    looked = []
    monkeypatch.setattr("handbench.sweep.stale.find_stale", lambda sweep: looked.append(1) or [])
    monkeypatch.setattr(ledger, "LOCK_WAIT_S", 0.0)
    with output_lock(tmp_path / "work/stale"):
        assert main(["sweep", str(plan), "--leaderboard-dir", "board"]) == 2
    assert not looked and "work/stale is in use by another handbench run" in capsys.readouterr().err


def test_entries_that_block_each_other_are_set_aside_then_resubmitted(tmp_path, monkeypatch):
    """Submitting validates every other entry on the board. When two entries each still hold a forgotten run, each
    blocks the other's resubmission (this deadlocked before): both are moved aside first, then resubmitted with
    their earlier copies to carry verifications from; an entry left with no complete pair is removed, kept aside;
    a group refused for its own reason stops with its error after the others were resubmitted."""
    from handbench.leaderboard.submissions import submissions_dir
    from handbench.sweep import submitting
    from handbench.sweep.plan import load_plan

    monkeypatch.chdir(tmp_path)
    loaded = load_plan(tiny_plan(tmp_path, "[0]"))
    runs = loaded.runs({"lift-cube": ("hb16",)})
    sweep = Sweep(loaded, runs, runs, SweepOptions(leaderboard_dir=Path("board"), project_dir=tmp_path))
    groups = {("bc", "state", 2), ("hold", "state", None), ("expert", "state", None)}
    board = submissions_dir(tmp_path / "board")
    for group in groups:
        (board / submitting.entry_id(sweep, group)).mkdir(parents=True)
        (board / submitting.entry_id(sweep, group) / "meta.json").write_text(json.dumps({"held": group[0]}))
    calls: list[tuple[str, str | None]] = []
    resubmitted: set[str] = set()

    def submit_group(sweep, group, carry_from=None):
        others = [path.name for path in board.iterdir() if path.name not in resubmitted]
        if others:  # what validating the rest of the board does while an earlier entry holds a forgotten run
            raise HandbenchError(f"board/{others[0]}: lift-cube/hb16 was evaluated at task version '1'")
        if group[0] == "bc" and refuse_bc:
            raise HandbenchError("checkpoint(s) 0123 are already on the leaderboard")
        (board / submitting.entry_id(sweep, group)).mkdir()
        (board / submitting.entry_id(sweep, group) / "meta.json").write_text(json.dumps({"held": group[0]}))
        resubmitted.add(submitting.entry_id(sweep, group))
        calls.append((group[0], json.loads((carry_from / "meta.json").read_text())["held"] if carry_from else None))
        return f"submitted {group[0]}"

    refuse_bc = False
    monkeypatch.setattr(submitting, "complete_runs", lambda sweep, group: [] if group[0] == "expert" else [object()])
    monkeypatch.setattr(submitting, "submit_group", submit_group)
    aside = tmp_path / "aside"
    messages = submitting.resubmit_groups(sweep, groups, aside)
    assert calls == [("bc", "bc"), ("hold", "hold")]  # each carried from its own earlier copy
    assert messages[0] == "submitted bc" and messages[2] == "submitted hold"
    assert messages[1].startswith("removed 'scripted-expert")
    assert sorted(path.name for path in board.iterdir()) == sorted(
        submitting.entry_id(sweep, group) for group in groups if group[0] != "expert")
    assert len(list((aside / "entries").iterdir())) == 3  # nothing deleted: every earlier copy is kept aside

    refuse_bc, calls[:] = True, []
    resubmitted.clear()
    with pytest.raises(HandbenchError, match="could not resubmit 'bc-.*already on the leaderboard.*aside2/entries"):
        submitting.resubmit_groups(sweep, {("bc", "state", 2), ("hold", "state", None)}, tmp_path / "aside2")
    assert calls == [("hold", "hold")] and (tmp_path / "aside2/entries" / submitting.entry_id(
        sweep, ("bc", "state", 2))).is_dir()


def test_a_submission_reads_the_finished_runs_under_the_board_lock(tmp_path, monkeypatch):
    """Two processes finish the last seeds of two rows of one entry at nearly the same time: the one that submits
    second must not replace the entry with the runs it read before it got the board lock (that dropped the other
    process's row from the leaderboard)."""
    import contextlib

    from handbench.leaderboard import submit as submit_module
    from handbench.leaderboard.submissions import submissions_dir
    from handbench.sweep import submitting
    from handbench.sweep.ledger import RUN_COLUMNS

    text = tiny_plan(tmp_path, "[0]").read_text().replace("submit = false", "")
    loaded = load_plan(write_plan(tmp_path, text.replace('hands = ["hb16"]', 'hands = ["hb16", "shadow"]')))
    runs = loaded.runs({"lift-cube": ("hb16", "shadow")})
    sweep = Sweep(loaded, runs, runs, SweepOptions(leaderboard_dir="board", project_dir=tmp_path))
    bc = [run for run in runs if run.policy == "bc"]
    group = bc[0].group
    meta_path = submissions_dir(tmp_path / "board") / submitting.entry_id(sweep, group) / "meta.json"

    def finish(run):
        sweep.run_ledger.record({**dict.fromkeys(RUN_COLUMNS, ""), "run_id": run.id})
        summary = tmp_path / sweep.results_dir(run) / "summary.csv"
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text("")

    def fake_submit(folders, info, **kwargs):
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        tasks = sorted({f"lift-cube/{Path(folder).name.split('-')[-3]}" for folder in folders})
        meta_path.write_text(json.dumps({"tasks": tasks, "runs": [{"folder": str(f)} for f in folders]}))
        return type("Result", (), {"entry_dir": meta_path.parent})()

    original_lock = submitting.waiting_lock

    @contextlib.contextmanager
    def other_process_first(path, wait_s=None):
        finish(bc[1])  # meanwhile the other process finished the second row and submitted both
        fake_submit([tmp_path / sweep.results_dir(run) for run in bc], None)
        with original_lock(path, wait_s):
            yield

    monkeypatch.setattr(submit_module, "submit", fake_submit)
    monkeypatch.setattr(submitting, "waiting_lock", other_process_first)
    finish(bc[0])
    assert submitting.submit_group(sweep, group) == ""  # the entry already holds everything finished
    assert json.loads(meta_path.read_text())["tasks"] == ["lift-cube/hb16", "lift-cube/shadow"]


def test_the_repository_sweep_records_hold_no_machine_paths():
    """The committed record folders (a rerun elsewhere skips their runs) name checkpoints and datasets relative to
    the project, as their leaderboard copies do: an absolute path only exists on the machine that ran it."""
    from handbench.leaderboard.provenance import check_machine_paths
    from handbench.leaderboard.validate import load_results_dir

    finished = 0
    for runs in (Path(__file__).resolve().parents[1] / "baselines/sweeps").glob("*/runs.csv"):
        with runs.open() as handle:
            for row in csv.DictReader(handle):  # a finished run (an evaluation under way has only run.json)
                check_machine_paths(load_results_dir(runs.parent / "results" / row["run_id"]))  # as `submit` does
                finished += 1
    assert finished


def test_a_results_file_that_cannot_be_rewritten_is_one_line(tmp_path):
    from handbench.leaderboard.submissions import relativize_results_dir

    (tmp_path / "meta.json").write_bytes(b'{"checkpoint": "/x/runs/policy.pt", "host": "\xff"}')
    with pytest.raises(HandbenchError, match="meta.json: cannot make its paths relative to the project"):
        relativize_results_dir(tmp_path, ("/x/",))


def test_the_readme_tables_are_copies_of_the_hb_v2_sweep_report():
    """The README's hb-v2 results table, learning curves and compute are the report's markdown (`handbench sweep
    baselines/sweeps/hb-v2.toml --report`), copied between markers: a hand edit, or a report rewritten without
    copying it, fails here."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    for name, marker, end in (("results.md", "<!-- results: ", "<!-- end of results -->"),
                              ("learning-curves.md", "<!-- curves: ", "<!-- end of curves -->"),
                              ("compute.md", "<!-- compute: ", "<!-- end of compute -->")):
        start = readme.index(marker + f"baselines/sweeps/hb-v2/report/{name} -->")
        block = readme[readme.index("\n", start) + 1:readme.index(end, start)]
        stamp, table = block.split("\n", 1)
        command = "(`handbench sweep baselines/sweeps/hb-v2.toml --report`):"
        assert stamp.startswith("As of ") and stamp.endswith(command)
        assert table.strip() == (root / "baselines/sweeps/hb-v2/report" / name).read_text().strip(), name



def test_a_dataset_made_again_on_another_machine_adds_its_time(tmp_path, monkeypatch):
    """The work folder (demos, checkpoints) is not in the repo: a sweep continued on a new machine remakes the
    datasets its remaining runs need, and demos.csv keeps the first generation's time too."""
    monkeypatch.chdir(tmp_path)
    plan = load_plan(tiny_plan(tmp_path, "[0]"))
    runs = plan.runs({"lift-cube": ("hb16",)})
    sweep = Sweep(plan, runs, runs, SweepOptions(project_dir=tmp_path))
    dataset = runs[1].dataset
    path = sweep.dataset_path(dataset)
    sweep.demo_ledger.record({**dict.fromkeys(sweep.demo_ledger.columns, ""), "dataset": path, "seconds": 100.0})
    assert path not in sweep.datasets_made()  # listed, but not on this machine

    def generate(self, command, log, times, step):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
        return 7.0

    monkeypatch.setattr(Sweep, "execute", generate)
    sweep.make_dataset(dataset, lambda line: None)
    assert float(sweep.demo_ledger.rows()[path]["seconds"]) == 107.0
