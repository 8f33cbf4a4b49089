"""Checks of what a result claims about where it came from, against what can be recomputed here.

``validate`` checks that results follow the protocol; these checks catch results that follow it but were
relabelled or made up:

- library versions: supported ones only (``versions``), and the same across the runs of one entry;
- ``model_hash``: what the row's task, task version and hand compile to with the recorded MuJoCo version;
- the checkpoint's provenance: its observation mode, task and hand are the ones the rows claim;
- training seeds: two runs with bit-identical per-episode results are one evaluation copied;
- machine paths: recorded commands and paths are relative to the project, so anyone can replay them;
- reference rows (scripted expert, random and hold floors): deterministic and cheap, so a sample of their
  seeds, drawn from a hash of the recorded results (``rerun_seeds``), is evaluated again and must give the
  recorded episodes exactly (the return to ``RETURN_RELATIVE_TOLERANCE``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from handbench.errors import HandbenchError
from handbench.leaderboard.validate import (
    EPISODES_FILE,
    META_FILE,
    RunResults,
    current_protocol,
    runs_by_task,
    validate_protocol_runs,
)
from handbench.leaderboard.versions import check_versions
from handbench.protocol import Protocol

# Episodes of each (task, hand) of a reference entry evaluated again by validation (seeds from ``rerun_seeds``).
REFERENCE_RERUN_EPISODES = 3
# Columns a re-run reference episode must reproduce (as the CSV writes them): exactly, but for the return.
REPRODUCED_COLUMNS = ("success", "success_at_end", "steps", "return", "time_to_success")
# The return is a sum of rewards computed with numpy's linear algebra, whose BLAS kernel is picked for the CPU when
# numpy loads: an AVX2 machine re-running the hb-v1 scripted expert on turn-valve/shadow seed 1000025 got the same
# outcome, steps and time to success but a return of 265.845691 against the 265.845715 an AVX-512 machine recorded
# (the expert's wrist IK rounded one action differently at step 73). Returns agree to this relative tolerance.
RETURN_RELATIVE_TOLERANCE = 1e-6
# An absolute path of the machine a result was made on: "/..." or "~/..." at the start of a word, or "C:\".
# model_hash values recorded on other installs, reviewed: (task, task version, hand, MuJoCo version) -> hashes.
# The compiled Shadow hand embeds the absolute paths of its mesh files (inside the installed gymnasium-robotics),
# so its hash depends on where that package is installed; these are the hb-v1 reference's values.
KNOWN_MODEL_HASHES: dict[tuple[str, int, str, str], tuple[str, ...]] = {
    ("lift-cube", 0, "shadow", "4.0.0"): ("ed4bf37d86206021",),
    ("open-drawer", 0, "shadow", "4.0.0"): ("e67e952d6bd1cb36",),
    ("pick-place", 0, "shadow", "4.0.0"): ("1d2cfb24b0d8e81a",),
    ("press-button", 0, "shadow", "4.0.0"): ("6684e7cd9046d764",),
    ("stack", 0, "shadow", "4.0.0"): ("e613332d687c2eeb",),
    ("turn-valve", 0, "shadow", "4.0.0"): ("8917ec7e05348ee2",),
}
MACHINE_PATH = re.compile(r"(?:^|[\s='\"])(/[^\s'\"]+|~/[^\s'\"]*|[A-Za-z]:\\[^\s'\"]*)")


# ------------------------------------------------------------------------------------------------ one run
def check_run_provenance(run: RunResults, reference: bool, rules: Protocol) -> None:
    check_run_versions(run)
    check_model_hashes(run, rules)
    check_machine_paths(run)
    if not reference:
        check_checkpoint_provenance(run)


def run_versions(run: RunResults) -> dict[str, str]:
    """Library versions of a run: meta.json ``versions``, with the per-episode columns taking precedence."""
    recorded = run.meta.get("versions")
    versions = {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}
    versions["handbench"] = str(run.episodes["handbench_version"].iloc[0])
    versions["mujoco"] = str(run.episodes["mujoco_version"].iloc[0])
    return versions


def check_run_versions(run: RunResults) -> None:
    check_versions(run_versions(run), str(run.source))
    meta_versions = run.meta.get("versions") if isinstance(run.meta.get("versions"), dict) else {}
    for library in ("handbench", "mujoco"):
        recorded = meta_versions.get(library)
        row = str(run.episodes[f"{library}_version"].iloc[0])
        if recorded is not None and str(recorded) != row:
            raise HandbenchError(f"{run.source}: {META_FILE} records {library} {recorded} but the episodes say {row}")
        check_versions({library: str(recorded or row)}, str(run.source / META_FILE))


@functools.cache
def compiled_hash(task: str, task_version: int, hand: str, hand_version: int = 0) -> str:
    """What ``task`` at ``task_version`` compiles to with ``hand`` at ``hand_version`` under the installed MuJoCo."""
    from handbench.registry import compiled_model

    return compiled_model(task, hand, task_version, hand_version)[1]  # HandbenchError if a version is unknown


def _hand_versions_made(run: RunResults, rules: Protocol) -> Iterator[tuple[str, str, int, int, set[int]]]:
    """Per (task, hand) of ``run`` (made under protocol ``rules``): its task version, the hand version ``rules``
    pins, and the hand versions whose compiled model its rows' model_hash matches (empty when none does). Checks
    the MuJoCo version first."""
    import mujoco

    from handbench.hands import hand_versions
    from handbench.leaderboard.validate import _version_number

    for (task, hand, version, mujoco_version), group in run.episodes.groupby(
            ["task", "hand", "task_version", "mujoco_version"], sort=True):
        if mujoco_version != mujoco.__version__:
            raise HandbenchError(f"{run.source}: {task}/{hand} was evaluated with MuJoCo {mujoco_version}, this "
                                 f"machine has {mujoco.__version__}; install mujoco=={mujoco_version} to check "
                                 f"its model_hash")
        number = _version_number(version)
        if number is None:
            raise HandbenchError(f"{run.source}: {task}/{hand} task_version {version!r} is not a version number")
        pinned = rules.hand_version(hand)
        hashes = set(group["model_hash"])
        made = {hand_version for hand_version in hand_versions(hand)
                if hashes <= {compiled_hash(task, number, hand, hand_version),
                              *(KNOWN_MODEL_HASHES.get((task, number, hand, mujoco_version), ())
                                if hand_version == 0 else ())}}
        yield task, hand, number, pinned, made


def check_model_hashes(run: RunResults, rules: Protocol) -> None:
    """Every row's model_hash must be what its task, task version and hand (at the version the protocol pins)
    compile to. An open protocol also takes rows made with an older version of the hand: they are shown as made
    with it (:func:`older_hand_rows`) until re-run. The binary model depends on the MuJoCo version, so the check
    needs the MuJoCo the results were made with."""
    for task, hand, number, pinned, made in _hand_versions_made(run, rules):
        if pinned in made or (not rules.released and any(version < pinned for version in made)):
            continue
        expected = compiled_hash(task, number, hand, pinned)
        wrong = sorted(set(run.episodes.loc[(run.episodes["task"] == task) & (run.episodes["hand"] == hand),
                                            "model_hash"]) - {expected})
        raise HandbenchError(f"{run.source}: {task}/{hand} rows say model_hash {wrong[0] if wrong else '?'}, but "
                             f"{task} v{number} with {hand} v{pinned} compiles to {expected}; the rows are not "
                             f"from this task and hand")


def older_hand_rows(run: RunResults, rules: Protocol) -> list[tuple[str, str, int, int]]:
    """(task, hand, hand version made with, hand version ``rules`` pins) for each (task, hand) of ``run`` made with
    an older version of the hand than its (open) protocol ``rules`` now pins: provisional rows waiting for a
    re-run."""
    return [(task, hand, max(made), pinned) for task, hand, _, pinned, made in _hand_versions_made(run, rules)
            if made and pinned not in made]


def check_checkpoint_provenance(run: RunResults) -> None:
    """The checkpoint says what it was trained for; the rows must claim the same observation mode, task and
    hand, and the same checkpoint."""
    provenance = run.training_provenance
    where = f"{run.source / META_FILE} (policy.provenance)"
    policy = run.meta.get("policy") if isinstance(run.meta.get("policy"), dict) else {}
    recorded_hash = str(policy.get("checkpoint_hash") or "")
    if recorded_hash != run.checkpoint_hash:
        raise HandbenchError(f"{run.source}: {META_FILE} evaluated checkpoint {recorded_hash or '(none)'} but the "
                             f"episodes say {run.checkpoint_hash}")
    missing = [name for name in ("obs_mode", "hand", "task") if not provenance.get(name)]
    if missing:
        raise HandbenchError(f"{where}: the checkpoint does not record its {', '.join(missing)}; the leaderboard "
                             f"needs the training provenance `handbench train` writes")
    if provenance["obs_mode"] != run.obs_mode:
        raise HandbenchError(f"{run.source}: the episodes say observation mode {run.obs_mode!r} but the checkpoint "
                             f"was trained on {provenance['obs_mode']!r} observations")
    hands = sorted(set(run.episodes["hand"]))
    if hands != [str(provenance["hand"])]:
        raise HandbenchError(f"{run.source}: the episodes say hand {', '.join(hands)} but the checkpoint was "
                             f"trained for {provenance['hand']!r}")
    trained_tasks = provenance["task"] if isinstance(provenance["task"], list) else [provenance["task"]]
    extra = sorted(set(run.episodes["task"]) - {str(task) for task in trained_tasks})
    if extra:
        raise HandbenchError(f"{run.source}: the episodes include task {extra[0]!r} but the checkpoint was "
                             f"trained on {', '.join(map(str, trained_tasks))}")
    trained_model = provenance.get("model_hash")
    single_task = len(set(run.episodes["task"])) == 1
    if trained_model and single_task and str(trained_model) != run.episodes["model_hash"].iloc[0]:
        raise HandbenchError(f"{run.source}: the checkpoint was trained on compiled model {trained_model} but the "
                             f"episodes were run on {run.episodes['model_hash'].iloc[0]}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def machine_paths(text: str) -> list[str]:
    return MACHINE_PATH.findall(text)


def check_machine_paths(run: RunResults) -> None:
    """Recorded commands and paths are relative to the project: an absolute path only exists on one machine."""
    for text in _strings(run.meta):
        found = machine_paths(text)
        if found:
            raise HandbenchError(f"{run.source / META_FILE}: records the absolute path {found[0]}; paths must be "
                                 f"relative to the project (submit from the project folder, as "
                                 f"baselines/reproduce.sh runs)")
    recorded = run.episodes["checkpoint"] if "checkpoint" in run.episodes.columns else []
    for value in sorted({value for value in recorded if isinstance(value, str)}):
        if machine_paths(value):
            raise HandbenchError(f"{run.source / EPISODES_FILE}: column checkpoint holds the absolute path "
                                 f"{value}; paths must be relative to the project")


# ------------------------------------------------------------------------------------------------ all runs
def check_entry_provenance(runs: Sequence[RunResults], reference: bool, protocol: str,
                           rerun_references: bool = True) -> None:
    """Checks across an entry's runs; ``rerun_references=False`` skips evaluating reference seeds again (for
    views of an already checked leaderboard: ``submit`` and ``--check`` always re-run them)."""
    check_same_versions(runs)
    if reference and rerun_references:
        check_reference_rerun(runs, protocol)
    else:
        check_distinct_results(runs)


def check_same_versions(runs: Sequence[RunResults]) -> None:
    """One entry, one software stack: runs made with different library versions are not one method's seeds."""
    first = run_versions(runs[0])
    for run in runs[1:]:
        versions = run_versions(run)
        for library in ("handbench", "mujoco", "torch", "numpy"):
            if library in first and library in versions and first[library] != versions[library]:
                raise HandbenchError(f"{run.source} was made with {library} {versions[library]} but "
                                     f"{runs[0].source} with {first[library]}; every run of an entry uses the "
                                     f"same versions")


def _outcomes(run: RunResults, key: tuple[str, str]) -> tuple:
    rows = run.episodes[(run.episodes["task"] == key[0]) & (run.episodes["hand"] == key[1])].sort_values("seed")
    return tuple(map(tuple, rows[["seed", "success", "steps", "return"]].itertuples(index=False)))


def check_distinct_results(runs: Sequence[RunResults]) -> None:
    """Independently trained checkpoints do not give bit-identical episodes (success, steps and return to the
    recorded precision on every seed): identical runs are one evaluation under several checkpoint hashes."""
    for key, covering in runs_by_task(runs).items():
        seen: dict[tuple, RunResults] = {}
        for run in covering:
            outcomes = _outcomes(run, key)
            if outcomes in seen:
                raise HandbenchError(f"{run.source} and {seen[outcomes].source} have bit-identical results on "
                                     f"{key[0]}/{key[1]} ({len(outcomes)} episodes): one evaluation cannot count "
                                     f"as two training seeds")
            seen[outcomes] = run


@functools.cache
def _rerun(policy: str, task: str, hand: str, obs_mode: str, protocol: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    from handbench.evaluation import evaluate

    return evaluate(policy=policy, task=task, hand=hand, obs_mode=obs_mode, workers=0, seeds=seeds,
                    protocol=protocol, progress=False)


def rerun_seeds(episodes: pd.DataFrame, count: int = REFERENCE_RERUN_EPISODES) -> tuple[int, ...]:
    """``count`` of the recorded seeds of one (task, hand), drawn from a SHA-256 hash of the recorded outcomes:
    the same results always check the same seeds (validation is deterministic), and a submitter cannot know which
    seeds will be checked before fixing every result, since changing any recorded episode draws other seeds. (A
    forger who edits, hashes and retries until the draw misses the edited episodes still gets through: only
    ``handbench leaderboard --verify`` of every run re-evaluates every seed.)"""
    rows = episodes.sort_values("seed")[["seed", *REPRODUCED_COLUMNS]]
    # Canonical text of the outcomes (as compared: six decimals), whatever the frame's dtypes.
    text = "\n".join(",".join("nan" if pd.isna(value) else f"{float(value):.6f}" for value in row)
                     for row in rows.itertuples(index=False))
    digest = hashlib.sha256(text.encode()).hexdigest()
    seeds = [int(seed) for seed in rows["seed"]]
    return tuple(sorted(sorted(seeds, key=lambda seed: hashlib.sha256(f"{digest}:{seed}".encode()).digest())[:count]))


def check_reference_rerun(runs: Sequence[RunResults], protocol: str,
                          episodes: int = REFERENCE_RERUN_EPISODES) -> None:
    """A reference policy is deterministic: ``episodes`` seeds per (task, hand) (``rerun_seeds``) are evaluated
    again here and must reproduce the recorded rows: exactly, but for the return (to ``RETURN_RELATIVE_TOLERANCE``:
    CPUs with other BLAS kernels round it differently). Rows made with an older hand version than the (open)
    protocol now pins (:func:`older_hand_rows`) cannot be: they wait for their re-run."""
    from handbench.protocol import load_protocol

    for run in runs:
        older = {(task, hand) for task, hand, _, _ in older_hand_rows(run, load_protocol(protocol))}
        for (task, hand), group in run.episodes.groupby(["task", "hand"], sort=True):
            if (task, hand) in older:
                continue
            fresh = _rerun(run.policy, task, hand, run.obs_mode, protocol, rerun_seeds(group, episodes))
            for _, row in fresh.iterrows():
                recorded = group[group["seed"] == int(row["seed"])]
                if recorded.empty:
                    continue  # the protocol checks report missing seeds
                for column in REPRODUCED_COLUMNS:
                    want, got = recorded[column].iloc[0], row[column]
                    if not _same(want, got, RETURN_RELATIVE_TOLERANCE if column == "return" else 0.0):
                        raise HandbenchError(
                            f"{run.source}: {task}/{hand} seed {int(row['seed'])} records {column}={want} but "
                            f"policy {run.policy!r} gives {column}={got} when evaluated again here; a reference "
                            f"row must be what the reference policy does")


def _same(recorded: Any, fresh: Any, relative_tolerance: float = 0.0) -> bool:
    """Whether a recorded value and a fresh one agree: exactly at the CSV's six decimals, or within
    ``relative_tolerance`` of each other."""
    if pd.isna(recorded) or pd.isna(fresh):
        return bool(pd.isna(recorded) and pd.isna(fresh))
    if isinstance(fresh, bool) or isinstance(recorded, bool):
        return bool(recorded) == bool(fresh)
    a, b = float(recorded), float(fresh)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return round(a, 6) == round(b, 6) or math.isclose(a, b, rel_tol=relative_tolerance, abs_tol=0.0)


def validate_runs(runs: Sequence[RunResults], rules: Protocol | None = None, reference: bool = False,
                  rerun_references: bool = True) -> None:
    """Everything an entry's runs must satisfy: the protocol (:func:`validate_protocol_runs`), then provenance
    (each run's, and what the runs of one entry must share). ``rules`` defaults to the newest released protocol;
    ``rerun_references=False`` skips evaluating a sample of a reference's seeds again (the one slow check)."""
    rules = rules or current_protocol()
    validate_protocol_runs(runs, rules, reference)
    for run in runs:
        check_run_provenance(run, reference, rules)
    check_entry_provenance(runs, reference, rules.name, rerun_references)
