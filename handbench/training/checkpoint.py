"""One-file checkpoints (config, normaliser, weights, provenance) and ``load_policy``.

A checkpoint is written atomically with ``torch.save`` and read with ``weights_only=True`` (plain
tensors, numbers, strings, lists and dicts only), so loading one never runs code from the file.
It is refused, with one line saying why, when it is not a handbench checkpoint, was written by a
handbench of another major.minor version or checkpoint format, or was trained on another task,
task version, hand or compiled model than the caller expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from handbench.atomic import atomic_path
from handbench.errors import HandbenchError, require_file
from handbench.training.config import config_from_dict
from handbench.training.normalizer import Normalizer
from handbench.training.runtime import TrainedPolicy
from handbench.training.spec import ObsActionSpec

FORMAT = "handbench-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, *, policy: str, preset: str, model_config: dict, train_config: dict,
                    spec: ObsActionSpec, normalizer: Normalizer, weights: dict[str, torch.Tensor],
                    provenance: dict[str, Any]) -> Path:
    from handbench.version import __version__

    content = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "handbench_version": __version__,
        "torch_version": str(torch.__version__), "policy": policy, "preset": preset, "model_config": model_config,
        "train_config": train_config, "spec": spec.to_dict(), "normalizer": normalizer.state_dict(),
        "weights": {k: v.detach().cpu() for k, v in weights.items()}, "provenance": provenance,
    }
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return Path(path)


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's content, after the format and version checks."""
    from handbench.version import __version__

    path = require_file(path, "checkpoint", "give the policy.pt file written by `handbench train`")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise HandbenchError(f"{path} is not a readable handbench checkpoint ({type(exc).__name__})") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise HandbenchError(f"{path} is not a handbench checkpoint")
    if content.get("format_version") != FORMAT_VERSION:
        raise HandbenchError(f"checkpoint {path} has format version {content.get('format_version')}; this handbench "
                             f"reads version {FORMAT_VERSION}: retrain it")
    written_by = content.get("handbench_version", "?")
    if _minor(written_by) != _minor(__version__):
        raise HandbenchError(f"checkpoint {path} was written by handbench {written_by}; this is handbench "
                             f"{__version__}: retrain it, or install handbench {written_by}")
    return content


def check_matches(content: dict[str, Any], path: str | Path, **expected: Any) -> None:
    """Refuse a checkpoint whose dataset provenance differs from ``expected`` (task=, task_version=, hand=, ...)."""
    attrs = content["provenance"].get("dataset_attrs", {})
    for key, want in expected.items():
        if want is None:
            continue
        have = attrs.get(key)
        if have is None or str(have) != str(want):
            raise HandbenchError(f"checkpoint {path} was trained for {key} {have!r}, not {want!r}")


def load_policy(path: str | Path, *, device: str = "cpu", seed: int = 0, temporal_ensemble_m: float | None = None,
                action_steps: int | None = None, task: str | None = None, task_version: int | None = None,
                hand: str | None = None, model_hash: str | None = None) -> TrainedPolicy:
    """A ready-to-evaluate Policy from a checkpoint written by ``handbench train``.

    Pass ``task``/``task_version``/``hand``/``model_hash`` to refuse a checkpoint trained for something
    else; ``temporal_ensemble_m`` and ``action_steps`` override how the action chunks are executed.
    """
    from handbench.baselines import get_baseline

    content = read_checkpoint(path)
    check_matches(content, path, task=task, task_version=task_version, hand=hand, model_hash=model_hash)
    module = get_baseline(content["policy"])
    spec = ObsActionSpec.from_dict(content["spec"])
    model = module.MODEL(config_from_dict(module.CONFIG, content["model_config"]), spec)
    try:
        model.load_state_dict(content["weights"])
    except RuntimeError as exc:
        raise HandbenchError(f"checkpoint {path} weights do not fit its {content['policy']} config") from exc
    provenance = content["provenance"]
    metadata = {**provenance.get("dataset_attrs", {}), **{k: v for k, v in provenance.items() if k != "dataset_attrs"},
                "policy": content["policy"], "preset": content["preset"],
                "handbench_version": content["handbench_version"], "model_config": content["model_config"],
                "train_config": content["train_config"]}
    return TrainedPolicy(model, Normalizer.from_state_dict(content["normalizer"]), spec, provenance=metadata,
                         device=device, seed=seed, temporal_ensemble_m=temporal_ensemble_m, action_steps=action_steps)
