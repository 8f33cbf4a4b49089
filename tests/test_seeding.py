"""One seeding module: named streams, the streams hb-v1 depends on bit-identical, per-episode policy noise."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.seeding import np_random

from handbench.errors import HandbenchError
from handbench.seeding import (
    FIXED_POLICY_NOISE_SEED,
    STREAMS,
    bootstrap_rng,
    policy_noise_seed,
    stream_rng,
    stream_seed,
    validation_torch_seed,
)

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 17, 999_999, 1_000_000, 1_000_049)


def draws(rng) -> np.ndarray:
    return np.concatenate([rng.random(5), rng.integers(0, 2**31, 5), rng.normal(size=5)])


@pytest.mark.parametrize("seed", SEEDS)
def test_streams_hb_v1_depends_on_draw_exactly_what_they_drew_before(seed):
    # The formulas the published hb-v1 numbers were computed with, spelled out once more.
    assert np.array_equal(draws(stream_rng("episode", seed)), draws(np_random(seed)[0]))  # gymnasium's reset(seed)
    assert np.array_equal(draws(stream_rng("expert", seed)), draws(np.random.default_rng([seed, 0x5EED])))
    assert np.array_equal(draws(stream_rng("data_split", seed)), draws(np.random.default_rng([seed, 0xDA7A])))
    assert np.array_equal(draws(stream_rng("validation", seed)), draws(np.random.default_rng([seed, 0x7A1])))
    assert np.array_equal(draws(stream_rng("batches", seed)), draws(np.random.default_rng(seed)))
    assert validation_torch_seed(seed) == seed + 1
    random_floor = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))  # the README's floors table
    assert np.array_equal(draws(stream_rng("random_floor", seed)), draws(random_floor))
    assert policy_noise_seed(seed, "fixed") == FIXED_POLICY_NOISE_SEED == 0
    assert np.array_equal(bootstrap_rng(seed).randint(0, 9, 20), np.random.RandomState(seed).randint(0, 9, 20))


def test_frozen_streams_are_pinned_to_their_numbers():
    # A numpy that changed SeedSequence or PCG64 would change hb-v1's initial states and demos: catch it here.
    assert stream_rng("episode", 1_000_000).integers(0, 2**31, 3).tolist() == [1453380692, 881923633, 1619173014]
    assert stream_rng("expert", 1_000_000).integers(0, 2**31, 3).tolist() == [641475408, 1993842915, 1883707976]


def test_every_stream_has_its_own_key_and_a_doc():
    keyed = [s.key for s in STREAMS.values() if s.key]
    assert len(keyed) == len(set(keyed))
    for stream in STREAMS.values():
        assert stream.doc and stream.seed_is
    unkeyed = [s.name for s in STREAMS.values() if not s.key and not s.spawn_key]
    assert sorted(unkeyed) == ["batches", "episode"]  # different seed spaces: episode seeds, training seeds


def test_policy_noise_per_episode_is_deterministic_distinct_and_independent_of_other_streams():
    seeds = [policy_noise_seed(seed, "episode") for seed in range(1_000_000, 1_000_050)]
    assert seeds == [policy_noise_seed(seed, "episode") for seed in range(1_000_000, 1_000_050)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[0] == stream_seed("policy_noise", 1_000_000) != stream_seed("expert", 1_000_000)
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(seeds[0])  # torch takes the seed as it is
    assert torch.randn(3, generator=generator).shape == (3,)


def test_bad_stream_names_modes_and_seeds_get_one_clear_line():
    with pytest.raises(HandbenchError, match="unknown random stream 'nope'; valid: episode, expert"):
        stream_rng("nope", 0)
    with pytest.raises(HandbenchError, match="unknown policy_noise mode 'per-step'; valid: fixed, episode"):
        policy_noise_seed(0, "per-step")
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(HandbenchError, match="non-negative integer"):
            stream_rng("expert", bad)


def test_no_random_generator_is_seeded_outside_the_seeding_module():
    pattern = re.compile(r"default_rng\(|np\.random\.seed\(|RandomState\(|SeedSequence\(|0x5EED|0xDA7A|0x7A1\b")
    offenders = []
    for folder in ("handbench", "tasks", "baselines"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "seeding.py" and path.parent.name == "handbench":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "derive random streams in handbench/seeding.py:\n" + "\n".join(offenders)
