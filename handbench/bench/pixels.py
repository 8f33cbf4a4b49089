"""Training from pixels: optimizer steps/s of BC and Diffusion Policy (cpu-small, one thread, two cameras) and
where a step's time goes, measured in one process so the ratios hold on a loaded machine.

Figures, per policy: steps/s and seconds per 1000 steps at 96x96 and 64x64 frames with the preset's image
encoder; the share of a step spent gathering and converting the batch (``data``) and in the image encoder's
forward and backward pass (``encoder``); and the speed-up of the preset's encoder widths over the earlier
(32, 64, 128). Every figure is timed on the same small rendered dataset (made once per machine in the temp folder).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from handbench.bench.report import BenchConfig, BenchReport, Figure
from handbench.seeding import stream_rng

PIXEL_POLICIES = ("bc", "diffusion")
FRAME_SIZES = ((96, 96), (64, 64))
EARLIER_IMAGE_CHANNELS = (32, 64, 128)  # the cpu-small encoder widths before handbench 0.2's pixels speed-up
TIMING_CAMERAS = ("overview", "top")


def pixel_timing_dataset(image_size: tuple[int, int], num_demos: int = 2) -> Path:
    """A small lift-cube/hb16 expert dataset with two cameras at ``image_size``, made once per machine."""
    from handbench.generate import EnvConfig, GenerateConfig, generate_demos

    height, width = image_size
    folder = Path(tempfile.gettempdir()) / f"handbench-timing-pixels-{num_demos}"
    path = folder / f"lift-cube-hb16-{height}x{width}.hdf5"
    if not path.exists():
        generate_demos(GenerateConfig(EnvConfig("lift-cube", "hb16", obs_mode="pixels", cameras=TIMING_CAMERAS,
                                                image_size=image_size), num_demos=num_demos, out=path,
                                      overwrite=True, progress=False))
    return path


def time_steps(policy: str, dataset: Path, steps: int, **model_overrides) -> dict[str, float]:
    """Seconds per optimizer step of a fresh preset model (one thread), split into ``data`` (window gather and
    tensors), ``encoder`` (the image encoder's forward + backward, timed on the same batch) and ``step`` (the
    whole step: data, loss, backward, optimizer). One warm-up step is not counted."""
    from handbench.training.batch import model_batch
    from handbench.training.data import WindowSampler, load_demos
    from handbench.training.normalizer import fit_policy_normalizer
    from handbench.training.trainer import TrainRequest, build_configs

    torch.set_num_threads(1)
    model_config, train_config, module = build_configs(TrainRequest(policy=policy, dataset=dataset, out=Path("."),
                                                                    model_overrides=model_overrides))
    demos, _ = load_demos(dataset, "pixels")
    torch.manual_seed(0)
    model = module.MODEL(model_config, demos.spec)
    normalizer = fit_policy_normalizer(demos.state, demos.actions)
    sampler = WindowSampler(demos, model_config.obs_steps, model_config.horizon)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.lr)
    rng = stream_rng("benchmark", 0)
    totals = {"data": 0.0, "encoder": 0.0, "step": 0.0}
    for index in range(steps + 1):
        began = time.perf_counter()
        batch = model_batch(sampler.batch(rng.integers(len(sampler), size=train_config.batch_size)), normalizer,
                            torch.device("cpu"))
        loaded = time.perf_counter()
        loss, _ = model.compute_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        finished = time.perf_counter()
        model.obs_encoder(batch["state"], batch["images"]).sum().backward()  # the encoder alone, same batch
        encoded = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if index:
            totals["data"] += loaded - began
            totals["step"] += finished - began
            totals["encoder"] += encoded - finished
    return {key: value / steps for key, value in totals.items()}


def train_pixels_section(config: BenchConfig, report: BenchReport) -> None:
    """``handbench bench --only train-pixels``."""
    steps = 3 if config.quick else 12
    for policy in PIXEL_POLICIES:
        for size in FRAME_SIZES:
            timing = time_steps(policy, pixel_timing_dataset(size), steps)
            label = f"{policy}: {size[0]}x{size[1]} frames, 2 cameras"
            report.figures.append(Figure("train-pixels", label, 1.0 / timing["step"], "steps/s",
                                         note=f"{1000 * timing['step']:.0f} s per 1000 steps"))
            if size == FRAME_SIZES[0]:
                report.figures.append(Figure("train-pixels", f"{policy}: image encoder share of a step",
                                             100 * timing["encoder"] / timing["step"], "%",
                                             note="forward + backward of the image encoder alone, same batch"))
                report.figures.append(Figure("train-pixels", f"{policy}: data share of a step",
                                             100 * timing["data"] / timing["step"], "%",
                                             note="window gather from cached uint8 frames + tensors"))
                earlier = time_steps(policy, pixel_timing_dataset(size), steps, image_channels=EARLIER_IMAGE_CHANNELS)
                report.figures.append(Figure("train-pixels", f"{policy}: preset encoder vs {EARLIER_IMAGE_CHANNELS}",
                                             earlier["step"] / timing["step"], "x faster",
                                             note=f"{size[0]}x{size[1]}; same run"))
