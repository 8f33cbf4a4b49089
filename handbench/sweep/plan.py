"""A sweep plan (a TOML file in the repo) -> the ordered list of demo datasets and runs it asks for.

A plan names a protocol, where the large files go (``work_dir``: demos and checkpoints, not in the repo), where
the record goes (``record_dir``: the ledger and every run's evaluation results, kept in the repo), the
leaderboard method name of each policy, and its stages in the order they should run. A stage is a product:
policies x tasks x hands x demo counts x training seeds, in one observation mode::

    [[stages]]
    name = "state"
    policies = ["bc", "diffusion"]   # run in this order: each policy's full coverage before the next one
    tasks = "all"                    # every task of the protocol, or a list
    hands = ["hb16", "shadow"]
    seeds = [0, 1, 2]
    demos = [100]
    obs = "state"                    # or "pixels", with image_size = [64, 64] (default: generate-demos')
    submit = true                    # finished (task, hand) groups go to the leaderboard as they complete

A run is one (obs, policy, task, hand, demos, seed): its id names exactly that, so two stages asking for the
same run (the learning curves' 100-demo point and the state sweep) share it. The reference policies (expert
and the random and hold floors) are evaluated only: no dataset, no training, no seed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import tomllib

from handbench.errors import HandbenchError

TRAINED_POLICIES = ("bc", "diffusion", "ibc", "act")
REFERENCE_POLICIES = ("expert", "random", "hold")
OBS_MODES = ("state", "pixels")
STAGE_KEYS = {"name", "policies", "tasks", "hands", "seeds", "demos", "obs", "image_size", "submit", "steps",
              "episodes"}
PLAN_KEYS = {"protocol", "work_dir", "record_dir", "preset", "methods", "train_options", "stages"}


@dataclass(frozen=True)
class Dataset:
    """The demos one or more runs train on (made with ``handbench generate-demos``)."""

    task: str
    hand: str
    obs: str
    demos: int
    image_size: tuple[int, int] | None = None  # pixels: frame size (None: generate-demos' default)

    @property
    def name(self) -> str:
        frames = "" if self.image_size is None else f"{self.image_size[0]}x{self.image_size[1]}"
        return f"{self.task}-{self.hand}-{self.obs}{frames}-{self.demos}"


@dataclass(frozen=True)
class Run:
    """One training seed of one method on one (task, hand), evaluated on the protocol's seeds; or, for a
    reference policy, one evaluation of it (``dataset`` and ``seed`` None)."""

    policy: str
    task: str
    hand: str
    obs: str
    dataset: Dataset | None
    seed: int | None
    stage: str
    submit: bool
    steps: int | None = None  # training steps (default: the preset's); tiny plans only
    episodes: int | None = None  # first N eval seeds only (a debug subset: such results cannot be submitted)

    @property
    def id(self) -> str:
        if self.dataset is None:
            return f"{self.obs}-{self.policy}-{self.task}-{self.hand}"
        return f"{self.obs}-{self.policy}-{self.task}-{self.hand}-d{self.dataset.demos}-s{self.seed}"

    @property
    def trained(self) -> bool:
        return self.dataset is not None

    @property
    def group(self) -> tuple[str, str, int | None]:
        """The leaderboard entry this run belongs to: (policy, obs, demos)."""
        return (self.policy, self.obs, None if self.dataset is None else self.dataset.demos)


@dataclass(frozen=True)
class Stage:
    name: str
    policies: tuple[str, ...]
    tasks: tuple[str, ...] | str  # "all" or names
    hands: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    demos: tuple[int, ...] = (100,)
    obs: str = "state"
    image_size: tuple[int, int] | None = None
    submit: bool = True
    steps: int | None = None
    episodes: int | None = None


@dataclass(frozen=True)
class SweepPlan:
    """A parsed plan; :meth:`runs` expands it (needs the protocol's task list)."""

    source: Path
    protocol: str
    work_dir: PurePosixPath
    record_dir: PurePosixPath
    preset: str
    methods: dict[str, str]
    stages: tuple[Stage, ...]
    train_options: dict[str, tuple[str, ...]] = field(default_factory=dict)  # policy -> extra `train` words

    def runs(self, protocol_tasks: dict[str, tuple[str, ...]]) -> list[Run]:
        """Every run of the plan, in the order to run them, without duplicates (first stage asking wins).

        ``protocol_tasks`` maps each task of the protocol to the hands it allows. Order: stage, then policy,
        then (task, hand), then demos, then seed, so a policy covers every task before the next policy starts
        and a (task, hand)'s seeds finish together (its leaderboard row appears as soon as possible).
        """
        runs: dict[str, Run] = {}
        for stage in self.stages:
            tasks = tuple(protocol_tasks) if stage.tasks == "all" else stage.tasks
            unknown = [task for task in tasks if task not in protocol_tasks]
            if unknown:
                raise HandbenchError(f"{self.source}: stage {stage.name!r} names task(s) {', '.join(unknown)} that "
                                     f"protocol {self.protocol} does not have; valid: {', '.join(protocol_tasks)}")
            for policy in stage.policies:
                for task in tasks:
                    for hand in (h for h in stage.hands if h in protocol_tasks[task]):
                        for run in _stage_runs(stage, policy, task, hand):
                            runs.setdefault(run.id, run)
        return list(runs.values())


def _stage_runs(stage: Stage, policy: str, task: str, hand: str) -> list[Run]:
    common = dict(policy=policy, task=task, hand=hand, obs=stage.obs, stage=stage.name, submit=stage.submit,
                  episodes=stage.episodes)
    if policy in REFERENCE_POLICIES:
        return [Run(dataset=None, seed=None, **common)]
    return [Run(dataset=Dataset(task, hand, stage.obs, demos, stage.image_size), seed=seed, steps=stage.steps, **common)
            for demos in stage.demos for seed in stage.seeds]


def datasets_of(runs: list[Run]) -> list[Dataset]:
    """The datasets the runs need, in the order they are first needed."""
    return list(dict.fromkeys(run.dataset for run in runs if run.dataset is not None))


def select(runs: list[Run], only: list[str] | None = None, shard: tuple[int, int] | None = None) -> list[Run]:
    """The runs matching any ``only`` glob pattern (on the run id, e.g. ``state-bc-*``) and falling in
    ``shard`` = (i, n): the plan's (task, hand) pairs are dealt round-robin to n shards, so every run of a
    dataset, and every seed of a leaderboard row, lands in the same shard."""
    if only:
        runs = [run for run in runs if any(fnmatch.fnmatchcase(run.id, pattern) for pattern in only)]
    if shard is not None:
        index, count = shard
        pairs = list(dict.fromkeys((run.task, run.hand) for run in runs))
        mine = {pair for position, pair in enumerate(pairs) if position % count == index}
        runs = [run for run in runs if (run.task, run.hand) in mine]
    return runs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n), or HandbenchError naming the valid form."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise HandbenchError(f"--shard must be I/N with 0 <= I < N (e.g. 0/2), got {text!r}") from None
    if not 0 <= index < count:
        raise HandbenchError(f"--shard must be I/N with 0 <= I < N (e.g. 0/2), got {text!r}")
    return index, count


def load_plan(path: str | Path) -> SweepPlan:
    """Read and validate a plan file; every mistake is one HandbenchError naming the key and what is valid."""
    path = Path(path)
    try:
        body = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HandbenchError(f"sweep plan {path} not found (the project's plans are in baselines/sweeps/)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HandbenchError(f"sweep plan {path} is not a readable TOML file: {exc}") from None
    return parse_plan(body, path)


def parse_plan(body: dict[str, Any], source: Path) -> SweepPlan:
    where = str(source)
    _no_unknown(body, PLAN_KEYS, where)
    for key in ("protocol", "work_dir", "record_dir"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise HandbenchError(f"{where}: {key} must be a non-empty string")
    methods = body.get("methods", {})
    if not isinstance(methods, dict) or not all(isinstance(v, str) and v for v in methods.values()):
        raise HandbenchError(f"{where}: [methods] maps each policy to its leaderboard method name (strings)")
    train_options = body.get("train_options", {})
    if not isinstance(train_options, dict) or not all(
            isinstance(words, list) and all(isinstance(word, str) and word for word in words)
            for words in train_options.values()):
        raise HandbenchError(f"{where}: [train_options] maps a trained policy to a list of extra `handbench train` "
                             'words, e.g. diffusion = ["--temporal-ensemble", "off"]')
    unknown = sorted(set(train_options) - set(TRAINED_POLICIES))
    if unknown:
        raise HandbenchError(f"{where}: [train_options] names {', '.join(unknown)}; valid: "
                             f"{', '.join(TRAINED_POLICIES)}")
    stages_body = body.get("stages")
    if not isinstance(stages_body, list) or not stages_body:
        raise HandbenchError(f"{where}: the plan needs at least one [[stages]] table")
    stages = tuple(_parse_stage(stage, f"{where}: stage {index}") for index, stage in enumerate(stages_body))
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise HandbenchError(f"{where}: stage names must be distinct, got {', '.join(names)}")
    for stage in stages:
        missing = [p for p in stage.policies if stage.submit and p in TRAINED_POLICIES and p not in methods]
        if missing:
            raise HandbenchError(f"{where}: stage {stage.name!r} submits {', '.join(missing)} but [methods] gives "
                                 f"no leaderboard name for it")
    return SweepPlan(source=source, protocol=body["protocol"], work_dir=_relative_dir(body["work_dir"], where),
                     record_dir=_relative_dir(body["record_dir"], where), preset=str(body.get("preset", "cpu-small")),
                     methods=dict(methods), stages=stages,
                     train_options={policy: tuple(words) for policy, words in train_options.items()})


def _parse_stage(body: Any, where: str) -> Stage:
    if not isinstance(body, dict):
        raise HandbenchError(f"{where}: must be a table")
    _no_unknown(body, STAGE_KEYS, where)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise HandbenchError(f"{where}: name must be a non-empty string")
    where = f"{where} ({name})"
    policies = _names(body.get("policies"), "policies", where)
    bad = [p for p in policies if p not in TRAINED_POLICIES + REFERENCE_POLICIES]
    if bad:
        raise HandbenchError(f"{where}: unknown policy {', '.join(bad)}; valid: "
                             f"{', '.join(TRAINED_POLICIES + REFERENCE_POLICIES)}")
    tasks = body.get("tasks", "all")
    tasks = "all" if tasks == "all" else _names(tasks, "tasks", where)
    obs = body.get("obs", "state")
    if obs not in OBS_MODES:
        raise HandbenchError(f"{where}: obs must be one of {', '.join(OBS_MODES)}, got {obs!r}")
    image_size = body.get("image_size")
    if image_size is not None:
        valid = (isinstance(image_size, list) and len(image_size) == 2
                 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in image_size))
        if not valid or obs != "pixels":
            raise HandbenchError(f"{where}: image_size is [height, width] of the frames, for obs = \"pixels\" only")
    submit = body.get("submit", True)
    if not isinstance(submit, bool):
        raise HandbenchError(f"{where}: submit must be true or false")
    return Stage(name=name, policies=policies, tasks=tasks, hands=_names(body.get("hands"), "hands", where),
                 seeds=_integers(body.get("seeds", [0, 1, 2]), "seeds", where, low=0),
                 demos=_integers(body.get("demos", [100]), "demos", where, low=1), obs=obs,
                 image_size=None if image_size is None else (image_size[0], image_size[1]), submit=submit,
                 steps=_optional_positive(body.get("steps"), "steps", where),
                 episodes=_optional_positive(body.get("episodes"), "episodes", where))


def _no_unknown(body: dict, valid: set[str], where: str) -> None:
    unknown = sorted(set(body) - valid)
    if unknown:
        raise HandbenchError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise HandbenchError(f"{where}: {key} must be a non-empty list of names")
    if len(set(value)) != len(value):
        raise HandbenchError(f"{where}: {key} lists a name twice: {', '.join(value)}")
    return tuple(value)


def _integers(value: Any, key: str, where: str, low: int) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value)):
        raise HandbenchError(f"{where}: {key} must be a non-empty list of integers >= {low}")
    if len(set(value)) != len(value):
        raise HandbenchError(f"{where}: {key} lists a value twice")
    return tuple(value)


def _optional_positive(value: Any, key: str, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HandbenchError(f"{where}: {key} must be an integer >= 1")
    return value


def _relative_dir(text: str, where: str) -> PurePosixPath:
    """Recorded commands must replay on any machine: every path the sweep writes is relative to the project."""
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise HandbenchError(f"{where}: {text!r} must be a folder relative to the project (no leading / or ..), so "
                             "the recorded commands replay on any machine")
    return path
