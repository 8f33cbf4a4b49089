"""Validation of evaluator results directories (``episodes.csv``, ``summary.csv``, ``meta.json``).

A leaderboard number is only as good as the episodes behind it, so ``submit`` refuses anything that does not
match the protocol exactly. Every refusal is a :class:`HandbenchError` naming the directory and the problem.
The same checks run again in CI over every stored submission.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from handbench.errors import HandbenchError
from handbench.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol
from handbench.rollout import PHYSICS_ERROR_MARK
from handbench.stats import wilson_interval

EPISODES_FILE = "episodes.csv"
SUMMARY_FILE = "summary.csv"
META_FILE = "meta.json"
RESULT_FILES = (EPISODES_FILE, SUMMARY_FILE, META_FILE)

# Provenance every episode row must carry (non-empty) for a number to be traceable to code, task and checkpoint.
PROVENANCE_COLUMNS = ("policy", "checkpoint_hash", "obs_mode", "handbench_version", "mujoco_version", "task_version",
                      "protocol", "model_hash")
EPISODE_COLUMNS = ("task", "hand", "seed", "success", "success_at_end", "steps", "return", "time_to_success",
                   "wall_time", "error", *PROVENANCE_COLUMNS)
# Provenance that must be the same on every row of one run (one checkpoint, one code version, one protocol).
RUN_CONSTANT_COLUMNS = ("policy", "checkpoint_hash", "obs_mode", "handbench_version", "mujoco_version", "protocol")
SUMMARY_TOLERANCE = 1e-6
# The policies a reference entry may hold (no checkpoint, nothing trained): the task's scripted expert (the
# upper reference) and the floors (random actions, holding the initial pose).
REFERENCE_POLICY = "expert"
REFERENCE_POLICIES = (REFERENCE_POLICY, "random", "hold")


def current_protocol() -> Protocol:
    """The protocol commands use by default (``handbench.protocol.DEFAULT_PROTOCOL``)."""
    return load_protocol(DEFAULT_PROTOCOL)


@dataclass(frozen=True)
class RunResults:
    """One results directory: the evaluation of one checkpoint (one training seed)."""

    source: Path
    episodes: pd.DataFrame
    summary: pd.DataFrame
    meta: dict[str, Any]

    @property
    def checkpoint_hash(self) -> str:
        return str(self.episodes["checkpoint_hash"].iloc[0])

    @property
    def policy(self) -> str:
        return str(self.episodes["policy"].iloc[0])

    @property
    def obs_mode(self) -> str:
        return str(self.episodes["obs_mode"].iloc[0])

    @property
    def training_provenance(self) -> dict[str, Any]:
        """What the checkpoint says about its training (``meta.json`` policy.provenance), if anything."""
        policy = self.meta.get("policy")
        provenance = policy.get("provenance") if isinstance(policy, dict) else None
        return provenance if isinstance(provenance, dict) else {}

    @property
    def training_seed(self) -> int | None:
        seed = self.training_provenance.get("seed")
        return int(seed) if isinstance(seed, int | float | str) and str(seed).lstrip("-").isdigit() else None

    def task_keys(self) -> list[tuple[str, str]]:
        """The (task, hand) pairs evaluated, sorted."""
        return list(self._task_keys)

    @functools.cached_property
    def _task_keys(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(set(zip(self.episodes["task"], self.episodes["hand"], strict=True))))


# ----------------------------------------------------------------------------------------------------- loading
def load_results_dir(path: str | Path) -> RunResults:
    """Read a results directory; a clear error for a missing file, unreadable CSV/JSON or missing column."""
    source = Path(path)
    if not source.is_dir():
        state = "is a file" if source.exists() else "does not exist"
        raise HandbenchError(f"results directory {source} {state}; give a folder written by `handbench eval --out`")
    for name in RESULT_FILES:
        if not (source / name).is_file():
            raise HandbenchError(f"{source}: missing {name} (expected {', '.join(RESULT_FILES)} from handbench eval)")
    episodes = _read_csv(source / EPISODES_FILE)
    summary = _read_csv(source / SUMMARY_FILE)
    try:
        meta = json.loads((source / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HandbenchError(f"{source / META_FILE}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise HandbenchError(f"{source / META_FILE}: expected a JSON object")
    missing = [column for column in EPISODE_COLUMNS if column not in episodes.columns]
    if missing:
        raise HandbenchError(f"{source / EPISODES_FILE}: missing column(s) {', '.join(missing)}")
    if episodes.empty:
        raise HandbenchError(f"{source / EPISODES_FILE}: no episodes")
    return RunResults(source=source, episodes=_normalise_episodes(episodes, source / EPISODES_FILE),
                      summary=summary, meta=meta)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # keep_default_na=False + explicit na_values: an empty cell is missing, but strings such as "None" stay text.
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HandbenchError(f"{path}: unreadable CSV ({exc})") from exc


def _normalise_episodes(episodes: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Typed copy: bool success flags, int seeds/steps, float return/time, text provenance."""
    frame = episodes.copy()
    for column in ("success", "success_at_end"):
        frame[column] = [_parse_bool(value, column, path) for value in frame[column]]
    for column in ("seed", "steps"):
        frame[column] = [_parse_int(value, column, path) for value in frame[column]]
    for column in ("return", "time_to_success", "wall_time"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("task", "hand", "error", *PROVENANCE_COLUMNS):
        frame[column] = [_text(value) for value in frame[column]]
    return frame


def _parse_bool(value: object, column: str, path: Path) -> bool:
    text = _text(value).lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise HandbenchError(f"{path}: column {column} has {value!r}; valid: True/False or 1/0")


def _parse_int(value: object, column: str, path: Path) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise HandbenchError(f"{path}: column {column} has {value!r}; expected an integer")
    return int(number)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _version_number(value: str) -> int | None:
    text = value.lower().removeprefix("v")
    try:
        return int(float(text))
    except ValueError:
        return None


def meta_protocol(meta: dict[str, Any]) -> str:
    """The protocol name a results ``meta.json`` records (a string, or an object with a ``name``)."""
    value = meta.get("protocol", "")
    if isinstance(value, dict):
        value = value.get("name", "")
    return str(value)


def meta_commands(meta: dict[str, Any]) -> dict[str, str]:
    """The exact commands behind a result: ``eval`` (meta.json ``command``) and, where the checkpoint recorded
    it, ``train`` (``policy.provenance.command``)."""
    commands = {}
    if meta.get("command"):
        commands["eval"] = str(meta["command"])
    policy = meta.get("policy")
    provenance = policy.get("provenance") if isinstance(policy, dict) else None
    if isinstance(provenance, dict) and provenance.get("command"):
        commands["train"] = str(provenance["command"])
    return commands


# -------------------------------------------------------------------------------------------------- one run
def validate_run(run: RunResults, rules: Protocol, reference: bool = False) -> None:
    """Every check that concerns a single results directory; raises on the first problem. A reference run
    (the scripted expert) has no checkpoint, so only its checkpoint hash may be empty."""
    _check_errors(run)
    _check_protocol(run, rules)
    _check_rollout(run, rules, reference)
    _check_provenance(run, reference)
    _check_tasks(run, rules)
    _check_seeds(run, rules)
    _check_success_vs_steps(run, rules)
    _check_summary(run)


def _where(run: RunResults, row: pd.Series) -> str:
    return f"{run.source}: {row['task']}/{row['hand']} seed {row['seed']}"


def _is_physics_failure(error: str) -> bool:
    """A physics failure ends the episode early as a failure of the policy (DESIGN: never a fault of the run)."""
    return PHYSICS_ERROR_MARK in error


def _check_errors(run: RunResults) -> None:
    errors = run.episodes["error"]
    failed = run.episodes[(errors != "") & ~errors.map(_is_physics_failure)]
    if not failed.empty:
        row = failed.iloc[0]
        raise HandbenchError(f"{_where(run, row)} ended with an error ({row['error']}); "
                             f"{len(failed)} episode(s) errored; fix and re-evaluate")


def _check_protocol(run: RunResults, rules: Protocol) -> None:
    recorded = meta_protocol(run.meta)
    if recorded != rules.name:
        raise HandbenchError(f"{run.source / META_FILE}: protocol {recorded or '(none)'!r} does not match "
                             f"the leaderboard's protocol {rules.name!r}")
    wrong = run.episodes[run.episodes["protocol"] != rules.name]
    if not wrong.empty:
        row = wrong.iloc[0]
        raise HandbenchError(f"{_where(run, row)}: protocol {row['protocol'] or '(empty)'!r} does not match "
                             f"the leaderboard's protocol {rules.name!r}")


def _check_rollout(run: RunResults, rules: Protocol, reference: bool = False) -> None:
    """A learned policy's batched query differs in the last bits between lane widths, so its episodes count only
    at the protocol's width and policy noise. A reference policy (expert, floors) acts lane by lane: any width."""
    if reference:
        return
    if "lanes" not in run.episodes.columns:  # written before handbench batched queries: one episode per query
        widths = pd.Series(1, index=run.episodes.index)
    else:
        widths = pd.to_numeric(run.episodes["lanes"], errors="coerce")
    wrong = run.episodes[widths != rules.lanes]
    if not wrong.empty:
        row, width = wrong.iloc[0], widths[wrong.index[0]]
        raise HandbenchError(f"{_where(run, row)} was evaluated at {width} lanes; protocol {rules.name} "
                             f"batches queries over {rules.lanes}: re-evaluate with `handbench eval --protocol "
                             f"{rules.name}`")
    rollout = run.meta.get("rollout")
    noise = rollout.get("policy_noise") if isinstance(rollout, dict) else None
    if noise is not None and noise != rules.policy_noise:
        raise HandbenchError(f"{run.source / META_FILE}: evaluated with policy noise {noise!r}; protocol "
                             f"{rules.name} fixes {rules.policy_noise!r}: re-evaluate with `handbench eval "
                             f"--protocol {rules.name}`")


def _check_provenance(run: RunResults, reference: bool = False) -> None:
    required = [column for column in PROVENANCE_COLUMNS if not (reference and column == "checkpoint_hash")]
    empty = run.episodes[required] == ""
    for column in required:
        if empty[column].any():
            rows = empty.index[empty[column]]
            raise HandbenchError(f"{_where(run, run.episodes.loc[rows[0]])}: provenance column {column} is empty "
                                 f"in {len(rows)} row(s)")
    for column in RUN_CONSTANT_COLUMNS:
        values = sorted(set(run.episodes[column]))
        if len(values) > 1:
            raise HandbenchError(f"{run.source / EPISODES_FILE}: column {column} must be the same on every row "
                                 f"of one run, found {', '.join(values[:4])}")
    for (task, hand), group in run.episodes.groupby(["task", "hand"], sort=True):
        hashes = sorted(set(group["model_hash"]))
        if len(hashes) > 1:
            raise HandbenchError(f"{run.source}: {task}/{hand} was evaluated on {len(hashes)} different models "
                                 f"(model_hash {', '.join(hashes[:4])})")
    if "eval" not in meta_commands(run.meta):
        raise HandbenchError(f"{run.source / META_FILE}: no 'command' recorded; the leaderboard must record "
                             f"the exact command that produced each result")


def _check_tasks(run: RunResults, rules: Protocol) -> None:
    """Each (task, hand) must be in the protocol, at the task version the protocol fixes."""
    for (task, hand), group in run.episodes.groupby(["task", "hand"], sort=True):
        try:
            fixed = rules.task(task)
        except HandbenchError as exc:
            raise HandbenchError(f"{run.source}: {exc}") from exc
        if hand not in fixed.hands:
            raise HandbenchError(f"{run.source}: hand {hand!r} is not part of protocol {rules.name} for {task}; "
                                 f"valid: {', '.join(fixed.hands)}")
        for obs_mode in sorted(set(group["obs_mode"])):
            if obs_mode not in fixed.obs_modes:
                raise HandbenchError(f"{run.source}: observation mode {obs_mode!r} is not part of protocol "
                                     f"{rules.name} for {task}; valid: {', '.join(fixed.obs_modes)}")
        for version in sorted(set(group["task_version"])):
            if _version_number(version) != fixed.task_version:
                raise HandbenchError(f"{run.source}: {task}/{hand} was evaluated at task version {version!r}, "
                                     f"protocol {rules.name} fixes v{fixed.task_version}")


def _check_seeds(run: RunResults, rules: Protocol) -> None:
    for (task, hand), group in run.episodes.groupby(["task", "hand"], sort=True):
        expected = list(rules.task(task).eval_seeds)
        counts = Counter(int(seed) for seed in group["seed"])
        extra = sorted(seed for seed in counts if seed not in set(expected))
        if extra:
            raise HandbenchError(f"{run.source}: {task}/{hand} has seed(s) outside the protocol "
                                 f"{_few(extra)}; protocol {rules.name} uses {_span(expected)}")
        repeated = sorted(seed for seed, count in counts.items() if count > 1)
        if repeated:
            raise HandbenchError(f"{run.source}: {task}/{hand} has seed(s) evaluated more than once "
                                 f"{_few(repeated)}; each protocol seed must appear exactly once")
        missing = sorted(set(expected) - set(counts))
        if missing:
            raise HandbenchError(f"{run.source}: {task}/{hand} is missing {len(missing)} of {len(expected)} "
                                 f"protocol seeds {_few(missing)}")


def _few(values: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return f"({shown}{', ...' if len(values) > limit else ''})"


def _span(seeds: Sequence[int]) -> str:
    ordered = sorted(seeds)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"seeds {ordered[0]}..{ordered[-1]}"
    return f"{len(ordered)} seeds {_few(ordered)}"


def _check_success_vs_steps(run: RunResults, rules: Protocol) -> None:
    """Success and steps must tell the same story: time_to_success is the 1-based step of the first success,
    within the episode; a failure records none; no episode runs past the protocol's length; and where the
    protocol stops on success, a success ends the episode at that step and a failure runs the full length."""
    for _, row in run.episodes.iterrows():
        fixed = rules.task(row["task"])
        limit, steps, tts = fixed.episode_steps, row["steps"], row["time_to_success"]
        where = _where(run, row)
        if not 1 <= steps <= limit:
            raise HandbenchError(f"{where}: steps={steps} outside 1..{limit} (the protocol's episode length)")
        if not math.isfinite(row["return"]):
            raise HandbenchError(f"{where}: return is {row['return']}, not a finite number")
        if row["success"]:
            if not math.isfinite(tts) or not 1 <= tts <= steps:
                raise HandbenchError(f"{where}: success=True but time_to_success={tts} is not a step of the "
                                     f"episode's {steps}")
            if fixed.stop_on_success and tts != steps:
                raise HandbenchError(f"{where}: success at step {tts:g} but the episode ran {steps} steps; "
                                     f"protocol {rules.name} ends an episode on success")
        else:
            if math.isfinite(tts):
                raise HandbenchError(f"{where}: success=False but time_to_success={tts:g} is recorded")
            if row["success_at_end"]:
                raise HandbenchError(f"{where}: success_at_end=True but success=False")
            if fixed.stop_on_success and steps != limit and not _is_physics_failure(row["error"]):
                raise HandbenchError(f"{where}: failed after {steps} steps; a failed episode runs all {limit} "
                                     f"steps of the protocol")


def _check_summary(run: RunResults) -> None:
    """summary.csv must be what the episodes say: the leaderboard never trusts a precomputed number."""
    summary = run.summary
    path = run.source / SUMMARY_FILE
    keys = [column for column in ("task", "hand") if column in summary.columns]
    if "task" not in keys:
        raise HandbenchError(f"{path}: missing column task")
    recomputed = summarise_episodes(run.episodes, keys)
    got = {tuple(str(row[key]) for key in keys): row for _, row in summary.iterrows()}
    want = {tuple(str(row[key]) for key in keys): row for _, row in recomputed.iterrows()}
    if set(got) != set(want):
        raise HandbenchError(f"{path}: rows {sorted(got)} do not match the episodes' {sorted(want)}")
    columns = [column for column in SUMMARY_COLUMNS if _summary_column(summary, column) is not None]
    for column in ("n", "success_rate"):
        if column not in columns:
            raise HandbenchError(f"{path}: missing column {column}")
    for key, row in want.items():
        for column in columns:
            recorded = pd.to_numeric(got[key][_summary_column(summary, column)], errors="coerce")
            if not math.isclose(float(recorded), float(row[column]), rel_tol=0, abs_tol=SUMMARY_TOLERANCE):
                raise HandbenchError(f"{path}: {'/'.join(key)} {column}={recorded} but the episodes give "
                                     f"{row[column]:.6g}")


SUMMARY_COLUMNS = ("n", "successes", "success_rate", "ci_low", "ci_high", "mean_return", "mean_steps", "errors")
# Names the evaluator may use for the same quantity.
SUMMARY_ALIASES = {"ci_low": ("ci_low", "wilson_low", "success_ci_low"),
                   "ci_high": ("ci_high", "wilson_high", "success_ci_high"),
                   "mean_return": ("mean_return", "return_mean")}


def _summary_column(summary: pd.DataFrame, column: str) -> str | None:
    for name in SUMMARY_ALIASES.get(column, (column,)):
        if name in summary.columns:
            return name
    return None


def summarise_episodes(episodes: pd.DataFrame, keys: Sequence[str] = ("task", "hand")) -> pd.DataFrame:
    """Per-group n, success rate, Wilson 95% interval and mean return, from episode rows."""
    rows = []
    for key, group in episodes.groupby(list(keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        successes, n = int(group["success"].sum()), len(group)
        low, high = wilson_interval(successes, n)
        rows.append({**dict(zip(keys, key, strict=True)), "n": n, "successes": successes,
                     "success_rate": successes / n, "ci_low": low, "ci_high": high,
                     "mean_return": float(group["return"].mean()), "mean_steps": float(group["steps"].mean()),
                     "errors": int((group["error"] != "").sum())})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------- all runs
def runs_by_task(runs: Sequence[RunResults]) -> dict[tuple[str, str], list[RunResults]]:
    """For each (task, hand), the runs that evaluate it, ordered by training seed (then as given).

    A results directory may cover one task (a baseline checkpoint is trained per task, so an entry over several
    tasks has one directory per task and training seed) or several (a multi-task checkpoint).
    """
    order = {id(run): index for index, run in enumerate(runs)}
    keys = sorted({key for run in runs for key in run.task_keys()})
    return {key: sorted((run for run in runs if key in run.task_keys()),
                        key=lambda run: (run.training_seed is None, run.training_seed or 0, order[id(run)]))
            for key in keys}


def validate_protocol_runs(runs: Sequence[RunResults], rules: Protocol, reference: bool = False) -> None:
    """Validate each run against the protocol, then what the runs of one entry must share (and must not);
    :func:`handbench.leaderboard.provenance.validate_runs` adds the provenance checks.

    A method entry has one run per training seed (distinct checkpoints, at least the protocol's number); a
    reference entry holds the scripted expert's results, exactly one run per (task, hand) and no checkpoint.
    """
    if not runs:
        raise HandbenchError("no results directories given")
    for run in runs:
        _check_entry_kind(run, reference)
        validate_run(run, rules, reference)
    first = runs[0]
    for run in runs:
        if run.policy != first.policy:
            raise HandbenchError(f"{run.source} evaluates policy {run.policy!r} but {first.source} evaluates "
                                 f"{first.policy!r}; one entry is one method")
        if run.obs_mode != first.obs_mode:
            raise HandbenchError(f"{run.source} uses observation mode {run.obs_mode!r} but {first.source} uses "
                                 f"{first.obs_mode!r}; one entry is one observation mode")
    if reference:
        _check_reference_coverage(runs)
        _check_reference_expert_versions(runs)
    else:
        _check_training_seeds(runs, rules)


def _check_entry_kind(run: RunResults, reference: bool) -> None:
    """Reference policies (scripted expert, random and hold floors) are never ranked methods, and a reference is
    only ever one of them."""
    if reference and run.policy not in REFERENCE_POLICIES:
        raise HandbenchError(f"{run.source} evaluates policy {run.policy!r}; --reference is only for the reference "
                             f"policies' results ({', '.join(REFERENCE_POLICIES)}); submit a method without it")
    if not reference and run.policy in REFERENCE_POLICIES:
        raise HandbenchError(f"{run.source} evaluates the reference policy {run.policy!r}, which has no checkpoint "
                             f"or training seeds; submit it as a reference entry with --reference")


def _check_reference_expert_versions(runs: Sequence[RunResults]) -> None:
    """A reference row must come from today's experts: an expert changed since makes it stale."""
    from handbench.hands import get_hand
    from handbench.registry import get_task_class

    for run in runs:
        if run.policy != REFERENCE_POLICY:
            continue
        recorded = run.episodes.get("expert_version")
        for (task, hand), group in run.episodes.groupby(["task", "hand"], sort=True):
            version = _version_number(group["task_version"].iloc[0])
            current = str(get_task_class(task, version).expert.version_for(get_hand(hand)))
            versions = sorted(set(_text(v) for v in recorded[group.index])) if recorded is not None else [""]
            if versions != [current]:
                raise HandbenchError(f"{run.source}: {task}/{hand} was evaluated with expert version "
                                     f"{', '.join(versions) or '(none)'} but the current expert is version {current}; "
                                     f"re-run `handbench eval --policy expert` and resubmit the reference")


def _check_reference_coverage(runs: Sequence[RunResults]) -> None:
    for (task, hand), covering in runs_by_task(runs).items():
        if len(covering) > 1:
            raise HandbenchError(f"{task}/{hand} is evaluated by {len(covering)} results directories "
                                 f"({', '.join(str(run.source) for run in covering)}); a reference entry "
                                 f"holds exactly one evaluation per task and hand")


def _check_training_seeds(runs: Sequence[RunResults], rules: Protocol) -> None:
    """One distinct checkpoint per training seed, the protocol's number of them for every (task, hand)."""
    seen: dict[str, Path] = {}
    for run in runs:
        if run.checkpoint_hash in seen:
            raise HandbenchError(f"{run.source} and {seen[run.checkpoint_hash]} evaluate the same checkpoint "
                                 f"({run.checkpoint_hash}); each training seed needs its own checkpoint")
        seen[run.checkpoint_hash] = run.source
    coverage = runs_by_task(runs)
    for (task, hand), covering in coverage.items():
        required = rules.task(task).training_seeds
        if len(covering) < required:
            raise HandbenchError(f"{task}/{hand} is evaluated by {len(covering)} results director"
                                 f"{'y' if len(covering) == 1 else 'ies'}; protocol {rules.name} asks for one per "
                                 f"training seed, at least {required}")
        trained: dict[int, Path] = {}
        for run in covering:
            seed = run.training_seed
            if seed is not None and seed in trained:
                raise HandbenchError(f"{run.source} and {trained[seed]} were both trained with seed {seed} for "
                                     f"{task}/{hand}; report one checkpoint per training seed")
            if seed is not None:
                trained[seed] = run.source
        hashes = {run.source: _model_hash(run, task, hand) for run in covering}
        if len(set(hashes.values())) > 1:
            listed = ", ".join(f"{source}={value}" for source, value in hashes.items())
            raise HandbenchError(f"{task}/{hand} was evaluated on different models across training seeds: {listed}")
    counts = {f"{task}/{hand}": len(covering) for (task, hand), covering in coverage.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{key}: {count}" for key, count in counts.items())
        raise HandbenchError(f"tasks have different numbers of training seeds ({listed}); report the same number "
                             f"for every task")


def _model_hash(run: RunResults, task: str, hand: str) -> str:
    rows = run.episodes[(run.episodes["task"] == task) & (run.episodes["hand"] == hand)]
    return str(rows["model_hash"].iloc[0])

