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

from handbench.atomic import atomic_write_bytes, ensure_writable_dir
from handbench.errors import HandbenchError, unknown_choice
from handbench.leaderboard.provenance import validate_runs
from handbench.leaderboard.validate import (
    EPISODES_FILE,
    META_FILE,
    RESULT_FILES,
    RunResults,
    load_results_dir,
    meta_commands,
    runs_by_task,
)
from handbench.protocol import Protocol, load_protocol

SUBMISSIONS_DIR = "submissions"
ENTRY_META_FILE = "meta.json"
RUN_DIR_PREFIX = "run-"
VERIFICATIONS_KEY = "verifications"  # meta.json: what `handbench leaderboard --verify` re-derived, newest last
ENTRY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Longest accepted text of each submitter field (characters); the tables escape what they show.
TEXT_LIMITS = {"method": 80, "authors": 200, "notes": 2000}
URL_LIMIT = 500
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


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
        """Refuse empty method names, over-long or control-character text and non-http(s) URLs. Markup in the
        text is allowed here and escaped wherever it is shown (Markdown and HTML)."""
        if not self.method.strip():
            raise HandbenchError("--method must not be empty")
        for name, limit in TEXT_LIMITS.items():
            text = getattr(self, name)
            if len(text) > limit:
                raise HandbenchError(f"--{name} is {len(text)} characters long; at most {limit}")
            if CONTROL_CHARACTERS.search(text):
                raise HandbenchError(f"--{name} contains a control character (newline, tab, ...); use one line of "
                                     f"plain text")
        for name in ("paper_url", "code_url", "checkpoint_url"):
            url = getattr(self, name)
            if url and (len(url) > URL_LIMIT or not re.match(r"^https?://[^\s<>\"'`()\[\]]+$", url)):
                raise HandbenchError(f"--{name.replace('_', '-')} {url[:80]!r} is not an http(s) URL (at most "
                                     f"{URL_LIMIT} characters, no spaces, quotes, brackets or angle brackets)")


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
    def last_verification(self) -> dict[str, Any] | None:
        """The latest ``handbench leaderboard --verify`` record (date, run, versions), if any."""
        records = self.meta.get(VERIFICATIONS_KEY)
        return records[-1] if isinstance(records, list) and records and isinstance(records[-1], dict) else None

    @property
    def rederivable_runs(self) -> list[str]:
        """The runs ``handbench leaderboard --verify`` can re-derive: every run of a reference entry (nothing is
        trained), and a method's runs whose checkpoint recorded its ``handbench train`` command (checkpoints
        trained before handbench recorded them cannot be retrained as they were)."""
        return [f"{RUN_DIR_PREFIX}{index}" for index, run in enumerate(self.runs)
                if self.reference or "train" in meta_commands(run.meta)]

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
    from handbench.version import __version__

    return {
        "entry_id": entry_id,
        **asdict(info),
        "protocol": rules.name,
        "policy": runs[0].policy,
        "reference": reference,
        "obs_mode": runs[0].obs_mode,
        "tasks": [f"{task}/{hand}" for task, hand in runs_by_task(runs)],
        "submitted": submitted,
        "submitted_with": f"handbench {__version__}",
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


def project_prefixes(project_dir: str | Path | None = None) -> tuple[str, ...]:
    """The absolute spellings of the project folder (as given and resolved), each with a trailing '/'."""
    project = Path(project_dir) if project_dir is not None else Path.cwd()
    return tuple(sorted({f"{project.absolute()}/", f"{project.resolve()}/"}, key=len, reverse=True))


def relative_to_project(text: str, prefixes: Sequence[str]) -> str:
    """``text`` with every absolute path inside the project made relative to it (as reproduce.sh writes them)."""
    for prefix in prefixes:
        text = text.replace(prefix, "")
    return text


def relativize_results_dir(results_dir: Path, prefixes: Sequence[str]) -> bool:
    """Rewrite the results files of ``results_dir`` (a finished ``handbench eval --out`` folder) with every absolute
    path under one of ``prefixes`` made relative (the rest byte for byte); each changed file is replaced atomically.
    Returns whether a file changed. Raises :class:`HandbenchError` when a file cannot be read, decoded as UTF-8 or
    written."""
    changed = False
    for name in RESULT_FILES:
        path = results_dir / name
        if not path.is_file():
            continue  # a folder missing a file is refused where it is read (load_results_dir)
        try:
            data = path.read_bytes()
            relative = relative_to_project(data.decode("utf-8"), prefixes).encode("utf-8")
            if relative != data:
                atomic_write_bytes(path, relative)
                changed = True
        except (OSError, UnicodeDecodeError) as exc:
            raise HandbenchError(f"{path}: cannot make its paths relative to the project ({exc})") from exc
    return changed


def relativized(run: RunResults, prefixes: Sequence[str]) -> RunResults:
    """The run as it will be stored: paths inside the project relative to it."""
    meta = json.loads(relative_to_project(json.dumps(run.meta), prefixes))
    episodes = run.episodes.copy()
    if "checkpoint" in episodes.columns:
        episodes["checkpoint"] = [relative_to_project(value, prefixes) if isinstance(value, str) else value
                                  for value in episodes["checkpoint"]]
    return RunResults(source=run.source, episodes=episodes, summary=run.summary, meta=meta)


def write_entry(leaderboard_dir: str | Path, entry_id: str, info: EntryInfo, runs: Sequence[RunResults],
                rules: Protocol, replace: bool = False, submitted: str | None = None,
                reference: bool = False, prefixes: Sequence[str] = (), carry_from: str | Path | None = None) -> Path:
    """Store a validated entry; the directory appears complete or not at all (built aside, then renamed). The
    results files are copied as they are, except that absolute paths under one of ``prefixes`` (the project
    folder) are made relative; the videos of the filmed seeds come along. Replacing an entry keeps what was
    established about its unchanged runs (see ``carry_over``), from ``carry_from`` (an earlier copy of the entry
    kept elsewhere) when given."""
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
            relativize_results_dir(run_dir, prefixes)
            copy_videos(run.source, run_dir)
        meta = entry_meta(entry_id, info, runs, rules, submitted, reference)
        previous = Path(carry_from) if carry_from is not None else target
        if previous.is_dir():
            records = carry_over(previous, staging)
            if records:
                meta[VERIFICATIONS_KEY] = records
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


VIDEOS_DIR = "videos"


def carry_over(old: Path, new: Path) -> list[dict[str, Any]]:
    """When an entry is replaced (a sweep resubmits it as it covers more tasks), a new run whose episodes are
    byte-identical to a stored run's is the same result: it keeps that run's videos (when it brings none) and
    its verification records, renamed to its new run folder. Returns the records kept, oldest first."""
    try:
        old_meta = json.loads((old / ENTRY_META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    same: dict[str, str] = {}  # old run folder -> new run folder
    old_runs = {path.name: (path / EPISODES_FILE).read_bytes() for path in old.iterdir()
                if path.is_dir() and (path / EPISODES_FILE).is_file()}
    for run_dir in sorted(path for path in new.iterdir() if path.is_dir()):
        episodes = (run_dir / EPISODES_FILE).read_bytes()
        match = next((name for name, stored in old_runs.items() if stored == episodes and name not in same), None)
        if match is None:
            continue
        same[match] = run_dir.name
        if not (run_dir / VIDEOS_DIR).exists() and (old / match / VIDEOS_DIR).is_dir():
            shutil.copytree(old / match / VIDEOS_DIR, run_dir / VIDEOS_DIR)
    records = old_meta.get(VERIFICATIONS_KEY) if isinstance(old_meta, dict) else None
    return [{**record, "run": same[record["run"]]} for record in (records if isinstance(records, list) else [])
            if isinstance(record, dict) and record.get("run") in same]


def copy_videos(results_dir: Path, run_dir: Path) -> None:
    """The evaluator's videos (``handbench eval --videos N``: the first N protocol seeds of each task)."""
    videos = sorted((results_dir / VIDEOS_DIR).glob("*.mp4")) if (results_dir / VIDEOS_DIR).is_dir() else []
    if videos:
        (run_dir / VIDEOS_DIR).mkdir()
        for video in videos:
            shutil.copyfile(video, run_dir / VIDEOS_DIR / video.name)


def entry_ids(leaderboard_dir: str | Path) -> list[str]:
    root = submissions_dir(leaderboard_dir)
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def entry_protocol_name(entry: Entry) -> str:
    return str(entry.meta.get("protocol", ""))


def load_entry(leaderboard_dir: str | Path, entry_id: str, rules: Protocol | None = None,
               rerun_references: bool = True) -> Entry:
    """Read and fully re-validate one stored entry, against ``rules`` or else the protocol it names
    (``rerun_references``: see ``validate_runs``)."""
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
    if not isinstance(meta, dict):
        raise HandbenchError(f"{meta_path}: expected a JSON object")
    if rules is None:
        try:
            rules = load_protocol(str(meta.get("protocol", "")))
        except HandbenchError as exc:
            raise HandbenchError(f"{meta_path}: {exc}") from exc
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
    _check_verifications(meta, meta_path, listed)
    runs = [load_results_dir(directory / name) for name in listed]
    validate_runs(runs, rules, reference, rerun_references)
    for record, run in zip(meta["runs"], runs, strict=True):
        if record.get("checkpoint_hash") != run.checkpoint_hash:
            raise HandbenchError(f"{meta_path}: run {record['dir']} records checkpoint "
                                 f"{record.get('checkpoint_hash')!r} but its episodes say {run.checkpoint_hash!r}")
        if record.get("commands") != meta_commands(run.meta):
            raise HandbenchError(f"{meta_path}: run {record['dir']} commands differ from its {META_FILE}")
    if meta.get("protocol") != rules.name:
        raise HandbenchError(f"{meta_path}: protocol {meta.get('protocol')!r} is not {rules.name!r}")
    return Entry(entry_id=entry_id, info=info, runs=runs, meta=meta, reference=reference)


def _check_verifications(meta: dict[str, Any], meta_path: Path, runs: Sequence[str]) -> None:
    """Verification records (written by ``handbench leaderboard --verify``) are shown as they are: only a date and
    one of the entry's runs are accepted."""
    records = meta.get(VERIFICATIONS_KEY, [])
    if not isinstance(records, list):
        raise HandbenchError(f"{meta_path}: {VERIFICATIONS_KEY} must be a list of records")
    for record in records:
        if not (isinstance(record, dict) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(record.get("date", "")))
                and record.get("run") in runs):
            raise HandbenchError(f"{meta_path}: {VERIFICATIONS_KEY} record {record!r} is not a date and one of "
                                 f"the entry's runs ({', '.join(runs)}); records are written by --verify")


def load_entries(leaderboard_dir: str | Path, rules: Protocol | None = None, without: str | None = None,
                 rerun_references: bool = True) -> list[Entry]:
    """Every stored entry, each validated against ``rules`` or else its own protocol."""
    return [load_entry(leaderboard_dir, entry_id, rules, rerun_references) for entry_id in entry_ids(leaderboard_dir)
            if entry_id != without]
