"""Finished sweep work that no longer matches its plan or its protocol, and forgetting it.

A finished run is *stale* when a rerun would not reproduce it: the plan now builds a different train or eval
command for it (say a ``[train_options]`` entry changed); its results were evaluated on a scene the protocol no
longer builds (an unreleased protocol's task or hand changed: the compiled model's hash differs) or on another
task version than the protocol now asks (a version may change only what an episode sets, not the compiled
model); or a learned policy's results were evaluated at a lane width the protocol no longer fixes (a batched
query's rows differ in the last bits between widths; only the evaluation is redone, the checkpoint is kept). A
dataset is stale when its recorded scene hash or task version differs from the protocol's. A sweep refuses to go
on while its selection holds stale work (the ledger would mix old and new results); ``handbench sweep
--forget-stale`` removes the stale rows and results from the record, moves their datasets and checkpoints aside
under ``<work_dir>/stale/<time>/`` (nothing is deleted), and resubmits the leaderboard entries they were part of.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from handbench.errors import HandbenchError
from handbench.sweep.aside import move_aside, with_folder

if TYPE_CHECKING:
    from handbench.sweep.plan import Dataset, Run
    from handbench.sweep.runner import Sweep

# Options that say where or how fast a command runs, not what it computes: a run made on a GPU or with Ray
# workers is the same run.
PLACEMENT_OPTIONS = ("--device", "--workers")


@dataclass(frozen=True)
class StaleItem:
    """One stale run (``run_id``) or dataset (``dataset`` path), and why. ``evaluation_only``: the run's checkpoint
    still matches the plan; only its evaluation must be redone."""

    name: str
    reason: str
    run: Run | None = None
    dataset: Dataset | None = None
    evaluation_only: bool = False


def comparable(command: str | list[str]) -> list[str]:
    """A command's words without its placement options (``--device X``, ``--workers K``)."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in PLACEMENT_OPTIONS:
            skip = True
        else:
            kept.append(word)
    return kept


def scene_hash(sweep: Sweep, task: str, hand: str) -> str:
    """The hash of the scene the sweep's protocol builds for (task, hand), as the evaluator checks it."""
    from handbench.protocol import load_protocol
    from handbench.registry import compiled_model

    protocol = load_protocol(sweep.plan.protocol)
    return compiled_model(task, hand, protocol.task(task).task_version, protocol.hand_version(hand))[1]


def recorded_scenes(results_dir: Path) -> tuple[set[str], set[int]]:
    """The scene hashes and task versions recorded in a results folder's per-episode CSV (empty sets when it
    records none)."""
    path = results_dir / "episodes.csv"
    if not path.is_file():
        return set(), set()
    wanted = ("model_hash", "task_version")
    episodes = pd.read_csv(path, usecols=lambda column: column in wanted, dtype=str)
    hashes = set(episodes["model_hash"].dropna()) if "model_hash" in episodes else set()
    versions = {int(v) for v in episodes["task_version"].dropna()} if "task_version" in episodes else set()
    return hashes, versions


def recorded_lanes(results_dir: Path) -> int | None:
    """The lane width a results folder's evaluation batched its queries over (``meta.json``'s rollout), or None."""
    try:
        rollout = json.loads((results_dir / "meta.json").read_text()).get("rollout") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return int(rollout["lanes"]) if isinstance(rollout, dict) and "lanes" in rollout else None


def find_stale(sweep: Sweep) -> list[StaleItem]:
    """The selected runs' stale finished runs and stale datasets, in plan order."""
    from handbench.dataset import open_dataset
    from handbench.protocol import load_protocol

    protocol = load_protocol(sweep.plan.protocol)
    lanes = protocol.lanes
    hashes: dict[tuple[str, str], str] = {}

    def current(task: str, hand: str) -> str:
        if (task, hand) not in hashes:
            hashes[(task, hand)] = scene_hash(sweep, task, hand)
        return hashes[(task, hand)]

    stale: list[StaleItem] = []
    rows = sweep.run_ledger.rows()
    finished = sweep.finished()
    for run in sweep.runs:
        if run.id not in finished:
            continue
        row = rows[run.id]
        want = current(run.task, run.hand)
        results_dir = sweep.project / sweep.results_dir(run)
        recorded, versions = recorded_scenes(results_dir)
        want_version = protocol.task(run.task).task_version
        # A policy without a model (expert, random, hold) acts lane by lane: its episodes do not depend on the
        # width, so only learned policies' evaluations are width-stale.
        width = recorded_lanes(results_dir) if run.trained else None
        evaluation_only = False
        train = sweep.train_command(run) if run.trained else []
        evaluate = sweep.eval_command(run)
        if run.trained and comparable(row["train_command"]) != comparable(train):
            reason = f"trained with `{row['train_command']}`; the plan now asks `{shlex.join(train)}`"
        elif comparable(row["eval_command"]) != comparable(evaluate):
            reason = f"evaluated with `{row['eval_command']}`; the plan now asks `{shlex.join(evaluate)}`"
        elif versions and versions != {want_version}:
            reason = (f"evaluated on {run.task} v{', v'.join(map(str, sorted(versions)))}; {sweep.plan.protocol} now "
                      f"asks v{want_version}")
        elif recorded and recorded != {want}:
            reason = f"evaluated on scene {', '.join(sorted(recorded))}; {sweep.plan.protocol} now builds {want}"
        elif width is not None and width != lanes:
            reason = f"evaluated at {width} lanes; {sweep.plan.protocol} now batches queries over {lanes}"
            evaluation_only = True
        else:
            continue
        stale.append(StaleItem(run.id, reason, run=run, evaluation_only=evaluation_only))
    stale.extend(unfinished_that_cannot_resume(sweep, finished))
    made = sweep.datasets_made()
    seen: set[str] = set()
    for run in sweep.runs:
        if run.dataset is None:
            continue
        path = sweep.dataset_path(run.dataset)
        if path in seen or path not in made:
            continue
        seen.add(path)
        with open_dataset(sweep.project / path) as dataset:
            recorded_hash = str(dataset.attrs.get("model_hash", ""))
            recorded_version = dataset.attrs.get("task_version")
        want = current(run.dataset.task, run.dataset.hand)
        want_version = protocol.task(run.dataset.task).task_version
        if recorded_version is not None and int(recorded_version) != want_version:
            stale.append(StaleItem(path, f"recorded on {run.dataset.task} v{int(recorded_version)}; "
                                         f"{sweep.plan.protocol} now asks v{want_version}", dataset=run.dataset))
        elif recorded_hash != want:
            stale.append(StaleItem(path, f"recorded on scene {recorded_hash}; {sweep.plan.protocol} now builds {want}",
                                   dataset=run.dataset))
    return stale


def unfinished_that_cannot_resume(sweep: Sweep, finished: set[str]) -> list[StaleItem]:
    """Unfinished runs whose folder holds a training ``handbench train`` would refuse to resume: one started on
    another dataset than the plan's (say one made before a task or hand changed), or by another train command than
    the plan now builds (a ``[train_options]`` entry changed). They are set aside with the stale runs and trained
    afresh."""
    from handbench.dataset import dataset_hash
    from handbench.training.trainer import POLICY_FILE, STATE_FILE

    stale: list[StaleItem] = []
    hashes: dict[str, str] = {}
    for run in sweep.runs:
        folder = sweep.project / sweep.run_dir(run)
        if run.id in finished or not run.trained or not (folder / STATE_FILE).is_file():
            continue
        dataset = sweep.project / sweep.dataset_path(run.dataset)
        if not dataset.is_file():
            continue
        if str(dataset) not in hashes:
            hashes[str(dataset)] = dataset_hash(dataset)
        recorded = str(_saved(folder / STATE_FILE, "signature").get("dataset_hash", ""))
        command = _saved(folder / POLICY_FILE, "provenance").get("command")
        want = sweep.train_command(run)
        if recorded != hashes[str(dataset)]:
            reason = (f"unfinished, its training started on dataset {recorded or '(unknown)'}; "
                      f"{sweep.dataset_path(run.dataset)} is now {hashes[str(dataset)]}")
        elif isinstance(command, str) and comparable(command) != comparable(want):
            reason = f"unfinished, its training started as `{command}`; the plan now asks `{shlex.join(want)}`"
        else:
            continue
        stale.append(StaleItem(run.id, reason, run=run))
    return stale


def _saved(path: Path, key: str) -> dict:
    """The ``key`` dict of a torch file a training wrote (``{}`` when absent or unreadable)."""
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True).get(key, {})
    except Exception:  # a foreign, damaged or missing file: the trainer itself reports it
        return {}
    return value if isinstance(value, dict) else {}


def describe(stale: list[StaleItem]) -> str:
    """One line: how many stale items, the first one and why, and what to do."""
    runs = sum(item.run is not None for item in stale)
    first = stale[0]
    return (f"{runs} run(s) and {len(stale) - runs} dataset(s) of this selection are stale "
            f"(e.g. {first.name}: {first.reason}); rerun with --forget-stale to set them aside and make them "
            "again, or list them with --dry-run")


@contextlib.contextmanager
def claimed_all(sweep: Sweep, names: list[str]) -> Iterator[None]:
    """Hold this process's claims on the runs and datasets ``names``; raises HandbenchError (holding none) when
    another sweep process is on any of them: moving its files aside under it would break its work."""
    from handbench.sweep.runner import ClaimedElsewhere

    with contextlib.ExitStack() as claims:
        busy = []
        for name in names:
            try:
                claims.enter_context(sweep.claim(name))
            except ClaimedElsewhere:
                busy.append(name)
        if busy:
            raise HandbenchError(f"{len(busy)} stale run(s) or dataset(s) are in use by another sweep process "
                                 f"({', '.join(busy[:3])}{' ...' if len(busy) > 3 else ''}): stop it (Ctrl-C), then "
                                 "run --forget-stale again")
        yield


def forget(sweep: Sweep, stale: list[StaleItem], say: Callable[[str], None] = print) -> Path:
    """Remove the stale items from the record and move their files aside; returns the folder they went to.

    Runs that trained on a stale dataset, finished or not, are forgotten with it. A run stale in its evaluation
    only keeps its checkpoint and training time; its results are moved aside and its evaluation is redone.
    Leaderboard entries that held a forgotten run are set aside too and resubmitted from the runs that remain
    (none when none remains)."""
    from handbench.sweep.submitting import resubmit_groups

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    aside = sweep.project / sweep.plan.work_dir / "stale" / stamp
    stale_datasets = {sweep.dataset_path(item.dataset) for item in stale if item.dataset is not None}
    from handbench.sweep.runner import StepTimes

    runs = {item.run.id: item.run for item in stale if item.run is not None and not item.evaluation_only}
    finished = sweep.finished()
    for run in sweep.plan_runs:  # finished or not: an unfinished training on a remade dataset could not resume
        started = run.id in finished or (sweep.project / sweep.run_dir(run)).exists()
        if run.dataset is not None and sweep.dataset_path(run.dataset) in stale_datasets and started:
            runs.setdefault(run.id, run)
    evaluations = {item.run.id: item.run for item in stale
                   if item.run is not None and item.evaluation_only and item.run.id not in runs}
    names = [*runs, *evaluations, *{item.dataset.name for item in stale if item.dataset is not None}]
    with claimed_all(sweep, names):  # no other sweep process is on them, nor starts them while they move
        for run_id, run in runs.items():
            move_aside(sweep.project / sweep.run_dir(run), aside / "runs" / run_id)
            move_aside(sweep.times_path(run_id), aside / "times" / f"{run_id}.json")
            move_aside(sweep.project / sweep.results_dir(run), aside / "results" / run_id)
        for run_id, run in evaluations.items():
            times = sweep.times_path(run_id)
            if times.is_file():
                shutil.copyfile(times, with_folder(aside / "times" / f"{run_id}.json"))
            StepTimes(times).forget("eval")
            move_aside(sweep.project / sweep.results_dir(run), aside / "results" / run_id)
        runs.update(evaluations)
        sweep.run_ledger.remove(runs)
        for path in stale_datasets:
            move_aside(sweep.project / path, aside / "demos" / Path(path).name)
        sweep.demo_ledger.remove(stale_datasets)
        say(f"set aside {len(runs) - len(evaluations)} run(s), the evaluations of {len(evaluations)} more and "
            f"{len(stale_datasets)} dataset(s) in {aside.relative_to(sweep.project)}")
        for message in resubmit_groups(sweep, {run.group for run in runs.values() if run.submit}, aside):
            say(f"  {message}")
    return aside
