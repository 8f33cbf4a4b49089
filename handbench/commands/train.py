"""``handbench train``: train a reference baseline on a dataset -> one checkpoint file (``policy.pt``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from handbench.training.config import MAX_SEED, MAX_THREADS


def register(subparsers) -> None:
    from handbench.baselines import BASELINES
    from handbench.commands.options import integer, number
    from handbench.training.config import PRESETS

    parser = subparsers.add_parser("train", help="train a baseline (act, diffusion, ibc, bc) on a demo dataset")
    parser.add_argument("--policy", required=True, choices=tuple(BASELINES), help="baseline to train")
    parser.add_argument("--dataset", required=True, type=Path, help="canonical HDF5 demos (handbench generate-demos)")
    parser.add_argument("--obs", choices=("state", "pixels"), default=None,
                        help="observation mode (default: the one the dataset was recorded in)")
    parser.add_argument("--steps", type=integer(1), default=None, help="gradient steps (default: the preset's)")
    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0,
                        help="controls split, initial weights, batches and noise")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:<i>")
    parser.add_argument("--threads", type=integer(1, MAX_THREADS), default=None,
                        help="torch CPU threads (default: half the cores, max 8)")
    parser.add_argument("--preset", choices=PRESETS, default="cpu-small",
                        help="model and loop sizes: cpu-small (default, ~20 min on 2 CPU cores) or paper")
    parser.add_argument("--temporal-ensemble", type=_ensemble_weight, default=None, metavar="M|off",
                        help="how the policy executes its action chunks: temporal ensembling with weights "
                             "exp(-M * i), oldest chunk first (ACT uses 0.01), or off: run the preset's "
                             "action_steps of each chunk, then query again (Diffusion Policy's own execution); "
                             "default: the preset's")
    parser.add_argument("--state-std-floor", type=number(0, low_open=True), default=None, metavar="STD",
                        help="least standard deviation a state dimension is divided by when normalised (hb-v2's "
                             "reference runs: 0.01, as ACT); default: the preset's (none)")
    parser.add_argument("--clamp-states", action="store_true", default=None,
                        help="keep each normalised state dimension within the range the training data reached "
                             "(hb-v2's reference runs); default: the preset's (off)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default: runs/<policy>-<dataset name>-<obs>-s<seed>); rerun to resume")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


ENSEMBLE_OFF = "off"


def _ensemble_weight(text: str) -> float | str:
    """``--temporal-ensemble``: a finite number >= 0, or ``off``."""
    from handbench.commands.options import number

    if text == ENSEMBLE_OFF:
        return ENSEMBLE_OFF
    try:
        return number(0)(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or off)") from None


def _ensemble_override(value: float | str) -> float | None:
    """The model-config value of ``temporal_ensemble_m``: None turns ensembling off."""
    return None if value == ENSEMBLE_OFF else float(value)


def run(args: argparse.Namespace) -> int:
    from handbench.training.trainer import TrainRequest, train

    obs_label = args.obs or "default"
    out = args.out or Path("runs") / f"{args.policy}-{args.dataset.stem}-{obs_label}-s{args.seed}"
    overrides = ({} if args.temporal_ensemble is None
                 else {"temporal_ensemble_m": _ensemble_override(args.temporal_ensemble)})
    guard = {name: value for name, value in (("state_std_floor", args.state_std_floor),
                                             ("clamp_states", args.clamp_states)) if value is not None}
    request = TrainRequest(policy=args.policy, dataset=args.dataset, out=out, obs_mode=args.obs, preset=args.preset,
                           steps=args.steps, seed=args.seed, device=args.device, threads=args.threads,
                           progress=not args.no_progress, model_overrides=overrides, train_overrides=guard,
                           command=shlex.join(["handbench", *sys.argv[1:]]))
    result = train(request)
    if result.resumed_from:
        print(f"resumed from step {result.resumed_from}")
    val = "n/a" if result.val_loss is None else f"{result.val_loss:.4f}"
    print(f"{args.policy}: {result.steps} steps, final train loss {result.train_loss:.4f}, validation loss {val}, "
          f"{1000 * result.seconds_per_step:.1f} ms/step")
    print(f"checkpoint: {result.checkpoint}")
    print(f"loss log: {out / 'losses.csv'} and {out / 'losses.png'}")
    if result.amplified_state_dims:
        print(f"note: {result.amplified_state_dims} state dimension(s) barely vary in the demos (std < 0.01): the "
              "policy sees a deflection there as a huge input; --state-std-floor 0.01 --clamp-states guards against "
              "it (hb-v2's reference runs), `handbench check-inputs` measures it")
    return 0
