"""Where the evaluated policy comes from: the scripted expert, a baseline checkpoint, or any class.

A :class:`PolicySource` is a small picklable description sent to every worker; there it builds the
policy for an (env, seed) pair. Loaded weights and class instances are cached inside the worker, so a
checkpoint is loaded once per worker and task, never per episode. The expert needs the env and the seed,
so it is built per episode.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handbench.errors import HandbenchError, require_file
from handbench.policy import BatchPolicy, Policy

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.rollout import LaneDriver

BASELINES = ("act", "diffusion", "ibc", "bc")
POLICY_CHOICES = (*BASELINES, "expert", "random", "hold", "module:Class")
PolicyFactory = Callable[["HandEnv", int], Policy]


def source_hash(obj: Any) -> str:
    """sha256 (16 hex digits) of the source file defining ``obj`` (a class, function or instance); "" if none.

    Part of an evaluation's resume key: results of a policy whose code was edited are not reused.
    """
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj)
    try:
        path = inspect.getsourcefile(target)
    except TypeError:  # built-in
        return ""
    return file_hash(path) if path and Path(path).is_file() else ""


def file_hash(path: str | Path) -> str:
    """sha256 (16 hex digits) of a checkpoint file: results name exactly which weights were evaluated."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class PolicySource:
    """Builds the evaluated policy inside a worker. Subclasses keep only picklable fields."""

    label: str = "policy"
    checkpoint: str = ""
    checkpoint_hash: str = ""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Policy] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}  # built policies stay in the process that built them
        return state

    def provenance(self) -> dict[str, Any]:
        """What the policy says about how it was made (checkpoint provenance); empty if nothing."""
        return {}

    def fingerprint(self) -> str:
        """What defines the policy's behaviour (weights, code), for the resume key; "" when only the label does."""
        return self.checkpoint_hash

    def validate(self, task: str, task_version: int, hand: str, obs_mode: str, model_hash: str = "") -> None:
        """Refuse, in one line, a policy that was not made for this (task, hand, obs mode)."""

    def env_options(self, obs_mode: str) -> dict[str, Any]:
        """HandEnv keyword arguments the policy's observations need (cameras, image size); {} for the defaults."""
        return {}

    def expert_version(self, env: HandEnv) -> str:
        """The scripted expert's version behind this policy: the one whose demos trained it, if known."""
        return str(self.provenance().get("expert_version", ""))

    def policy_for(self, env: HandEnv, seed: int) -> Policy:
        key = (env.task.name, env.hand_spec.name)
        if key not in self._cache:
            self._cache[key] = self.build(env)
        return self._cache[key]

    def build(self, env: HandEnv) -> Policy:
        raise NotImplementedError

    def lane_width(self, lanes: int) -> int:
        """How many lanes the driver of :meth:`lane_driver` will have (known before any policy is built):
        ``lanes`` for a batched policy, else 1. Workers get episodes in groups of this many lane widths."""
        return 1

    def lane_driver(self, env: HandEnv, lanes: int, policy_noise: str) -> LaneDriver:
        """How the rollout engine drives this policy on ``env``'s (task, hand): batched over ``lanes`` lanes
        when the built policy implements BatchPolicy, else one episode at a time. Raises what building raises."""
        from handbench.rollout import BatchDriver, EpisodeDriver

        policy = self.policy_for(env, 0)  # built once per (task, hand); the seed only matters to per-episode sources
        if isinstance(policy, BatchPolicy):
            return BatchDriver(policy, lanes, policy_noise)
        return EpisodeDriver(self.policy_for, 1)


class ExpertSource(PolicySource):
    """The task's scripted expert (without action noise unless ``check-experts --action-noise`` asks for it); it
    reads privileged state, so any obs mode works."""

    label = "expert"

    def __init__(self, action_noise: float = 0.0) -> None:
        super().__init__()
        self.action_noise = float(action_noise)

    def policy_for(self, env: HandEnv, seed: int) -> Policy:
        return env.make_expert(seed, self.action_noise)

    def lane_driver(self, env: HandEnv, lanes: int, policy_noise: str) -> LaneDriver:
        from handbench.rollout import EpisodeDriver

        return EpisodeDriver(self.policy_for, 1)  # built per episode; physics-bound, nothing to batch

    def expert_version(self, env: HandEnv) -> str:
        return str(env.task.expert.version_for(env.hand.spec))


class FloorSource(PolicySource):
    """A floor policy (handbench.floors): ``random`` (seeded per episode) or ``hold``; built per episode."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.label = kind

    def policy_for(self, env: HandEnv, seed: int) -> Policy:
        from handbench.floors import make_floor_policy

        return make_floor_policy(self.label, env, seed)

    def lane_driver(self, env: HandEnv, lanes: int, policy_noise: str) -> LaneDriver:
        from handbench.rollout import EpisodeDriver

        return EpisodeDriver(self.policy_for, lanes)  # built per episode, own stream each: any width is deterministic

    def lane_width(self, lanes: int) -> int:
        return lanes


class CheckpointSource(PolicySource):
    """A baseline checkpoint loaded with ``handbench.load_policy``; its provenance is checked before any episode."""

    def __init__(self, kind: str, checkpoint: str, device: str = "cpu") -> None:
        super().__init__()
        path = require_file(checkpoint, "checkpoint", "give the policy.pt file written by `handbench train`")
        self.label = kind
        self.checkpoint = str(path.resolve())
        self.checkpoint_hash = file_hash(path)
        self.device = device  # where the model runs in each worker: cpu, cuda, cuda:<index>
        self._provenance: dict[str, Any] | None = None
        self._obs_spec = None  # the checkpoint's ObsActionSpec, read once

    def _load(self) -> Policy:
        from handbench.training.checkpoint import load_policy

        return load_policy(self.checkpoint, device=self.device)

    def _describe(self) -> None:
        """Load the checkpoint once (in the driver) for its provenance and observation spec."""
        policy = self._load()
        self._provenance = dict(getattr(policy, "provenance", None) or {})
        self._obs_spec = getattr(policy, "spec", None)

    def provenance(self) -> dict[str, Any]:
        if self._provenance is None:
            self._describe()
        return self._provenance

    def validate(self, task: str, task_version: int, hand: str, obs_mode: str, model_hash: str = "") -> None:
        prov = self.provenance()
        name = Path(self.checkpoint).name
        for key, value, flag in (("task", task, "--task"), ("hand", hand, "--hand"), ("obs_mode", obs_mode, "--obs")):
            if key in prov and str(prov[key]) != str(value):
                raise HandbenchError(f"checkpoint {name} was trained for {key} {prov[key]!r}, not {value!r}; "
                                     f"evaluate it with {flag} {prov[key]}")
        if "task_version" in prov and str(prov["task_version"]) != str(task_version):
            raise HandbenchError(f"checkpoint {name} was trained on {task} v{prov['task_version']}, but the code "
                                 f"and protocol are at v{task_version}: retrain it")
        if model_hash and prov.get("model_hash") and prov["model_hash"] != model_hash:
            raise HandbenchError(f"checkpoint {name} was trained on compiled model {prov['model_hash']}, but {task} "
                                 f"with {hand} compiles to {model_hash} here (other MuJoCo or assets): retrain it")
        kind = prov.get("policy")
        if kind and str(kind) != self.label:
            raise HandbenchError(f"checkpoint {name} holds a {kind} policy, not {self.label}; use --policy {kind}")
        self._check_observation_spec(task, hand, obs_mode, name)

    def _spec(self):
        if self._provenance is None:
            self._describe()
        return self._obs_spec

    def env_options(self, obs_mode: str) -> dict[str, Any]:
        """The cameras and image size the checkpoint was trained on (pixels mode), so the env renders them."""
        spec = self._spec() if obs_mode == "pixels" else None
        if spec is None or not spec.cameras:
            return {}
        return {"cameras": tuple(spec.cameras), "image_size": tuple(int(v) for v in spec.image_size)}

    def _check_observation_spec(self, task: str, hand: str, obs_mode: str, name: str) -> None:
        """Refuse up front (not at every episode's first step) a pixel spec this install cannot render."""
        from handbench.registry import compiled_model
        from handbench.scene import MAX_RENDER_SIZE

        if obs_mode != "pixels":
            return
        spec = self._spec()
        if spec is None:
            return
        if not spec.cameras:
            raise HandbenchError(f"checkpoint {name} was trained without images (obs mode {spec.obs_mode!r}); "
                                 f"evaluate it with --obs {spec.obs_mode}")
        model = compiled_model(task, hand)[0]
        valid = [model.camera(i).name for i in range(model.ncam)]
        missing = [camera for camera in spec.cameras if camera not in valid]
        if missing:
            raise HandbenchError(f"checkpoint {name} needs camera(s) {', '.join(missing)}, which {task} with {hand} "
                                 f"does not have (cameras: {', '.join(valid)})")
        height, width = (int(v) for v in spec.image_size)
        if not (0 < height <= MAX_RENDER_SIZE[0] and 0 < width <= MAX_RENDER_SIZE[1]):
            raise HandbenchError(f"checkpoint {name} needs {height}x{width} images; this install renders at most "
                                 f"{MAX_RENDER_SIZE[0]}x{MAX_RENDER_SIZE[1]}")

    def build(self, env: HandEnv) -> Policy:
        return self._load()

    def lane_width(self, lanes: int) -> int:
        return lanes  # the baselines implement the batched form


class ClassSource(PolicySource):
    """``module:Class`` implementing the Policy protocol, built once per worker and task.

    The constructor gets ``env`` (the HandEnv) and ``checkpoint`` (a path) only if it accepts them.
    """

    def __init__(self, target: str, checkpoint: str | None = None) -> None:
        super().__init__()
        self.label = target
        self.target = target
        if checkpoint:
            require_file(checkpoint, "checkpoint")
            self.checkpoint = str(Path(checkpoint).resolve())
            self.checkpoint_hash = file_hash(checkpoint)
        self._resolve()  # fail fast, in the driver, on a bad module or class name

    def _resolve(self) -> type:
        module_name, _, class_name = self.target.partition(":")
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())  # like `python -m`: a policy module beside the user is importable
        try:
            module = importlib.import_module(module_name)
        except SyntaxError as exc:
            raise HandbenchError(f"{exc.filename}:{exc.lineno}: syntax error in policy module {module_name!r}: "
                                 f"{exc.msg}") from exc
        except ImportError as exc:
            raise HandbenchError(f"cannot import module {module_name!r} for policy {self.target!r}: {exc}") from exc
        except (Exception, SystemExit) as exc:  # the module's own code failed while it was imported
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise HandbenchError(f"{frame.filename}:{frame.lineno}: importing policy module {module_name!r} raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise HandbenchError(f"module {module_name!r} has no {class_name!r} (policy {self.target!r})")
        if not (callable(getattr(cls, "reset", None)) and callable(getattr(cls, "act", None))):
            raise HandbenchError(f"{self.target} does not implement the Policy protocol (reset() and act(obs))")
        return cls

    def fingerprint(self) -> str:
        return f"{source_hash(self._resolve())}:{self.checkpoint_hash}"

    def lane_width(self, lanes: int) -> int:
        cls = self._resolve()
        return lanes if callable(getattr(cls, "reset_lane", None)) and callable(getattr(cls, "act_batch", None)) else 1

    def build(self, env: HandEnv) -> Policy:
        cls = self._resolve()
        accepted = inspect.signature(cls).parameters
        kwargs: dict[str, Any] = {}
        if "env" in accepted:
            kwargs["env"] = env
        if self.checkpoint and "checkpoint" in accepted:
            kwargs["checkpoint"] = self.checkpoint
        return cls(**kwargs)


class FactorySource(PolicySource):
    """A Python object given to ``evaluate``: a Policy instance, or a callable ``(env, seed) -> Policy``."""

    def __init__(self, obj: Policy | PolicyFactory, label: str | None = None) -> None:
        super().__init__()
        self.obj = obj
        self.is_policy = isinstance(obj, Policy)
        if not self.is_policy and not callable(obj):
            raise HandbenchError(f"{obj!r} is neither a Policy (reset/act) nor a callable (env, seed) -> Policy")
        self.label = label or getattr(obj, "__qualname__", None) or type(obj).__qualname__

    def policy_for(self, env: HandEnv, seed: int) -> Policy:
        return self.obj if self.is_policy else self.obj(env, seed)

    def fingerprint(self) -> str:
        return source_hash(self.obj)

    def lane_width(self, lanes: int) -> int:
        return lanes if self.is_policy and isinstance(self.obj, BatchPolicy) else 1

    def lane_driver(self, env: HandEnv, lanes: int, policy_noise: str) -> LaneDriver:
        from handbench.rollout import BatchDriver, EpisodeDriver

        if self.is_policy and isinstance(self.obj, BatchPolicy):
            return BatchDriver(self.obj, lanes, policy_noise)
        return EpisodeDriver(self.policy_for, 1)  # a factory builds a policy per episode


def resolve_policy(policy: str | Policy | PolicyFactory | PolicySource, checkpoint: str | None = None,
                   device: str = "cpu") -> PolicySource:
    """Turn the ``--policy`` value (or a Python object) into a PolicySource; one clear line on bad input."""
    if device != "cpu":  # check it (auto -> cuda or cpu); imports torch, which an expert-only run never needs
        from handbench.training.trainer import resolve_device

        device = str(resolve_device(device))
    if isinstance(policy, PolicySource):
        return policy
    if not isinstance(policy, str):
        return FactorySource(policy)
    if policy == "expert":
        if checkpoint:
            raise HandbenchError("--checkpoint makes no sense with --policy expert (the expert is scripted)")
        return ExpertSource()
    if policy in ("random", "hold"):
        if checkpoint:
            raise HandbenchError(f"--checkpoint makes no sense with --policy {policy} (a floor policy has no weights)")
        return FloorSource(policy)
    if policy in BASELINES:
        if not checkpoint:
            raise HandbenchError(f"--policy {policy} needs --checkpoint PATH (a file written by `handbench train`)")
        return CheckpointSource(policy, checkpoint, device)
    module_name, sep, class_name = policy.partition(":")
    if sep and module_name and class_name:
        return ClassSource(policy, checkpoint)
    raise HandbenchError(f"unknown policy {policy!r}; valid: {', '.join(POLICY_CHOICES)}")
