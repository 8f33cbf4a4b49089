"""Leaderboard entries on disk: ``<leaderboard>/submissions/<entry-id>/``.

An entry is the source of truth for every generated number: its ``meta.json`` (method, authors, links, the
exact commands that produced each result) and, per training seed, a byte-exact copy of the evaluator's results
directory (``run-<i>/episodes.csv``, ``summary.csv``, ``meta.json``). Copying the files verbatim means the
stored entry can be validated again later, by anyone, with the same checks ``submit`` ran.

A *reference* entry (``"reference": true`` in meta.json) holds the scripted expert's results instead: one run
per (task, hand), no checkpoint, no training seeds. It is shown next to the methods but never ranked.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handbench.atomic import ensure_writable_dir
from handbench.errors import HandbenchError, unknown_choice
from handbench.leaderboard.validate import (
    META_FILE,
    RESULT_FILES,
    RunResults,
    current_protocol,
    load_results_dir,
    meta_commands,
    runs_by_task,
    validate_runs,
)
from handbench.protocol import Protocol

SUBMISSIONS_DIR = "submissions"
ENTRY_META_FILE = "meta.json"
RUN_DIR_PREFIX = "run-"
ENTRY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class EntryInfo:
    """What the submitter tells about the method (everything else comes from the results)."""

    method: str
    authors: str = ""
    paper_url: str = ""
    code_url: str = ""
    checkpoint_url: str = ""
    notes: str = ""

    def check(self) -> None:
        if not self.method.strip():
            raise HandbenchError("--method must not be empty")
        for name in ("paper_url", "code_url", "checkpoint_url"):
            url = getattr(self, name)
            if url and not re.match(r"^https?://\S+$", url):
                raise HandbenchError(f"--{name.replace('_', '-')} {url!r} is not an http(s) URL")


@dataclass(frozen=True)
class Entry:
    """A stored entry: its id, its metadata and its runs (one per training seed, in submission order; for a
    reference entry, one per task and hand)."""

    entry_id: str
    info: EntryInfo
    runs: list[RunResults]
    meta: dict[str, Any] = field(default_factory=dict)
    reference: bool = False

    @property
    def task_keys(self) -> list[tuple[str, str]]:
        return list(self.runs_by_task)

    @functools.cached_property
    def runs_by_task(self) -> dict[tuple[str, str], list[RunResults]]:
        return runs_by_task(self.runs)

    @property
    def training_seeds(self) -> int:
        """Independently trained checkpoints per task; 0 for a reference entry (nothing was trained)."""
        return 0 if self.reference else len(next(iter(self.runs_by_task.values())))


def slugify(method: str) -> str:
    """Default entry id from the method name: lowercase, runs of other characters become '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-")[:64].strip("-")
    return slug or "entry"


def check_entry_id(entry_id: str) -> str:
    if not ENTRY_ID_PATTERN.match(entry_id):
        raise HandbenchError(f"entry id {entry_id!r} is not valid; use 1-64 characters of a-z, 0-9, '.', '_', '-' "
                             f"starting with a letter or digit")
    return entry_id


def submissions_dir(leaderboard_dir: str | Path) -> Path:
    return Path(leaderboard_dir) / SUBMISSIONS_DIR


def entry_meta(entry_id: str, info: EntryInfo, runs: Sequence[RunResults], rules: Protocol,
               submitted: str, reference: bool = False) -> dict[str, Any]:
    """The entry's meta.json: submitter's fields, protocol, and per run the checkpoint and exact commands."""
    import handbench

    return {
        "entry_id": entry_id,
        **asdict(info),
        "protocol": rules.name,
        "policy": runs[0].policy,
        "reference": reference,
        "obs_mode": runs[0].obs_mode,
        "tasks": [f"{task}/{hand}" for task, hand in runs_by_task(runs)],
        "submitted": submitted,
        "submitted_with": f"handbench {handbench.__version__}",
        "runs": [
            {
                "dir": f"{RUN_DIR_PREFIX}{index}",
                "checkpoint_hash": run.checkpoint_hash,
                "tasks": [f"{task}/{hand}" for task, hand in run.task_keys()],
                "training_seed": run.training_seed,
                "dataset_hash": run.training_provenance.get("dataset_hash"),
                "handbench_version": str(run.episodes["handbench_version"].iloc[0]),
                "mujoco_version": str(run.episodes["mujoco_version"].iloc[0]),
                "commands": meta_commands(run.meta),
            }
            for index, run in enumerate(runs)
        ],
    }


def write_entry(leaderboard_dir: str | Path, entry_id: str, info: EntryInfo, runs: Sequence[RunResults],
                rules: Protocol, replace: bool = False, submitted: str | None = None,
                reference: bool = False) -> Path:
    """Store a validated entry; the directory appears complete or not at all (built aside, then renamed)."""
    root = ensure_writable_dir(submissions_dir(leaderboard_dir))
    target = root / check_entry_id(entry_id)
    if target.exists() and not replace:
        raise HandbenchError(f"entry {entry_id!r} already exists at {target}; pass --replace to overwrite it "
                             f"or --entry-id to choose another id")
    submitted = submitted or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    staging = Path(tempfile.mkdtemp(prefix=f".{entry_id}.", dir=root))
    staging.chmod(0o755)  # mkdtemp makes it private; an entry is meant to be shared
    try:
        for index, run in enumerate(runs):
            run_dir = staging / f"{RUN_DIR_PREFIX}{index}"
            run_dir.mkdir()
            for name in RESULT_FILES:
                shutil.copyfile(run.source / name, run_dir / name)
        meta = entry_meta(entry_id, info, runs, rules, submitted, reference)
        (staging / ENTRY_META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{entry_id}.old.", dir=root))
            target.rename(retired / entry_id)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def entry_ids(leaderboard_dir: str | Path) -> list[str]:
    root = submissions_dir(leaderboard_dir)
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def load_entry(leaderboard_dir: str | Path, entry_id: str, rules: Protocol | None = None) -> Entry:
    """Read and fully re-validate one stored entry."""
    rules = rules or current_protocol()
    directory = submissions_dir(leaderboard_dir) / entry_id
    if not directory.is_dir():
        raise unknown_choice("entry", entry_id, entry_ids(leaderboard_dir))
    meta_path = directory / ENTRY_META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise HandbenchError(f"entry {entry_id}: missing {meta_path}") from exc
    except json.JSONDecodeError as exc:
        raise HandbenchError(f"{meta_path}: not valid JSON ({exc})") from exc
    if meta.get("entry_id") != entry_id:
        raise HandbenchError(f"{meta_path}: entry_id {meta.get('entry_id')!r} does not match its folder {entry_id!r}")
    info = EntryInfo(**{name: str(meta.get(name, "")) for name in EntryInfo.__dataclass_fields__})
    info.check()
    listed = [str(run.get("dir", "")) for run in meta.get("runs", [])]
    present = sorted((path.name for path in directory.iterdir() if path.is_dir()),
                     key=lambda name: (len(name), name))
    if listed != present:
        raise HandbenchError(f"{meta_path}: lists runs {listed} but the folder holds {present}")
    reference = meta.get("reference", False)
    if not isinstance(reference, bool):
        raise HandbenchError(f"{meta_path}: reference must be true or false, not {reference!r}")
    runs = [load_results_dir(directory / name) for name in listed]
    validate_runs(runs, rules, reference)
    for record, run in zip(meta["runs"], runs, strict=True):
        if record.get("checkpoint_hash") != run.checkpoint_hash:
            raise HandbenchError(f"{meta_path}: run {record['dir']} records checkpoint "
                                 f"{record.get('checkpoint_hash')!r} but its episodes say {run.checkpoint_hash!r}")
        if record.get("commands") != meta_commands(run.meta):
            raise HandbenchError(f"{meta_path}: run {record['dir']} commands differ from its {META_FILE}")
    if meta.get("protocol") != rules.name:
        raise HandbenchError(f"{meta_path}: protocol {meta.get('protocol')!r} is not {rules.name!r}")
    return Entry(entry_id=entry_id, info=info, runs=runs, meta=meta, reference=reference)


def load_entries(leaderboard_dir: str | Path, rules: Protocol | None = None, without: str | None = None) -> list[Entry]:
    rules = rules or current_protocol()
    return [load_entry(leaderboard_dir, entry_id, rules) for entry_id in entry_ids(leaderboard_dir)
            if entry_id != without]
