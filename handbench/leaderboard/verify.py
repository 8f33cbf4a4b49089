"""Re-deriving a leaderboard run from its recorded commands: ``handbench leaderboard --verify ENTRY --run K``.

Validation can only check that a result is internally consistent and matches what can be recomputed cheaply.
Results are reproducible to the episode across machines, so a run can be checked completely by re-deriving it:

1. regenerate the demonstrations the checkpoint was trained on (``handbench generate-demos`` with the task, hand,
   number of demos and observation settings of the checkpoint's provenance) and check the dataset hash;
2. retrain with the recorded ``handbench train`` command;
3. re-evaluate with the recorded ``handbench eval`` command;
4. compare every episode with the stored results exactly, and report the first difference.

A reference run (scripted expert, random or hold floor) has no training: step 3 and 4 only, and that is a full
re-derivation (``--run all`` does every run of a reference entry). Whoever holds a method run's checkpoint can
re-evaluate it without retraining (``--checkpoint PATH``: its hash must be the run's): steps 3 and 4, recorded as
a re-evaluation, not a re-derivation. Commands run in a scratch project folder (the recorded paths are relative
to the project), one after the other, as subprocesses. Only ``handbench train`` and ``handbench eval`` commands
are run; anything else in a submission is refused. The replayed evaluation films the first protocol seeds
(``--videos``, which changes no result: the comparison proves it), and a stored run without videos gets them.
On success the entry's ``meta.json`` records the verification (date, run, kind, versions) and the generated
files are rewritten, so the tables show when each entry was last verified and on which run.
"""

from __future__ import annotations

import datetime
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from handbench.atomic import atomic_write_text
from handbench.errors import HandbenchError
from handbench.leaderboard.submissions import (
    ENTRY_META_FILE,
    RUN_DIR_PREFIX,
    VERIFICATIONS_KEY,
    VIDEOS_DIR,
    Entry,
    copy_videos,
    load_entry,
    submissions_dir,
)
from handbench.leaderboard.validate import RunResults, load_results_dir, meta_commands, meta_protocol
from handbench.machine import machine_info

# What must be identical, episode by episode (model_hash is checked by validation: the Shadow hand's depends on
# the install location of its mesh files).
COMPARED_COLUMNS = ("task", "hand", "seed", "success", "success_at_end", "steps", "return", "time_to_success",
                    "task_version", "obs_mode", "protocol", "policy", "error")
ALLOWED_COMMANDS = ("train", "eval")
PATH_OPTIONS = ("--dataset", "--out", "--checkpoint")
RUNNER = "import sys; from handbench.cli import main; sys.argv[0] = 'handbench'; sys.exit(main())"
VERIFY_VIDEOS = 2  # protocol seeds per task the replayed evaluation films (the page shows them side by side)
RE_DERIVED, RE_EVALUATED = "re-derived", "re-evaluated"  # a verification record's kind


class VerificationFailed(HandbenchError):
    """The re-derived run differs from the stored one (the message names the first difference)."""


@dataclass(frozen=True)
class Verification:
    entry_id: str
    run: str
    episodes: int
    seconds: float
    work_dir: Path
    retrained: bool = True  # False for a reference run (nothing to train) or a given checkpoint
    kind: str = RE_DERIVED  # RE_EVALUATED: a given checkpoint evaluated again, not retrained
    videos: int = 0  # videos added to the stored run

    def describe(self) -> str:
        if self.retrained:
            steps = "demos regenerated, policy retrained, re-evaluated"
        else:
            steps = "checkpoint re-evaluated" if self.kind == RE_EVALUATED else "re-evaluated"
        added = f"; {self.videos} videos added to the entry" if self.videos else ""
        return (f"verified {self.entry_id} {self.run}: all {self.episodes} episodes identical to the stored results "
                f"({steps}; {self.seconds:.0f} s, work in {self.work_dir}{added})")


def parse_command(command: str, kind: str) -> list[str]:
    """The arguments after ``handbench`` of a recorded command, refused unless it is ``handbench <kind>`` with
    paths relative to the project and inside it."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise HandbenchError(f"recorded {kind} command is not a shell command line ({exc}): {command}") from exc
    if len(argv) < 2 or argv[0] != "handbench" or argv[1] != kind or kind not in ALLOWED_COMMANDS:
        raise HandbenchError(f"recorded {kind} command is not `handbench {kind} ...`: {command}")
    for option in PATH_OPTIONS:
        value = option_value(argv, option)
        if value is not None:
            path = PurePosixPath(value)
            if path.is_absolute() or ".." in path.parts:
                raise HandbenchError(f"recorded {kind} command has {option} {value}: paths must be relative to the "
                                     f"project and inside it")
    return argv[1:]


def option_value(argv: Sequence[str], option: str) -> str | None:
    for index, token in enumerate(argv):
        if token == option and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def demo_command(provenance: dict, dataset: str) -> list[str]:
    """``handbench generate-demos`` arguments that remake the checkpoint's training demos."""
    missing = [key for key in ("task", "hand", "num_demos") if key not in provenance]
    if missing:
        raise HandbenchError(f"the checkpoint's provenance lacks {', '.join(missing)}; cannot regenerate its demos")
    argv = ["generate-demos", "--task", str(provenance["task"]), "--hand", str(provenance["hand"]),
            "--num-demos", str(int(provenance["num_demos"])), "--workers", "0", "--quiet", "--out", dataset]
    if provenance.get("obs_mode", "state") != "state":
        argv += ["--obs", str(provenance["obs_mode"])]
        cameras = _listed(provenance.get("cameras"))
        if cameras:
            argv += ["--cameras", *cameras]
        size = _listed(provenance.get("image_size"))
        if size:
            argv += ["--image-size", *map(str, size)]
    if float(provenance.get("action_noise", 0.0) or 0.0):
        argv += ["--action-noise", repr(float(provenance["action_noise"]))]
    return argv


def accepts_option(command: str, option: str) -> bool:
    """Whether this handbench's ``handbench COMMAND`` has ``option`` (commands gained --protocol over time)."""
    import argparse

    from handbench.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return option in action.choices[command]._option_string_actions
    return False


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (replaced where present, else appended)."""
    out, skip = [], False
    for index, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == option and index + 1 < len(argv):
            skip = True
            continue
        if token.startswith(option + "="):
            continue
        out.append(token)
    return [*out, option, value]


def pin_protocol(argv: list[str], command: str, protocol: str) -> list[str]:
    """A recorded command without ``--protocol`` ran under the default protocol of its day, which is the entry's
    protocol: replay it under that protocol explicitly (today's default may be a newer one)."""
    if option_value(argv, "--protocol") is None and accepts_option(command, "--protocol"):
        return [*argv, "--protocol", protocol]
    return argv


def _listed(value) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    return list(value) if isinstance(value, list | tuple) else []


def run_handbench(argv: Sequence[str], cwd: Path, log: Path, say: Callable[[str], None]) -> None:
    """Run ``handbench ARGV`` in ``cwd`` as a subprocess (so it records its own command line); output to ``log``."""
    say(f"  $ handbench {shlex.join(argv)}")
    started = time.monotonic()
    with log.open("a") as handle:
        handle.write(f"$ handbench {shlex.join(argv)}\n")
        handle.flush()
        code = subprocess.call([sys.executable, "-c", RUNNER, *argv], cwd=cwd, stdout=handle,
                               stderr=subprocess.STDOUT)
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise HandbenchError(f"`handbench {argv[0]}` failed (exit {code}): {tail[0]} (full log: {log})")
    say(f"    done in {time.monotonic() - started:.0f} s")


def first_difference(stored: pd.DataFrame, fresh: pd.DataFrame) -> str | None:
    """A sentence naming the first episode (by task, hand, seed) that differs, or None if all are identical."""
    keys = ["task", "hand", "seed"]
    left = stored.sort_values(keys).set_index(keys)
    right = fresh.sort_values(keys).set_index(keys)
    for key in left.index.union(right.index).sort_values():
        where = f"{key[0]}/{key[1]} seed {key[2]}"
        if key not in right.index:
            return f"{where}: stored, but the re-derived run has no such episode"
        if key not in left.index:
            return f"{where}: re-derived, but the stored run has no such episode"
        for column in COMPARED_COLUMNS[3:]:
            a, b = left.at[key, column], right.at[key, column]
            if not (a == b or (pd.isna(a) and pd.isna(b))):
                return f"{where}: stored {column}={a}, re-derived {column}={b}"
    return None


def parse_runs(text: str) -> list[int] | None:
    """``--run``: a run number, or ``all`` (None)."""
    if text == "all":
        return None
    if not text.isdigit():
        raise HandbenchError(f"--run {text!r} is not a run number (0, 1, ...) or 'all'")
    return [int(text)]


def verify_runs(leaderboard_dir: str | Path, entry_id: str, runs: list[int] | None = None,
                work_dir: str | Path | None = None, checkpoint: str | Path | None = None,
                say: Callable[[str], None] = print) -> list[Verification]:
    """``verify_run`` for each of ``runs`` (None: every run of the entry), one after the other; every run asked
    for must be verifiable before any work starts."""
    entry = load_entry(leaderboard_dir, entry_id, rerun_references=False)
    indexes = list(range(len(entry.runs))) if runs is None else runs
    if checkpoint is not None and len(indexes) != 1:
        raise HandbenchError("--checkpoint re-evaluates one run: give its number with --run K")
    if checkpoint is None:
        blocked = [index for index in indexes if 0 <= index < len(entry.runs)
                   and f"{RUN_DIR_PREFIX}{index}" not in entry.rederivable_runs]
        if blocked:
            raise HandbenchError(cannot_rederive(entry, blocked))
    results = []
    try:
        for index in indexes:
            where = work_dir
            if work_dir is not None and len(indexes) > 1:  # one scratch project per run
                where = Path(work_dir) / f"{RUN_DIR_PREFIX}{index}"
            results.append(verify_run(leaderboard_dir, entry_id, index, where, checkpoint, say, regenerate=False))
    finally:
        if results:  # the runs verified so far are recorded: show them (once, not after every run)
            from handbench.leaderboard.generate import regenerate

            regenerate(leaderboard_dir)
    return results


def cannot_rederive(entry: Entry, indexes: Sequence[int]) -> str:
    names = ", ".join(f"{RUN_DIR_PREFIX}{index}" for index in indexes)
    return (f"{entry.entry_id} {names} record{'s' if len(indexes) == 1 else ''} no train command (trained before "
            f"handbench recorded them), so {'it' if len(indexes) == 1 else 'they'} cannot be re-derived; runs that "
            f"can: {', '.join(run.removeprefix(RUN_DIR_PREFIX) for run in entry.rederivable_runs) or 'none'} "
            f"(whoever holds a run's checkpoint can re-evaluate it: --checkpoint PATH)")


def verify_run(leaderboard_dir: str | Path, entry_id: str, run_index: int = 0, work_dir: str | Path | None = None,
               checkpoint: str | Path | None = None, say: Callable[[str], None] = print,
               regenerate: bool = True) -> Verification:
    """Re-derive run ``run_index`` of an entry (or, with ``checkpoint``, re-evaluate that file, whose hash must be
    the run's) and compare it episode by episode; raises ``VerificationFailed`` naming the first difference. On
    success, adds the replay's videos to a stored run that has none, records the verification and (unless
    ``regenerate=False``) regenerates the leaderboard files."""
    entry = load_entry(leaderboard_dir, entry_id, rerun_references=False)  # the replay re-runs every seed
    if not 0 <= run_index < len(entry.runs):
        raise HandbenchError(f"entry {entry_id} has runs 0..{len(entry.runs) - 1}; --run {run_index} is not one")
    run = entry.runs[run_index]
    run_name = f"{RUN_DIR_PREFIX}{run_index}"
    commands = meta_commands(run.meta)
    protocol = str(entry.meta.get("protocol", ""))
    if checkpoint is not None:
        checkpoint = Path(checkpoint).absolute()
        _check_checkpoint(entry, run, checkpoint)
    elif run_name not in entry.rederivable_runs:
        raise HandbenchError(cannot_rederive(entry, [run_index]))
    eval_argv = pin_protocol(parse_command(commands.get("eval", ""), "eval"), "eval", protocol)
    if checkpoint is not None:
        eval_argv = with_option(eval_argv, "--checkpoint", str(checkpoint))
    if option_value(eval_argv, "--videos") is None:
        eval_argv = [*eval_argv, "--videos", str(VERIFY_VIDEOS)]
    train_argv = None if entry.reference or checkpoint is not None else parse_command(commands["train"], "train")
    out = option_value(eval_argv, "--out")
    if out is None:
        raise HandbenchError(f"{run.source}: the recorded eval command has no --out; cannot find its results")
    started = time.monotonic()
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix=f"handbench-verify-{entry_id}-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "verify.log"
    say(f"verifying {entry_id} {run_name} in {work} (log: {log})")
    if train_argv is not None:
        _retrain(run, train_argv, work, log, say)
    results = work / out
    if results.exists():
        shutil.rmtree(results)  # never resume from an earlier attempt's episodes
    say("re-evaluating with the recorded eval command" + (f" on {checkpoint}" if checkpoint else ""))
    run_handbench(eval_argv, work, log, say)
    fresh = load_results_dir(results)
    difference = first_difference(run.episodes, fresh.episodes)
    if difference:
        raise VerificationFailed(f"{entry_id} {run_name} differs from its "
                                 f"{'re-evaluation' if checkpoint else 're-derivation'}: {difference} "
                                 f"(work kept in {work})")
    stored_dir = submissions_dir(leaderboard_dir) / entry_id / run_name
    videos = 0
    if not (stored_dir / VIDEOS_DIR).exists():
        copy_videos(results, stored_dir)  # the same episodes, filmed
        videos = len(list((stored_dir / VIDEOS_DIR).glob("*.mp4"))) if (stored_dir / VIDEOS_DIR).exists() else 0
    kind = RE_EVALUATED if checkpoint is not None else RE_DERIVED
    record_verification(leaderboard_dir, entry, run_name, len(fresh.episodes), kind)
    if regenerate:
        from handbench.leaderboard.generate import regenerate as regenerate_files

        regenerate_files(leaderboard_dir)
    return Verification(entry_id, run_name, len(fresh.episodes), time.monotonic() - started, work,
                        retrained=train_argv is not None, kind=kind, videos=videos)


def _check_checkpoint(entry: Entry, run: RunResults, checkpoint: Path) -> None:
    from handbench.evaluation.policies import file_hash

    if entry.reference:
        raise HandbenchError(f"{entry.entry_id} is a reference entry: its policy has no checkpoint; verify it "
                             f"without --checkpoint")
    if not checkpoint.is_file():
        raise HandbenchError(f"--checkpoint {checkpoint} is not a file; give the run's policy.pt")
    found = file_hash(checkpoint)
    if found != run.checkpoint_hash:
        raise HandbenchError(f"--checkpoint {checkpoint} hashes {found}, but the run evaluated checkpoint "
                             f"{run.checkpoint_hash}; give that run's own checkpoint")


def _retrain(run: RunResults, train_argv: list[str], work: Path, log: Path, say: Callable[[str], None]) -> None:
    from handbench.dataset import FORMAT_VERSION, dataset_hash

    provenance = run.training_provenance
    dataset = option_value(train_argv, "--dataset")
    if dataset is None:
        raise HandbenchError(f"{run.source}: the recorded train command has no --dataset")
    if not (work / dataset).exists():
        say("regenerating the demos from the checkpoint's provenance")
        (work / dataset).parent.mkdir(parents=True, exist_ok=True)
        protocol = str(provenance.get("protocol") or meta_protocol(run.meta))
        run_handbench(pin_protocol(demo_command(provenance, dataset), "generate-demos", protocol), work, log, say)
    recorded = provenance.get("dataset_hash")
    regenerated = dataset_hash(work / dataset)
    if recorded and regenerated != recorded:
        trained_format = provenance.get("format_version")
        if trained_format is None or int(trained_format) == FORMAT_VERSION:
            raise VerificationFailed(f"{run.source}: the regenerated demos hash {regenerated}, but the checkpoint "
                                     f"was trained on dataset {recorded} (work kept in {work}); on another kind of "
                                     f"CPU numpy's BLAS kernel can round the experts' IK differently (README, "
                                     f"'Across kinds of CPU')")
        # The hash covers the file format, which changed since: the episodes comparison decides.
        say(f"  the demos hash {regenerated}, the checkpoint's {recorded}: dataset format {trained_format} then, "
            f"{FORMAT_VERSION} now, so the hashes are not comparable; the episode results will tell")
    train_out = option_value(train_argv, "--out")
    if train_out and (work / train_out).exists():
        shutil.rmtree(work / train_out)  # retrain from scratch, never resume
    say("retraining with the recorded train command")
    run_handbench(train_argv, work, log, say)


def record_verification(leaderboard_dir: str | Path, entry: Entry, run_name: str, episodes: int,
                        kind: str = RE_DERIVED) -> None:
    import mujoco

    import handbench

    path = submissions_dir(leaderboard_dir) / entry.entry_id / ENTRY_META_FILE
    meta = json.loads(path.read_text())
    records = meta.get(VERIFICATIONS_KEY) if isinstance(meta.get(VERIFICATIONS_KEY), list) else []
    records.append({"date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(), "run": run_name,
                    "kind": kind, "episodes": episodes, "handbench_version": handbench.__version__,
                    "mujoco_version": mujoco.__version__, **machine_info()})
    meta[VERIFICATIONS_KEY] = records
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
