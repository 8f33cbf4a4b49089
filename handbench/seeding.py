"""Every source of randomness in handbench: seed splits and named random streams.

Seed splits. Demonstrations use the seeds 0, 1, 2, ... below :data:`EVAL_SEED_BASE`; the evaluation
protocol's seeds start at :data:`EVAL_SEED_BASE`, so the two splits can never meet.

Named streams. Each random stream is derived from a seed with numpy's :class:`numpy.random.SeedSequence`,
mixed with the stream's own key, so two streams drawn from the same seed are independent and adding a new
stream never shifts an old one::

    rng = stream_rng("expert", episode_seed)     # == np.random.default_rng(SeedSequence([seed, 0x5EED]))

The keys of the streams that hb-v1's published numbers depend on are frozen: changing one changes the
initial states, demonstrations, data splits or validation losses that hb-v1 results were computed from.
A new stream gets a new key (:data:`STREAMS`); an existing key never changes.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from handbench.errors import HandbenchError

EVAL_SEED_BASE = 1_000_000
# The largest episode seed: the evaluator seeds torch's global generator with the episode seed
# (seed_global_rngs), and torch.manual_seed takes at most 2**64 - 1.
MAX_EPISODE_SEED = 2**64 - 1

# ---------------------------------------------------------------------------------------------- seed splits


def demo_seeds(start: int = 0) -> Iterator[int]:
    """The demo split, in order; an episode's seed is its only source of randomness.

    Raises :class:`HandbenchError` once the split reaches :data:`EVAL_SEED_BASE`.
    """
    seed = start
    while seed < EVAL_SEED_BASE:
        yield seed
        seed += 1
    raise HandbenchError(f"demo seed split exhausted (seeds must stay below {EVAL_SEED_BASE})")


def is_demo_seed(seed: int) -> bool:
    return 0 <= seed < EVAL_SEED_BASE


# ---------------------------------------------------------------------------------------------- named streams


@dataclass(frozen=True)
class Stream:
    """A named random stream: ``SeedSequence([seed, *key])`` (or ``SeedSequence(seed)`` for an empty key)."""

    name: str
    key: tuple[int, ...]
    seed_is: str  # what the seed of this stream is (an episode seed, a training seed, ...)
    doc: str
    frozen_by: str = ""  # the released protocol whose published numbers depend on this exact stream
    spawn_key: tuple[int, ...] = ()  # SeedSequence's spawn_key (kept for a stream first written that way)


STREAMS: dict[str, Stream] = {s.name: s for s in (
    Stream("episode", (), "episode seed",
           "initial state of an episode: gymnasium's env.np_random after reset(seed=...) (Task.sample draws "
           "from it)", frozen_by="hb-v1"),
    Stream("expert", (0x5EED,), "episode seed",
           "scripted expert: its strategy first, then its Gaussian action noise, from one stream", frozen_by="hb-v1"),
    Stream("data_split", (0xDA7A,), "training seed",
           "which demonstrations go to the validation split", frozen_by="hb-v1"),
    Stream("batches", (), "training seed",
           "training batch sampling (window indices); torch's global generator is seeded with the training "
           "seed itself for model noise (dropout, diffusion noise)", frozen_by="hb-v1"),
    Stream("validation", (0x7A1,), "training seed",
           "fixed validation batches, so validation losses are comparable over training", frozen_by="hb-v1"),
    Stream("policy_noise", (0x9015E,), "episode seed",
           "a policy's sampling noise in one episode, under a protocol whose policy_noise is 'episode'"),
    Stream("benchmark", (0xBE7C,), "benchmark seed",
           "random actions of the physics benchmark"),
    Stream("random_floor", (), "episode seed",
           "the random floor policy's uniform actions (README floors table)", spawn_key=(1,)),
)}

# hb-v1 evaluates with ``policy_noise: "fixed"``: a trained policy's sampling generator is re-seeded with
# this value at every reset, whatever the episode (as its published results were computed).
FIXED_POLICY_NOISE_SEED = 0
# Validation losses draw model noise from torch seeded with training seed + this offset (frozen by hb-v1).
VALIDATION_TORCH_SEED_OFFSET = 1
# The leaderboard's stratified bootstrap uses numpy's legacy RandomState, whose stream is frozen across numpy
# versions, seeded with this value, so the checked-in tables regenerate byte for byte on any machine.
BOOTSTRAP_SEED = 0
POLICY_NOISE_MODES = ("fixed", "episode")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HandbenchError(f"a seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def seed_sequence(stream: str, seed: int) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of ``stream`` for ``seed``.

    Raises :class:`HandbenchError` for an unknown stream name or a negative / non-integer seed.
    """
    if stream not in STREAMS:
        raise HandbenchError(f"unknown random stream {stream!r}; valid: {', '.join(STREAMS)}")
    seed, spec = _check_seed(seed), STREAMS[stream]
    return np.random.SeedSequence([seed, *spec.key] if spec.key else seed, spawn_key=spec.spawn_key)


def stream_rng(stream: str, seed: int) -> np.random.Generator:
    """A fresh numpy Generator (PCG64) on ``stream`` for ``seed``."""
    return np.random.default_rng(seed_sequence(stream, seed))


def stream_seed(stream: str, seed: int) -> int:
    """A 63-bit integer seed derived from ``stream`` and ``seed``, for generators that take an int (torch)."""
    state = seed_sequence(stream, seed).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def policy_noise_seed(episode_seed: int, policy_noise: str) -> int:
    """The seed a policy's sampling generator takes at the start of the episode ``episode_seed``.

    ``policy_noise`` is the protocol's mode: ``"fixed"`` (hb-v1) gives :data:`FIXED_POLICY_NOISE_SEED` for every
    episode; ``"episode"`` gives each episode its own stream derived from its seed, so an episode's noise never
    depends on which lane, worker or batch ran it. Raises :class:`HandbenchError` for another mode.
    """
    if policy_noise == "fixed":
        _check_seed(episode_seed)
        return FIXED_POLICY_NOISE_SEED
    if policy_noise == "episode":
        return stream_seed("policy_noise", episode_seed)
    raise HandbenchError(f"unknown policy_noise mode {policy_noise!r}; valid: {', '.join(POLICY_NOISE_MODES)}")


def validation_torch_seed(training_seed: int) -> int:
    """torch's seed for the model noise of validation losses (frozen by hb-v1)."""
    return _check_seed(training_seed) + VALIDATION_TORCH_SEED_OFFSET


def seed_global_rngs(seed: int) -> None:
    """Seed Python's, numpy's and (if imported) torch's global generators with ``seed``.

    For code outside handbench that draws from global generators: the evaluator calls it with the episode
    seed before building the policy, and training with the training seed.
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def bootstrap_rng(seed: int = BOOTSTRAP_SEED) -> np.random.RandomState:
    """The legacy RandomState on purpose: its stream is frozen across numpy versions (Generator's may change)."""
    return np.random.RandomState(_check_seed(seed))
