"""The protocol manifest: it matches the task registry, and eval seeds never meet demo seeds."""

from __future__ import annotations

import json

import pytest

from handbench.errors import HandbenchError
from handbench.protocol import (
    EVAL_EPISODES,
    PROTOCOL_NAME,
    build_protocol,
    eval_seeds,
    load_protocol,
    manifest_path,
    parse_manifest,
)
from handbench.registry import task_names
from handbench.seeds import EVAL_SEED_BASE, demo_seeds, is_demo_seed


def test_manifest_is_up_to_date_with_the_task_registry():
    shipped, current = load_protocol(), build_protocol()
    stale = sorted(name for name in set(shipped.tasks) | set(current.tasks)
                   if shipped.tasks.get(name) != current.tasks.get(name))
    assert not stale, f"hb-v1.json is stale for {stale}: run `python -m handbench.protocol --write`"
    assert manifest_path().read_text() == current.to_json()
    assert sorted(shipped.tasks) == sorted(task_names())


def test_every_task_has_enough_seeds_and_the_fixed_fields():
    protocol = load_protocol()
    assert protocol.name == PROTOCOL_NAME == "hb-v1"
    for name, entry in protocol.tasks.items():
        assert len(entry.eval_seeds) >= 50
        assert entry.training_seeds == 3
        assert entry.episode_steps > 0 and entry.success_rule
        assert "state" in entry.obs_modes
        assert eval_seeds(name) == list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + EVAL_EPISODES))


def test_demo_seeds_never_meet_eval_seeds():
    all_eval = {seed for entry in load_protocol().tasks.values() for seed in entry.eval_seeds}
    assert all_eval and not any(is_demo_seed(seed) for seed in all_eval)
    assert min(all_eval) >= EVAL_SEED_BASE
    # the demo split ends right below the first eval seed: its last seeds are demo seeds, then it refuses
    tail = demo_seeds(start=EVAL_SEED_BASE - 3)
    assert [next(tail) for _ in range(3)] == [EVAL_SEED_BASE - 3, EVAL_SEED_BASE - 2, EVAL_SEED_BASE - 1]
    with pytest.raises(HandbenchError):
        next(tail)


def test_manifest_with_a_demo_seed_or_garbage_is_refused():
    body = json.loads(manifest_path().read_text())
    task = next(iter(body["tasks"]))
    body["tasks"][task]["eval_seeds"][0] = 7
    with pytest.raises(HandbenchError, match="demo seeds"):
        parse_manifest(json.dumps(body))
    with pytest.raises(HandbenchError, match="corrupt"):
        parse_manifest("{not json")


def test_protocol_refuses_another_task_version_hand_or_mode():
    entry = load_protocol().task("lift-cube")
    entry.check(entry.task_version, "hb16", "state", PROTOCOL_NAME)
    with pytest.raises(HandbenchError, match="v99"):
        entry.check(99, "hb16", "state", PROTOCOL_NAME)
    with pytest.raises(HandbenchError, match="observation mode"):
        entry.check(entry.task_version, "hb16", "depth", PROTOCOL_NAME)
    with pytest.raises(HandbenchError, match="unknown protocol"):
        load_protocol("hb-v999")
