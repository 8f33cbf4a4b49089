"""Baselines: ms per model query (CPU, batch 1) and optimizer steps/s, for untrained preset models.

``python -m handbench.bench.policies --policy diffusion --dataset demos/lift-cube-hb16.hdf5`` times an
untrained model of the preset (time does not depend on the weights); ``--checkpoint policy.pt`` times a
trained one. Reported: the mean time of a policy call over an episode run by the rollout engine at one lane
(amortised over the action queue), the median time of one model query (a replanning step) and the slowest call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from handbench.bench.report import BenchConfig, BenchReport, Figure
from handbench.errors import HandbenchError
from handbench.training.runtime import TrainedPolicy

# The bounds on one model query at batch 1 on the reference 2-core CPU (BC has none).
INFERENCE_LIMITS_MS = {"act": 5.0, "diffusion": 50.0, "ibc": 50.0}


@dataclass
class InferenceTiming:
    policy: str
    per_action_ms: float  # mean time of the engine's policy calls over the episode
    per_query_ms: float  # median time of one model query (predict a chunk)
    slowest_action_ms: float  # the slowest of those calls
    threads: int

    def line(self) -> str:
        return (f"{self.policy}: {self.per_action_ms:.2f} ms per action (mean policy call, rollout engine, 1 lane), "
                f"{self.per_query_ms:.2f} ms per model query (median), slowest call {self.slowest_action_ms:.2f} ms, "
                f"{self.threads} torch thread(s)")


def measure_inference(policy: TrainedPolicy, env, steps: int = 40, queries: int = 20, seed: int = 1_000_000,
                      label: str = "") -> InferenceTiming:
    """Run one episode of up to ``steps`` control steps through the rollout engine at one lane (the path of
    ``handbench eval --lanes 1``), timing each policy call the engine makes, then ``queries`` bare model queries."""
    from handbench.bench.timing import TimedDriver
    from handbench.rollout import EpisodeRequest, driver_for, run_lanes

    warm_up = EpisodeRequest(seed, 1, stop_on_success=False)
    list(run_lanes([env], driver_for(policy, 1), [warm_up]))  # first-call allocations
    with TimedDriver(driver_for(policy, 1)) as driver:
        trace = next(run_lanes([env], driver, [EpisodeRequest(seed, steps, stop_on_success=False)]))
    if trace.error:
        raise HandbenchError(f"timing {label or 'the policy'}: its episode failed: {trace.error}")
    act_times = driver.call_seconds
    query_times = []
    for _ in range(queries):
        began = time.perf_counter()
        policy.predict_chunks(1, [0])
        query_times.append(time.perf_counter() - began)
    return InferenceTiming(label or policy.provenance.get("policy", "policy"), 1000 * statistics.fmean(act_times),
                           1000 * statistics.median(query_times), 1000 * max(act_times), torch.get_num_threads())


def untrained_policy(name: str, dataset: str | Path, preset: str = "cpu-small", obs_mode: str | None = None,
                     device: str = "cpu", **model_overrides) -> TrainedPolicy:
    """A preset-sized model with random weights and the dataset's normaliser (enough to time inference)."""
    from handbench.training.data import load_demos
    from handbench.training.normalizer import fit_policy_normalizer
    from handbench.training.trainer import TrainRequest, build_configs

    model_config, _, module = build_configs(TrainRequest(policy=name, dataset=Path(dataset), out=Path("."),
                                                         preset=preset, model_overrides=model_overrides))
    demos, attrs = load_demos(dataset, obs_mode)
    normalizer = fit_policy_normalizer(demos.state, demos.actions)
    torch.manual_seed(0)
    model = module.MODEL(model_config, demos.spec)
    return TrainedPolicy(model, normalizer, demos.spec, device=device,
                         provenance={**attrs, "policy": name, "obs_mode": demos.spec.obs_mode})


def timing_dataset(num_demos: int = 3, task: str = "lift-cube", hand: str = "hb16") -> Path:
    """A small expert dataset of (task, hand) in a temporary folder, made once per machine, for benchmarks."""
    import tempfile

    from handbench.generate import EnvConfig, GenerateConfig, generate_demos

    path = Path(tempfile.gettempdir()) / f"handbench-timing-{num_demos}" / f"{task}-{hand}.hdf5"
    if not path.exists():
        generate_demos(GenerateConfig(EnvConfig(task, hand), num_demos=num_demos, out=path,
                                      overwrite=True, progress=False))
    return path


def inference_ms_per_action(policy: str, quick: bool = False) -> float:
    """``handbench bench``'s figure: median ms of one model query (batch 1, CPU, one thread, cpu-small size).

    One query is what an action costs when the policy replans every step, the bound the issue sets
    (ACT <= 5 ms, Diffusion Policy with DDIM 10 <= 50 ms, IBC <= 50 ms); action queues amortise it.
    """
    torch.set_num_threads(1)
    model = untrained_policy(policy, timing_dataset())
    env = env_for(model)
    timing = measure_inference(model, env, steps=10 if quick else 40, queries=5 if quick else 20)
    env.close()
    return timing.per_query_ms


def train_steps_per_s(policy: str, quick: bool = False) -> float:
    """``handbench bench``'s figure: optimizer steps per second with the cpu-small preset on one thread."""
    import tempfile

    from handbench.training.trainer import TrainRequest, train

    steps = 20 if quick else 60
    with tempfile.TemporaryDirectory() as out:
        result = train(TrainRequest(policy=policy, dataset=timing_dataset(), out=Path(out), steps=steps, threads=1,
                                    progress=False))
    return 1.0 / result.seconds_per_step


def env_for(policy: TrainedPolicy):
    """The env a policy was trained for (task, hand, observation mode, cameras and image size)."""
    from handbench.registry import make_env

    prov, spec = policy.provenance, policy.spec
    pixels = spec.obs_mode == "pixels"
    version = int(prov["task_version"]) if "task_version" in prov else None
    hand_version = int(prov.get("hand_version", 0))  # absent: made before hands had versions (v0)
    return make_env(prov["task"], prov["hand"], version, hand_version, obs_mode=spec.obs_mode,
                    cameras=list(spec.cameras) if pixels else None,
                    image_size=tuple(spec.image_size) if pixels else (96, 96))


def inference_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.baselines import BASELINES

    for policy in BASELINES:
        report.figures.append(Figure("inference", f"{policy}: CPU, batch 1, one model query",
                                     inference_ms_per_action(policy, quick=config.quick), "ms/action",
                                     limit=INFERENCE_LIMITS_MS.get(policy), higher_is_better=False))


def train_section(config: BenchConfig, report: BenchReport) -> None:
    from handbench.baselines import BASELINES

    for policy in BASELINES:
        report.figures.append(Figure("train", f"{policy}: CPU", train_steps_per_s(policy, quick=config.quick),
                                     "steps/s"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handbench.bench.policies", description=__doc__.split("\n")[0])
    parser.add_argument("--policy", nargs="+", default=["act", "diffusion", "ibc", "bc"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="time untrained preset models built for this dataset")
    source.add_argument("--checkpoint", type=Path, help="time a trained checkpoint")
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--obs", choices=("state", "pixels"), default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    from handbench.training.checkpoint import load_policy

    torch.set_num_threads(args.threads)
    try:
        policies = ([load_policy(args.checkpoint)] if args.checkpoint else
                    [untrained_policy(name, args.dataset, args.preset, args.obs) for name in args.policy])
        for policy in policies:
            env = env_for(policy)
            print(measure_inference(policy, env, steps=args.steps).line(), flush=True)
            env.close()
    except HandbenchError as exc:
        print(f"timing: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
