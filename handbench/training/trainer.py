"""The training loop shared by every baseline.

One seed controls the episode split, the model's initial weights, the batches and the model's own
noise. Every ``checkpoint_every`` steps the run saves ``train_state.pt`` (weights, EMA, optimiser,
LR schedule, RNG states, loss log) next to ``policy.pt``; running the same command again resumes
from it, and the resumed run ends with the same weights an uninterrupted one would have.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handbench.atomic import atomic_path, ensure_writable_dir, removed_if_empty_on_error
from handbench.dataset import dataset_hash as content_hash
from handbench.errors import HandbenchError, unknown_choice
from handbench.locking import output_lock
from handbench.seeding import stream_rng, validation_torch_seed
from handbench.training.batch import model_batch
from handbench.training.checkpoint import save_checkpoint
from handbench.training.config import MAX_SEED, MAX_THREADS, PRESETS, TrainConfig, config_from_dict, config_to_dict
from handbench.training.data import WindowSampler, load_demos, split_episodes
from handbench.training.logs import write_loss_log
from handbench.training.normalizer import Normalizer, fit_policy_normalizer

POLICY_FILE, STATE_FILE = "policy.pt", "train_state.pt"


@dataclass
class TrainRequest:
    """Everything ``handbench train`` decides; ``model_overrides``/``train_overrides`` patch the preset."""

    policy: str
    dataset: Path
    out: Path
    obs_mode: str | None = None
    preset: str = "cpu-small"
    steps: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # how the run was started, kept in the checkpoint's provenance (leaderboard entries show it)

    def validate(self) -> None:
        """Refuse, in one line, values no run can use (before anything is read or written)."""
        if not 0 <= self.seed <= MAX_SEED:
            raise HandbenchError(f"--seed must be an integer in 0..{MAX_SEED}, got {self.seed}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise HandbenchError(f"--threads must be an integer in 1..{MAX_THREADS}, got {self.threads}")
        if self.steps is not None and self.steps < 1:
            raise HandbenchError(f"--steps must be at least 1; got {self.steps}")
        ensemble = self.model_overrides.get("temporal_ensemble_m")
        if ensemble is not None and not (math.isfinite(ensemble) and ensemble >= 0):
            raise HandbenchError(f"--temporal-ensemble must be a finite number >= 0, got {ensemble}")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise HandbenchError(f"--out {out} is a file; give a folder for the run")
        if out.is_dir() and any(out.iterdir()) and not any((out / name).exists() for name in (POLICY_FILE, STATE_FILE)):
            raise HandbenchError(f"--out {out} holds other files and no training run ({POLICY_FILE}, {STATE_FILE}); "
                                 "give a new or empty folder, or a run folder to resume")


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    train_loss: float
    val_loss: float | None
    seconds_per_step: float
    resumed_from: int
    amplified_state_dims: int = 0  # unguarded state dimensions with 1e-4 < std < AMPLIFIED_STD (see the normaliser)


AMPLIFIED_STD = 0.01  # hb-v2's state_std_floor: below it, an unguarded normaliser amplifies a dimension > 100x


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a clear error for an unusable device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise HandbenchError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:<index>") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HandbenchError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise HandbenchError(f"unsupported device {name!r}; valid: auto, cpu, cuda, cuda:<index>")
    return device


def default_threads() -> int:
    """Half the CPU cores (at most 8): oversubscribed OpenMP threads slow small models down badly."""
    return max(1, min((os.cpu_count() or 1) // 2, 8))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and torch's global generators with the training seed; return the batch stream."""
    random.seed(seed)
    torch.manual_seed(seed)
    return stream_rng("batches", seed)


def build_configs(request: TrainRequest) -> tuple[Any, TrainConfig, Any]:
    """(model config, train config, baseline module) from the preset plus overrides."""
    from handbench.baselines import get_baseline

    module = get_baseline(request.policy)
    if request.preset not in PRESETS:
        raise unknown_choice("preset", request.preset, PRESETS)
    preset = module.PRESETS[request.preset]
    model_config = config_from_dict(module.CONFIG, {**config_to_dict(preset.model), **request.model_overrides})
    train_values = {**config_to_dict(preset.train), **request.train_overrides}
    if request.steps is not None:
        train_values["steps"] = request.steps
    return model_config, config_from_dict(TrainConfig, train_values), module


def train(request: TrainRequest) -> TrainResult:
    """Train (or resume) the run in ``request.out``, holding its lock; a refused or failed start leaves no
    empty run folder behind, and Ctrl-C says which checkpoint (if any) a rerun resumes from."""
    request.validate()
    device = resolve_device(request.device)
    model_config, train_config, module = build_configs(request)
    with removed_if_empty_on_error(request.out), output_lock(request.out):
        return _train(request, device, model_config, train_config, module)


def _train(request: TrainRequest, device: torch.device, model_config, train_config: TrainConfig,
           module) -> TrainResult:
    threads = request.threads or default_threads()
    torch.set_num_threads(threads)
    demos, attrs = load_demos(request.dataset, request.obs_mode)
    out = ensure_writable_dir(request.out)
    dataset_hash = content_hash(request.dataset)
    train_episodes, val_episodes = split_episodes(demos.num_episodes, train_config.val_fraction, request.seed)
    train_data, val_data = demos.select(train_episodes), demos.select(val_episodes)
    normalizer = fit_policy_normalizer(train_data.state, train_data.actions, train_config.state_std_floor,
                                       train_config.clamp_states)
    samplers = {name: WindowSampler(data, model_config.obs_steps, model_config.horizon)
                for name, data in (("train", train_data), ("val", val_data)) if data.num_episodes}

    rng = seed_everything(request.seed)
    try:
        model = module.MODEL(model_config, demos.spec).to(device)
    except ValueError as exc:
        raise HandbenchError(f"bad {request.policy} config: {exc}") from exc
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.lr, betas=train_config.betas,
                                  weight_decay=train_config.weight_decay)
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    scheduler = get_cosine_schedule_with_warmup(optimizer, train_config.warmup_steps, train_config.steps)
    ema = EMAModel(model.parameters(), decay=train_config.ema_max_decay, use_ema_warmup=True,
                   power=train_config.ema_power) if train_config.ema else None
    signature = {"policy": request.policy, "preset": request.preset, "obs_mode": demos.spec.obs_mode,
                 "seed": request.seed, "dataset_hash": dataset_hash, "model_config": config_to_dict(model_config),
                 "train_config": config_to_dict(train_config)}
    rows: list[dict[str, Any]] = []
    start = 0
    state_path = out / STATE_FILE
    if state_path.exists():
        start, rows = _resume(state_path, signature, model, optimizer, scheduler, ema, rng)

    eval_model = copy.deepcopy(model).eval()
    provenance = {"dataset_path": str(Path(request.dataset).resolve()), "dataset_hash": dataset_hash,
                  "dataset_attrs": attrs, "obs_mode": demos.spec.obs_mode, "seed": request.seed,
                  "train_episodes": list(train_data.episode_names), "val_episodes": list(val_data.episode_names),
                  "device": str(device), "torch_threads": threads,
                  **({"command": request.command} if request.command else {})}

    def deployable_weights() -> dict[str, torch.Tensor]:
        eval_model.load_state_dict(model.state_dict())
        if ema is not None:
            ema.copy_to(eval_model.parameters())
        return eval_model.state_dict()

    def save(step: int) -> Path:
        _save_state(state_path, signature, step, model, optimizer, scheduler, ema, rng, rows)
        write_loss_log(rows, out)
        return save_checkpoint(out / POLICY_FILE, policy=request.policy, preset=request.preset,
                               model_config=config_to_dict(model_config), train_config=config_to_dict(train_config),
                               spec=demos.spec, normalizer=normalizer, weights=deployable_weights(),
                               provenance={**provenance, "steps": step})

    from tqdm.auto import tqdm

    bar = tqdm(total=train_config.steps, initial=start, disable=not request.progress, desc=f"train {request.policy}",
               unit="step", dynamic_ncols=True)
    window: dict[str, list[float]] = {}
    step_seconds = 0.0  # optimisation only (no validation, no checkpoint writing)
    model.train()
    saved = [start] if start else []  # steps whose checkpoint is on disk
    try:
        for step in range(start, train_config.steps):
            began = time.perf_counter()
            frames = rng.integers(len(samplers["train"]), size=train_config.batch_size)
            batch = model_batch(samplers["train"].batch(frames), normalizer, device)
            loss, terms = model.compute_loss(batch)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                # Stop before the update spreads NaN into the weights; train_state.pt keeps the last finite state.
                saved = step - step % train_config.checkpoint_every
                raise HandbenchError(f"{request.policy}: the training loss became {loss_value} at step {step + 1} "
                                     f"(last checkpoint: step {saved}); lower the learning rate or check the dataset")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.step(model.parameters())
            step_seconds += time.perf_counter() - began
            for name, value in {"train_loss": loss_value, **terms}.items():
                window.setdefault(name, []).append(value)
            done = step + 1
            last = done == train_config.steps
            bar.update(1)
            if done % train_config.log_every == 0 or last:
                row = {"step": done, "lr": scheduler.get_last_lr()[0],
                       **{k: float(np.mean(v)) for k, v in window.items()}}
                window = {}
                if "val" in samplers and (done % train_config.val_every == 0 or last):
                    deployable_weights()
                    row["val_loss"] = _validation_loss(eval_model, samplers["val"], normalizer, device, train_config,
                                                       request.seed)
                rows.append(row)
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", **({"val": f"{row['val_loss']:.4f}"}
                                                                     if "val_loss" in row else {}))
            if done % train_config.checkpoint_every == 0 or last:
                save(done)
                saved.append(done)
    except KeyboardInterrupt:
        bar.close()
        where = f"training stopped during step {step + 1}"
        if saved:
            raise KeyboardInterrupt(f"{where}; {out} keeps the checkpoint of step {saved[-1]}: rerun the same "
                                    "command to resume from it") from None
        raise KeyboardInterrupt(f"{where}, before its first checkpoint (every {train_config.checkpoint_every} "
                                "steps): nothing was saved") from None
    bar.close()
    if start >= train_config.steps:  # nothing left to do: make sure the final files exist
        save(train_config.steps)
    val_losses = [r["val_loss"] for r in rows if "val_loss" in r]
    return TrainResult(checkpoint=out / POLICY_FILE, steps=train_config.steps,
                       train_loss=rows[-1]["train_loss"] if rows else float("nan"),
                       val_loss=val_losses[-1] if val_losses else None,
                       seconds_per_step=step_seconds / max(train_config.steps - start, 1), resumed_from=start,
                       amplified_state_dims=0 if train_config.state_std_floor is not None else
                       int((normalizer.scale["state"] > 1.0 / AMPLIFIED_STD).sum()))


def _validation_loss(model, sampler: WindowSampler, normalizer: Normalizer, device: torch.device,
                     config: TrainConfig, seed: int) -> float:
    """Mean loss over fixed validation batches with fixed model noise, so values are comparable over time."""
    rng = stream_rng("validation", seed)
    losses = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(validation_torch_seed(seed))
        for _ in range(config.val_batches):
            batch = model_batch(sampler.batch(rng.integers(len(sampler), size=config.batch_size)), normalizer, device)
            with torch.no_grad():
                losses.append(float(model.compute_loss(batch)[0]))
    return float(np.mean(losses))


def _save_state(path: Path, signature: dict, step: int, model, optimizer, scheduler, ema, rng: np.random.Generator,
                rows: list[dict]) -> None:
    state = {"signature": signature, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "ema": ema.state_dict() if ema is not None else None,
             "torch_rng": torch.get_rng_state(), "numpy_rng": rng.bit_generator.state, "rows": rows}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, signature: dict, model, optimizer, scheduler, ema,
            rng: np.random.Generator) -> tuple[int, list[dict]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file
        raise HandbenchError(f"cannot resume from {path} ({type(exc).__name__}); "
                             "delete it or use another --out") from exc
    recorded = dict(state.get("signature", {}))
    if isinstance(recorded.get("train_config"), dict):  # a run begun before a TrainConfig field existed had its default
        recorded["train_config"] = {**config_to_dict(TrainConfig()), **recorded["train_config"]}
    differing = sorted(k for k in signature if recorded.get(k) != signature[k])
    if differing:
        raise HandbenchError(f"{path.parent} holds a run with different {', '.join(differing)}; "
                             "use another --out (or delete that folder) to start a new run")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"]), list(state["rows"])

