"""The evaluator: protocol episodes -> workers -> durable per-episode results -> tables, plot, videos.

``evaluate`` (Python) and ``handbench eval`` (CLI) both end up in :func:`run_evaluation`.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from handbench.errors import HandbenchError, distinct_names
from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome
from handbench.evaluation.policies import PolicySource, resolve_policy
from handbench.evaluation.results import EpisodeStore, episode_key, episodes_frame, summarize, write_csv
from handbench.evaluation.videos import video_seeds
from handbench.locking import output_lock
from handbench.machine import machine_info
from handbench.parallel import cluster_address, probe_address
from handbench.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol


@dataclass
class EvalConfig:
    """Everything that defines an evaluation run (the CLI flags, one to one)."""

    policy: Any = "expert"  # act|diffusion|ibc|bc|expert|module:Class, a Policy, or a callable (env, seed) -> Policy
    checkpoint: str | None = None
    task: str | Sequence[str] | None = None  # a task, several, or "all"; None: the checkpoint's task, else all
    hand: str | None = None  # None: the checkpoint's hand, else hb16
    obs_mode: str | None = None  # None: the checkpoint's obs mode, else state
    workers: int | None = None  # None: one per CPU (at most one per episode); 0: in this process
    ray_address: str | None = None
    videos: int = 0  # film the first N protocol seeds of each task
    out: str | Path | None = None  # None: keep results in memory only (no resume, no videos)
    episodes: int | None = None  # debug subset: the first N protocol seeds of each task
    seeds: tuple[int, ...] | None = None  # a subset of the protocol's eval seeds (leaderboard validation's re-runs)
    protocol: str = DEFAULT_PROTOCOL
    torch_threads: int = 1
    device: str = "cpu"  # where checkpoint policies run: cpu, cuda, cuda:<index> (physics is always on the CPU)
    lanes: int | None = None  # batch width of policy queries; None: the protocol's (results depend on it)
    policy_noise: str | None = None  # "fixed" or "episode"; None: the protocol's
    progress: bool = True
    command: str = ""  # how the run was started (meta.json); filled by the CLI


@dataclass
class EvalResult:
    episodes: pd.DataFrame
    summary: pd.DataFrame
    out: Path | None
    meta: dict[str, Any] = field(default_factory=dict)


def fill_defaults(config: EvalConfig, source: PolicySource) -> EvalConfig:
    """Unset task, hand and obs mode come from the checkpoint's provenance, else all tasks, hb16, state."""
    provenance = source.provenance() if source.checkpoint else {}

    def given(value: Any, default: Any) -> Any:  # an empty value given is refused later, never read as "unset"
        return default if value is None else value

    return replace(config, task=given(config.task, provenance.get("task") or "all"),
                   hand=given(config.hand, provenance.get("hand") or "hb16"),
                   obs_mode=given(config.obs_mode, provenance.get("obs_mode") or "state"))


def resolve_tasks(task: str | Sequence[str], protocol: Protocol) -> list[str]:
    """Task names to evaluate; each must be in the protocol, with the version it pins registered."""
    from handbench.registry import get_task_class

    names = list(protocol.tasks) if task == "all" else distinct_names(task, "--task")  # "all": the protocol's tasks
    for name in names:
        get_task_class(name)
        get_task_class(name, protocol.task(name).task_version)
    return names


def default_out_dir(source: PolicySource, tasks: list[str], hand: str, obs_mode: str) -> Path:
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.label)
    scope = tasks[0] if len(tasks) == 1 else "all"
    suffix = f"-{source.checkpoint_hash[:8]}" if source.checkpoint_hash else ""
    return Path("results") / f"eval-{label}{suffix}-{scope}-{hand}-{obs_mode}"


def library_versions() -> dict[str, str]:
    """Installed versions of what shapes results; read from package metadata, so an in-process run needs no Ray."""
    from importlib.metadata import PackageNotFoundError, version

    from handbench.version import __version__

    versions = {"handbench": __version__, "python": platform.python_version()}
    for package in ("mujoco", "numpy", "gymnasium", "ray", "pandas", "torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def plan_jobs(tasks: list[str], config: EvalConfig, protocol: Protocol,
              finished: dict[str, dict[str, Any]], store: EpisodeStore | None) -> tuple[list[EpisodeJob], list[str]]:
    """All episode keys of this run, and the jobs still to do (unfinished, or a video seed without its video)."""
    keys, jobs = [], []
    for task in tasks:
        entry = protocol.task(task)
        seeds = list(entry.eval_seeds)[: config.episodes] if config.episodes else list(entry.eval_seeds)
        if config.seeds is not None:
            unknown = sorted(set(config.seeds) - set(seeds))
            if unknown:
                raise HandbenchError(f"seed(s) {', '.join(map(str, unknown[:5]))} are not eval seeds of {task} in "
                                     f"protocol {protocol.name}")
            seeds = [seed for seed in seeds if seed in set(config.seeds)]
        filmed = video_seeds(entry.eval_seeds, config.videos) if store is not None else set()
        for seed in seeds:
            key = episode_key(task, config.hand, seed)
            keys.append(key)
            wants_video = seed in filmed and not store.has_video(task, config.hand, seed)
            if key not in finished or wants_video:
                jobs.append(EpisodeJob(task, config.hand, seed, entry.episode_steps, entry.stop_on_success,
                                       record_video=seed in filmed, task_version=entry.task_version,
                                       hand_version=protocol.hand_version(config.hand)))
    return keys, jobs


class Progress:
    """Episodes done, success so far and time left (tqdm; silent when disabled)."""

    def __init__(self, total: int, done_rows: list[dict[str, Any]], enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.successes = sum(bool(r["success"]) for r in done_rows)
        self.done = len(done_rows)
        self.bar = tqdm(total=total, initial=self.done, unit="ep", desc="eval", disable=not enabled,
                        dynamic_ncols=True)
        self._postfix()

    def _postfix(self) -> None:
        rate = self.successes / self.done if self.done else 0.0
        self.bar.set_postfix_str(f"success {self.successes}/{self.done} ({rate:.0%})")

    def update(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.successes += bool(row["success"])
        self._postfix()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def prepare(config: EvalConfig) -> tuple[EvalConfig, Protocol, PolicySource, list[str]]:
    """Check everything before any episode runs: one clear line on bad input."""
    if config.workers is not None and config.workers < 0:
        raise HandbenchError(f"--workers must be >= 0, got {config.workers}")
    if config.episodes is not None and config.episodes <= 0:
        raise HandbenchError(f"--episodes must be positive, got {config.episodes}")
    if config.videos < 0:
        raise HandbenchError(f"--videos must be >= 0, got {config.videos}")
    if config.out is None and config.videos:
        raise HandbenchError("--videos needs an output directory (--out)")
    address = cluster_address(config.ray_address)
    if config.workers != 0 and address:
        probe_address(address)  # a dead cluster fails in seconds, before any episode or output
    if config.lanes is not None and config.lanes < 1:
        raise HandbenchError(f"--lanes must be >= 1, got {config.lanes}")
    from handbench.rollout import POLICY_NOISES

    if config.policy_noise is not None and config.policy_noise not in POLICY_NOISES:
        raise HandbenchError(f"unknown policy noise {config.policy_noise!r}; valid: {', '.join(POLICY_NOISES)}")
    from handbench.registry import compiled_model

    protocol = load_protocol(config.protocol)
    source = resolve_policy(config.policy, config.checkpoint, config.device)
    # meta.json records the device a checkpoint actually ran on (``auto`` resolved).
    config = fill_defaults(replace(config, device=getattr(source, "device", config.device)), source)
    config = replace(config, lanes=config.lanes or protocol_lanes(protocol),
                     policy_noise=config.policy_noise or protocol_policy_noise(protocol))
    tasks = resolve_tasks(config.task, protocol)
    for task in tasks:
        entry = protocol.task(task)
        entry.check(config.hand, config.obs_mode, protocol.name)
        model_hash = compiled_model(task, config.hand, entry.task_version, protocol.hand_version(config.hand))[1]
        source.validate(task, entry.task_version, config.hand, config.obs_mode, model_hash)
    return config, protocol, source, tasks


def protocol_lanes(protocol: Protocol) -> int:
    """The protocol's lane width (hb-v1: 1, one episode per query)."""
    return protocol.lanes


def protocol_policy_noise(protocol: Protocol) -> str:
    """The protocol's policy-noise rule (hb-v1: "fixed", re-seeded with 0 at every episode start)."""
    return protocol.policy_noise


def resume_key(source: PolicySource, lanes: int = 1, policy_noise: str = "fixed") -> dict[str, Any]:
    """What a finished episode must have been run with to be reused: the policy's weights or code, the
    library versions and, when they are not hb-v1's (1, "fixed"), the lane width and policy-noise rule (the
    task version, compiled model and expert version are checked per row)."""
    key: dict[str, Any] = {"policy": source.fingerprint(), "versions": library_versions()}
    if (lanes, policy_noise) != (1, "fixed"):
        key["rollout"] = {"lanes": lanes, "policy_noise": policy_noise}
    return key


def reusable_rows(store: EpisodeStore | None, tasks: list[str], hand: str, protocol: Protocol,
                  source: PolicySource | None = None, lanes: int = 1,
                  policy_noise: str = "fixed") -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Finished rows that still hold, and how many others are stale and rerun: rows from another task version
    (than the protocol pins), compiled model, expert version, policy code or weights, or library version."""
    from handbench.registry import compiled_model, make_env

    if store is None:
        return {}, set()
    versions = {t: protocol.task(t).task_version for t in tasks}
    hand_version = protocol.hand_version(hand)
    current = {t: (versions[t], compiled_model(t, hand, versions[t], hand_version)[1]) for t in tasks}
    key = resume_key(source, lanes, policy_noise) if source is not None else None
    experts: dict[str, str] = {}

    def expert_version(task: str) -> str:  # built only when a row of the task is there to check
        if task not in experts:
            env = make_env(task, hand, versions[task], hand_version)
            experts[task] = str(source.expert_version(env)) if source is not None else ""
            env.close()
        return experts[task]

    fresh, stale = {}, set()
    for name, row in store.finished().items():
        task = row["task"]
        if task not in current:
            continue  # another task's episode: not part of this run, kept on disk
        holds = (current[task] == (row.get("task_version"), row.get("model_hash"))
                 and (key is None or (row.get("resume_key") == key
                                      and str(row.get("expert_version", "")) == expert_version(task))))
        if holds:
            fresh[name] = row
        else:
            stale.add(name)
    return fresh, stale


def run_evaluation(config: EvalConfig) -> EvalResult:
    """Validate, run the episodes not finished yet (resume), then write the tables, plot and meta."""
    config, protocol, source, tasks = prepare(config)
    if config.out is None:
        return _run_evaluation(config, protocol, source, tasks, None)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise HandbenchError(f"--out {out} is a file; give a folder for the results")
    with output_lock(out):  # held for the whole run: a second evaluation into the same --out is refused
        return _run_evaluation(config, protocol, source, tasks, out)


def _run_evaluation(config: EvalConfig, protocol: Protocol, source: PolicySource, tasks: list[str],
                    out: Path | None) -> EvalResult:
    store = EpisodeStore(out) if out is not None else None
    policy_columns = {"policy": source.label, "checkpoint": source.checkpoint,
                      "checkpoint_hash": source.checkpoint_hash, "protocol": protocol.name}
    if store is not None:
        signature = {k: v for k, v in policy_columns.items() if k != "checkpoint"}  # a moved file is the same file
        store.claim({**signature, "hand": config.hand, "obs_mode": config.obs_mode})
    finished, stale = reusable_rows(store, tasks, config.hand, protocol, source, config.lanes, config.policy_noise)
    keys, jobs = plan_jobs(tasks, config, protocol, finished, store)
    rows = {key: finished[key] for key in keys if key in finished}
    reused, rerun = len(rows), sum(1 for key in keys if key in stale)
    row_key = resume_key(source, config.lanes, config.policy_noise)

    progress = Progress(len(keys), list(rows.values()), config.progress)

    def on_outcome(outcome: EpisodeOutcome) -> None:
        row = {**outcome.row, **policy_columns, "resume_key": row_key}  # resume_key stays in the episode file
        key = episode_key(row["task"], row["hand"], int(row["seed"]))
        if store is not None:
            if outcome.video is not None:
                store.add_video(row["task"], row["hand"], int(row["seed"]), bool(row["success"]), outcome.video)
            if key not in finished:
                store.add(row)  # overwrites a stale row of the same episode
        if key not in rows:
            progress.update(row)
        rows.setdefault(key, row)

    from handbench.evaluation.workers import run_jobs

    started = time.time()
    try:
        workers = run_jobs(jobs, source, config.obs_mode, config.workers, on_outcome, config.ray_address,
                           config.torch_threads, config.lanes, config.policy_noise)
    finally:
        progress.close()
    episodes = episodes_frame([rows[k] for k in keys])
    summary = summarize(episodes, {t: len(protocol.task(t).eval_seeds) for t in tasks})
    meta = {
        "command": config.command or f"handbench.evaluate({_config_repr(config)})",
        "config": _config_dict(config) | {"policy": source.label},
        "workers": workers,
        "rollout": {"lanes": config.lanes, "policy_noise": config.policy_noise,
                    "protocol_lanes": protocol_lanes(protocol),
                    "protocol_policy_noise": protocol_policy_noise(protocol)},
        "protocol": {"name": protocol.name, "description": protocol.description,
                     "hand_version": protocol.hand_version(config.hand),
                     "tasks": {t: {k: v for k, v in asdict(protocol.task(t)).items() if k != "task"} for t in tasks}},
        "policy": {"label": source.label, "checkpoint": source.checkpoint,
                   "checkpoint_hash": source.checkpoint_hash, "provenance": _jsonable(source.provenance())},
        "versions": library_versions(),
        "episodes_run_now": len(jobs), "episodes_reused": reused, "episodes_stale_rerun": rerun,
        "episodes_total": len(keys), "run_seconds": round(time.time() - started, 2),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "machine": machine_info(),
    }
    if out is not None:
        write_outputs(out, episodes, summary, meta)
    return EvalResult(episodes=episodes, summary=summary, out=out, meta=meta)


def write_outputs(out: Path, episodes: pd.DataFrame, summary: pd.DataFrame, meta: dict[str, Any]) -> None:
    from handbench.atomic import atomic_write_text
    from handbench.evaluation.plots import plot_success

    write_csv(episodes, out / "episodes.csv")
    write_csv(summary, out / "summary.csv")
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1, default=str) + "\n")
    if not summary.empty:
        title = f"{meta['policy']['label']} on {meta['protocol']['name']}"
        plot_success(summary, out / "success.png", title=title)


def _config_dict(config: EvalConfig) -> dict[str, Any]:
    """The config as plain values (the policy may be an arbitrary object: never deep-copied)."""
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    if not isinstance(config.policy, str):
        values["policy"] = getattr(config.policy, "__qualname__", type(config.policy).__qualname__)
    values["out"] = None if config.out is None else str(config.out)
    values["task"] = config.task if isinstance(config.task, str) else list(config.task)
    return values


def _config_repr(config: EvalConfig) -> str:
    values = {k: v for k, v in _config_dict(config).items() if k not in ("command", "progress")}
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
