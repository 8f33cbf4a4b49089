"""Running a sweep: make the datasets, train and evaluate each run with the project's own commands, record
every finished run in the ledger and submit each leaderboard entry as soon as one more (task, hand) row of it
is complete.

Every step is a ``handbench`` command run in a child process from the project folder with paths relative to it,
so the commands recorded in checkpoints, results and the ledger replay on any machine. Each command is
resumable on its own (generate-demos from ``<out>.partial/``, train from ``train_state.pt``, eval from its
finished episodes), so rerunning the sweep after an interruption, here or on another machine that has the repo,
picks up where it stopped; finished runs (a ledger row and its results folder) are skipped.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from handbench.errors import HandbenchError
from handbench.leaderboard.submissions import project_prefixes, relativize_results_dir
from handbench.sweep.ledger import DEMO_COLUMNS, RUN_COLUMNS, Ledger
from handbench.sweep.plan import Dataset, Run, SweepPlan

CHILD_GRACE_S = 60.0  # how long a child may take to save and exit after Ctrl-C
HEARTBEAT_S = 30.0  # how often a running step's wall time so far is written down (a killed sweep loses at most this)
CLAIM_POLL_S = 10.0  # how often a process with nothing else to do looks whether a dataset made elsewhere is ready


class ClaimedElsewhere(Exception):
    """Another process has claimed the run or dataset (it is running it)."""


class DatasetElsewhere(ClaimedElsewhere):
    """Another process is making the run's dataset (the run itself is nobody's yet)."""

    def __init__(self, message: str, dataset: Dataset) -> None:
        super().__init__(message)
        self.dataset = dataset


@dataclass
class SweepOutcome:
    """What ``run_all`` left undone: runs that failed here, and runs other processes hold."""

    failed: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)


@dataclass
class SweepOptions:
    """How this process runs its share of the plan."""

    device: str = "cpu"
    eval_workers: int = 0  # Ray workers per evaluation; 0 = in the child process itself
    leaderboard_dir: str = "leaderboard"
    project_dir: Path = field(default_factory=Path.cwd)


class Sweep:
    """A plan bound to a project folder: paths, commands, the ledger and what is left."""

    def __init__(self, plan: SweepPlan, plan_runs: list[Run], runs: list[Run], options: SweepOptions) -> None:
        """``plan_runs``: every run of the plan (what a complete leaderboard row needs); ``runs``: this process's
        share of them (``--only``, ``--shard``)."""
        self.plan, self.plan_runs, self.runs, self.options = plan, plan_runs, runs, options
        self.project = options.project_dir
        record = self.project / plan.record_dir
        self.run_ledger = Ledger(record / "runs.csv", RUN_COLUMNS)
        self.demo_ledger = Ledger(record / "demos.csv", DEMO_COLUMNS)

    # ------------------------------------------------------------------ paths (relative to the project)
    def dataset_path(self, dataset: Dataset) -> str:
        return str(self.plan.work_dir / "demos" / f"{dataset.name}.hdf5")

    def run_dir(self, run: Run) -> str:
        return str(self.plan.work_dir / "runs" / run.id)

    def results_dir(self, run: Run) -> str:
        return str(self.record_results(run.id))

    def record_results(self, run_id: str) -> PurePosixPath:
        """The run's evaluation folder (``handbench eval --out``), kept in the repo."""
        return self.plan.record_dir / "results" / run_id

    def times_path(self, name: str) -> Path:
        """The wall-times file (:class:`StepTimes`) of a run or dataset ``name``."""
        return self.project / self.plan.work_dir / "times" / f"{name}.json"

    def log_path(self, name: str, step: str) -> Path:
        return self.project / self.plan.work_dir / "logs" / f"{name}.{step}.log"

    # ------------------------------------------------------------------ commands
    def demos_command(self, dataset: Dataset) -> list[str]:
        command = ["handbench", "generate-demos", "--task", dataset.task, "--hand", dataset.hand, "--num-demos",
                   str(dataset.demos), "--obs", dataset.obs, "--protocol", self.plan.protocol, "--workers", "0",
                   "--quiet", "--out", self.dataset_path(dataset)]
        if dataset.image_size is not None:
            command += ["--image-size", *(str(side) for side in dataset.image_size)]
        return command

    def train_command(self, run: Run) -> list[str]:
        assert run.dataset is not None and run.seed is not None
        command = ["handbench", "train", "--policy", run.policy, "--dataset", self.dataset_path(run.dataset),
                   "--seed", str(run.seed), "--preset", self.plan.preset, "--threads", "1", "--no-progress",
                   "--out", self.run_dir(run)]
        if run.steps is not None:
            command += ["--steps", str(run.steps)]
        command += self.plan.train_options.get(run.policy, ())
        if self.options.device != "cpu":
            command += ["--device", self.options.device]
        return command

    def eval_command(self, run: Run) -> list[str]:
        if run.trained:
            command = ["handbench", "eval", "--policy", run.policy, "--checkpoint", f"{self.run_dir(run)}/policy.pt"]
        else:
            command = ["handbench", "eval", "--policy", run.policy, "--task", run.task, "--hand", run.hand,
                       "--obs", run.obs]
        command += ["--protocol", self.plan.protocol, "--workers", str(self.options.eval_workers), "--no-progress",
                    "--out", self.results_dir(run)]
        if run.episodes is not None:
            command += ["--episodes", str(run.episodes)]
        if run.trained and self.options.device != "cpu":
            command += ["--device", self.options.device]
        return command

    # ------------------------------------------------------------------ state
    def finished(self) -> set[str]:
        """Run ids with a ledger row whose results folder is still there."""
        return {run_id for run_id in self.run_ledger.rows()
                if (self.project / self.record_results(run_id) / "summary.csv").is_file()}

    def relativize_finished_results(self) -> int:
        """Make the paths under this project folder in finished runs' results folders relative (sweeps before
        2026-12 left them absolute); a folder another process has claimed (rerunning it) is left to it. Returns how
        many folders changed; raises :class:`HandbenchError` when a file cannot be rewritten."""
        prefixes = project_prefixes(self.project)
        changed = 0
        for run_id in sorted(self.finished()):
            with contextlib.suppress(ClaimedElsewhere), self.claim(run_id):
                changed += relativize_results_dir(self.project / self.record_results(run_id), prefixes)
        return changed

    def left(self) -> list[Run]:
        done = self.finished()
        return [run for run in self.runs if run.id not in done]

    def datasets_made(self) -> set[str]:
        return {name for name in self.demo_ledger.rows() if (self.project / name).is_file()}

    # ------------------------------------------------------------------ running
    def run_all(self, say: Callable[[str], None] = print) -> SweepOutcome:
        """Run what is left, in plan order; the others are recorded in the ledger.

        Several processes may run the same selection (here, or on machines sharing the project folder): each
        claims a run before starting it (and a dataset before making it), under a lock in ``<work_dir>/claims/``,
        and passes over what another process holds, coming back to it after its other runs; what is still held
        then is left to its holder. So N processes of one command share its work without ``--shard``. A run passed
        over only because another process is making its dataset is nobody's: when nothing else is left, this
        process waits for the dataset and runs it.
        """
        left = self.left()
        number = {run.id: k for k, run in enumerate(left, 1)}
        outcome = SweepOutcome()
        told: set[tuple[str, str]] = set()  # each run passed over is named once per reason, not once per pass
        say(f"{len(self.runs) - len(left)} of {len(self.runs)} selected runs finished; {len(left)} to run")
        self.catch_up_submissions(outcome, say)
        while left:
            held: list[Run] = []
            awaited: dict[str, Dataset] = {}  # datasets being made elsewhere that held runs need
            for run in left:
                try:
                    with self.claim(run.id):
                        if run.id in self.finished():
                            continue  # another process finished it since this one looked
                        if run.dataset is not None and not self.dataset_free(run.dataset):  # before announcing it
                            raise DatasetElsewhere(f"another process is on {run.dataset.name}", run.dataset)
                        log = self.log_path(run.id, "*").relative_to(self.project)
                        say(f"[{number[run.id]}/{len(number)}] {run.id} (follow it in {log}) {now()}")
                        try:
                            self.run_one(run, say)
                        except HandbenchError as exc:
                            outcome.failed.append(run.id)
                            say(f"  failed: {exc}")
                except ClaimedElsewhere as exc:
                    held.append(run)
                    if isinstance(exc, DatasetElsewhere):
                        awaited[exc.dataset.name] = exc.dataset
                    if (run.id, str(exc)) not in told:
                        told.add((run.id, str(exc)))
                        say(f"  passing over {run.id} for now: {exc}")
                except KeyboardInterrupt:
                    raise KeyboardInterrupt(f"{run.id} stopped; {self.plan.record_dir}/runs.csv keeps the finished "
                                            "runs and each command resumes its own work: rerun the same "
                                            "command") from None
            if len(held) == len(left):  # nothing more this process can start now
                if not awaited:  # the rest is other processes' runs
                    outcome.elsewhere.extend(run.id for run in held)
                    break
                say(f"  waiting for {', '.join(awaited)} (another process is making it) {now()}")
                try:
                    self.wait_for_datasets(list(awaited.values()))
                except KeyboardInterrupt:
                    raise KeyboardInterrupt(f"stopped while waiting for {', '.join(awaited)}; "
                                            f"{self.plan.record_dir}/runs.csv keeps the finished runs: rerun the "
                                            "same command") from None
            left = held
        return outcome

    def catch_up_submissions(self, outcome: SweepOutcome, say: Callable[[str], None]) -> None:
        """Submit what a process stopped during a submission left out: each leaderboard entry of this selection
        whose stored copy lacks a complete (task, hand) of the ledger (an entry that is up to date is left alone).
        A refused submission is named and counted in ``outcome.failed``; the sweep goes on."""
        from handbench.sweep.submitting import entry_id, submit_group

        for group in dict.fromkeys(run.group for run in self.runs if run.submit):
            try:
                message = submit_group(self, group)
            except HandbenchError as exc:
                outcome.failed.append(entry_id(self, group))
                say(f"  could not submit {entry_id(self, group)}: {exc}")
                continue
            if message:
                say(f"  {message} (a submission an earlier process did not finish)")

    def wait_for_datasets(self, datasets: list[Dataset]) -> None:
        """Return once one of the datasets is made, or is no longer claimed (its maker stopped: this process may
        take it over)."""
        while not any(self.dataset_free(dataset) for dataset in datasets):
            time.sleep(CLAIM_POLL_S)

    def dataset_free(self, dataset: Dataset) -> bool:
        """Whether the dataset is made, or no other process is making it now."""
        if self.dataset_path(dataset) in self.datasets_made():
            return True
        with contextlib.suppress(ClaimedElsewhere), self.claim(dataset.name):
            return True
        return False

    def claim(self, name: str) -> contextlib.AbstractContextManager[None]:
        """This process's claim on the run or dataset ``name`` (see :func:`claimed`)."""
        return claimed(self.project / self.plan.work_dir / "claims" / name, name)

    def run_one(self, run: Run, say: Callable[[str], None]) -> None:
        times = StepTimes(self.times_path(run.id))
        if run.dataset is not None:
            self.make_dataset(run.dataset, say)
            # A finished training is not rerun: a rerun rewrites policy.pt (a new file hash), and the evaluation
            # it already started would then refuse its own finished episodes.
            if not (times.finished("train") and (self.project / self.run_dir(run) / "policy.pt").is_file()):
                seconds = self.execute(self.train_command(run), self.log_path(run.id, "train"), times, "train")
                times.mark_finished("train")
                say(f"  trained in {seconds:.0f} s")
        evaluate = self.eval_command(run)
        seconds = self.execute(evaluate, self.log_path(run.id, "eval"), times, "eval")
        # The evaluation records the checkpoint and the training's dataset by absolute path; the record folder is
        # committed, so it keeps them relative to the project, as the leaderboard copy does.
        results_dir = self.project / self.results_dir(run)
        relativize_results_dir(results_dir, project_prefixes(self.project))
        results = load_summary(results_dir)
        say(f"  evaluated in {seconds:.0f} s: success {results['success_rate']:.0%} over {results['episodes']} "
            "episodes")
        self.run_ledger.record({
            "run_id": run.id, "stage": run.stage, "policy": run.policy, "obs": run.obs, "task": run.task,
            "hand": run.hand, "demos": "" if run.dataset is None else run.dataset.demos,
            "seed": "" if run.seed is None else run.seed,
            "dataset": "" if run.dataset is None else self.dataset_path(run.dataset),
            "train_command": shlex.join(self.train_command(run)) if run.trained else "",
            "eval_command": shlex.join(evaluate), "train_seconds": times.get("train") if run.trained else "",
            "eval_seconds": times.get("eval"), "success_rate": results["success_rate"],
            "episodes": results["episodes"], "checkpoint_hash": results["checkpoint_hash"],
            "device": self.options.device if run.trained else "cpu", "host": platform.node(), "finished_at": now()})
        if run.submit:
            from handbench.sweep.submitting import submit_group

            message = submit_group(self, run.group)
            if message:
                say(f"  {message}")

    def make_dataset(self, dataset: Dataset, say: Callable[[str], None]) -> None:
        """Make the dataset unless it is made (raises :class:`ClaimedElsewhere` while another process makes it)."""
        path = self.dataset_path(dataset)
        if path in self.datasets_made():
            return
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.claim(dataset.name))
            except ClaimedElsewhere as exc:
                raise DatasetElsewhere(str(exc), dataset) from None
            if path not in self.datasets_made():  # another process may have made it meanwhile
                self._generate(dataset, path, say)

    def _generate(self, dataset: Dataset, path: str, say: Callable[[str], None]) -> None:
        """Generate the demos and record them; a dataset the ledger lists but this machine lacks (the work folder
        is not in the repo) is made again, and that time adds to what its row recorded."""
        say(f"  generating {dataset.demos} demos: {path}")
        times = StepTimes(self.times_path(dataset.name))
        command = self.demos_command(dataset)
        seconds = self.execute(command, self.log_path(dataset.name, "demos"), times, "demos")
        earlier = self.demo_ledger.rows().get(path, {}).get("seconds") or 0
        self.demo_ledger.record({"dataset": path, "task": dataset.task, "hand": dataset.hand, "obs": dataset.obs,
                                 "demos": dataset.demos, "command": shlex.join(command),
                                 "seconds": float(earlier) + seconds, "host": platform.node(), "finished_at": now()})

    def execute(self, command: list[str], log: Path, times: StepTimes, step: str) -> float:
        """Run a ``handbench`` command in a child process (output to ``log``); its wall time is added to
        ``times[step]`` even when it fails or is interrupted (the rerun resumes it), and written down every
        :data:`HEARTBEAT_S` while it runs, so an attempt killed outright (the machine or session ending) still
        counts up to its last heartbeat. Returns the total."""
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "handbench.cli", *command[1:]]
        times.begin(step)
        began = time.perf_counter()
        with log.open("a") as handle:
            handle.write(f"$ {shlex.join(command)}   # {now()}\n")
            handle.flush()
            child = subprocess.Popen(argv, cwd=self.project, stdout=handle, stderr=subprocess.STDOUT)
            try:
                while True:
                    try:
                        code = child.wait(timeout=HEARTBEAT_S)
                        break
                    except subprocess.TimeoutExpired:
                        times.beat(step, time.perf_counter() - began)
            except KeyboardInterrupt:  # the child got the Ctrl-C too: let it save what it has
                try:
                    child.wait(timeout=CHILD_GRACE_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                raise
            finally:
                times.add(step, time.perf_counter() - began)
        if code != 0:
            tail = log.read_text().strip().splitlines()[-1:] or [""]
            raise HandbenchError(f"`{shlex.join(command)}` exited with {code}: {tail[0]} (log: {log})")
        return times.get(step)


class StepTimes:
    """Wall seconds spent on each step of one run, summed over attempts (kept beside its checkpoints).

    The running attempt's seconds so far are kept apart (``<step>:running``, rewritten by :meth:`beat`) until it
    ends (:meth:`add`); an attempt killed before it could end leaves them behind, and they count: :meth:`get`
    adds them and the next attempt's :meth:`begin` folds them into the step's total.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, float]:
        try:
            return {k: float(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _write(self, values: dict[str, float]) -> None:
        from handbench.atomic import atomic_write_text

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(values))

    def get(self, step: str) -> float:
        values = self._read()
        return round(values.get(step, 0.0) + values.get(f"{step}:running", 0.0), 1)

    def finished(self, step: str) -> bool:
        return f"{step}:finished" in self._read()

    def mark_finished(self, step: str) -> None:
        self.add(f"{step}:finished", 0.0)

    def forget(self, step: str) -> None:
        """Drop ``step``'s seconds and finished mark (its work is to be redone); other steps are kept."""
        values = {key: value for key, value in self._read().items()
                  if key not in (step, f"{step}:finished", f"{step}:running")}
        if self.path.is_file():
            self._write(values)

    def begin(self, step: str) -> None:
        """Start an attempt: the seconds a killed earlier attempt left running join the step's total."""
        values = self._read()
        if f"{step}:running" in values:
            values[step] = values.get(step, 0.0) + values.pop(f"{step}:running")
            self._write(values)

    def beat(self, step: str, seconds: float) -> None:
        """The running attempt has taken ``seconds`` so far."""
        values = self._read()
        values[f"{step}:running"] = seconds
        self._write(values)

    def add(self, step: str, seconds: float) -> None:
        """An attempt of ``step`` ended after ``seconds`` (its heartbeats are replaced by the full count)."""
        values = self._read()
        values.pop(f"{step}:running", None)
        values[step] = values.get(step, 0.0) + seconds
        self._write(values)


@contextlib.contextmanager
def claimed(path: Path, name: str) -> Iterator[None]:
    """Hold the claim lock ``path`` (an :func:`~handbench.locking.output_lock`) for a ``with`` block; raises
    :class:`ClaimedElsewhere` at once when another process holds it (and :class:`HandbenchError` when the claim cannot
    be written at all: that is no other process's doing, and passing everything over would report it as one)."""
    from handbench.locking import LockHeld, output_lock

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(output_lock(path))
        except LockHeld:
            raise ClaimedElsewhere(f"another process is on {name}") from None
        yield


def load_summary(results_dir: Path) -> dict[str, object]:
    """Success rate, episode count and checkpoint hash of a finished evaluation folder."""
    from handbench.leaderboard.validate import load_results_dir

    results = load_results_dir(results_dir)
    episodes = results.episodes
    return {"success_rate": float(episodes["success"].astype(bool).mean()), "episodes": len(episodes),
            "checkpoint_hash": str(results.meta.get("policy", {}).get("checkpoint_hash", "") or "")}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

