"""Protocol manifests: hb-v1 frozen byte for byte, open protocols generated from the registry, eval seeds never
meet demo seeds, and a protocol pins the task version the evaluator runs."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

import handbench.protocol as protocol_module
from handbench.errors import HandbenchError
from handbench.protocol import (
    DEFAULT_PROTOCOL,
    EVAL_EPISODES,
    build_protocol,
    check_released,
    eval_seeds,
    latest_released,
    load_protocol,
    manifest_path,
    manifest_problems,
    parse_manifest,
    protocol_names,
    release_manifest,
    write_manifest,
)
from handbench.registry import _registry, get_task_class, make_env, task_names, task_versions
from handbench.seeding import EVAL_SEED_BASE, demo_seeds, is_demo_seed

# hb-v1 is released: its manifest never changes. This pins its exact bytes.
HB_V1_SHA256 = "f4890c25e07dd8a4fa1162dff1c1d5993eb36789a75c4b4448d0f67533929ddc"


@pytest.fixture
def protocols_in(tmp_path, monkeypatch):
    """Manifests read and written in a temporary folder holding a copy of the shipped ones."""
    for name in protocol_names():
        shutil.copy(manifest_path(name), tmp_path / f"{name}.json")
    monkeypatch.setattr(protocol_module, "protocols_dir", lambda: tmp_path)
    load_protocol.cache_clear()
    yield tmp_path
    load_protocol.cache_clear()


def test_hb_v1_is_byte_identical_and_parses_as_released_width_one_fixed_noise():
    text = manifest_path("hb-v1").read_bytes()
    assert hashlib.sha256(text).hexdigest() == HB_V1_SHA256, "hb-v1 is released: its manifest must never change"
    hb_v1 = load_protocol("hb-v1")
    assert (hb_v1.format, hb_v1.released, hb_v1.lanes, hb_v1.policy_noise) == (1, True, 1, "fixed")
    assert hb_v1.to_json().encode() == text  # parsing and writing back loses nothing
    assert all(entry.task_version == 0 for entry in hb_v1.tasks.values())


def test_hb_v2_is_the_open_default_with_batched_lanes_and_per_episode_noise():
    assert DEFAULT_PROTOCOL == "hb-v2" and load_protocol().name == "hb-v2"
    hb_v2 = load_protocol("hb-v2")
    assert (hb_v2.format, hb_v2.released, hb_v2.lanes, hb_v2.policy_noise) == (2, False, 32, "episode")
    assert hb_v2.to_json() == manifest_path("hb-v2").read_text()
    assert latest_released() == "hb-v1"
    assert protocol_names()[:2] == ["hb-v1", "hb-v2"]


@pytest.mark.parametrize("name", ["hb-v1", "hb-v2"])
def test_shipped_manifests_agree_with_the_task_registry(name):
    assert manifest_problems(name) == [], f"run `python -m handbench.protocol --name {name}`"


def test_open_protocol_covers_every_registered_task_at_its_newest_version():
    hb_v2 = load_protocol("hb-v2")
    assert sorted(hb_v2.tasks) == sorted(task_names())
    for name, entry in hb_v2.tasks.items():
        assert entry.task_version == max(task_versions(name))
    assert build_protocol("hb-v2") == hb_v2


@pytest.mark.parametrize("name", ["hb-v1", "hb-v2"])
def test_every_task_has_enough_seeds_and_the_fixed_fields(name):
    protocol = load_protocol(name)
    for task, entry in protocol.tasks.items():
        assert len(entry.eval_seeds) >= 50
        assert entry.training_seeds == 3
        assert entry.episode_steps > 0 and entry.success_rule
        assert "state" in entry.obs_modes
        assert eval_seeds(task, name) == list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + EVAL_EPISODES))


def test_demo_seeds_never_meet_eval_seeds():
    all_eval = {seed for name in protocol_names() for entry in load_protocol(name).tasks.values()
                for seed in entry.eval_seeds}
    assert all_eval and not any(is_demo_seed(seed) for seed in all_eval)
    assert min(all_eval) >= EVAL_SEED_BASE
    # the demo split ends right below the first eval seed: its last seeds are demo seeds, then it refuses
    tail = demo_seeds(start=EVAL_SEED_BASE - 3)
    assert [next(tail) for _ in range(3)] == [EVAL_SEED_BASE - 3, EVAL_SEED_BASE - 2, EVAL_SEED_BASE - 1]
    with pytest.raises(HandbenchError):
        next(tail)


def test_manifest_with_a_demo_seed_bad_rollout_or_garbage_is_refused():
    body = json.loads(manifest_path("hb-v2").read_text())
    task = next(iter(body["tasks"]))
    seeded = json.loads(json.dumps(body))
    seeded["tasks"][task]["eval_seeds"][0] = 7
    with pytest.raises(HandbenchError, match="demo seeds"):
        parse_manifest(json.dumps(seeded))
    with pytest.raises(HandbenchError, match="policy_noise.*'sometimes'.*valid: episode, fixed"):
        parse_manifest(json.dumps({**body, "rollout": {"lanes": 8, "policy_noise": "sometimes"}}))
    with pytest.raises(HandbenchError, match="lanes must be >= 1"):
        parse_manifest(json.dumps({**body, "rollout": {"lanes": 0, "policy_noise": "episode"}}))
    with pytest.raises(HandbenchError, match="corrupt.*released"):
        parse_manifest(json.dumps({**body, "released": "yes"}))
    with pytest.raises(HandbenchError, match="corrupt.*format 9"):
        parse_manifest(json.dumps({**body, "format": 9}))
    with pytest.raises(HandbenchError, match="corrupt"):
        parse_manifest("{not json")


def test_protocol_refuses_another_hand_mode_or_unknown_name():
    entry = load_protocol("hb-v1").task("lift-cube")
    entry.check("hb16", "state", "hb-v1")
    with pytest.raises(HandbenchError, match="hand"):
        entry.check("allegro", "state", "hb-v1")
    with pytest.raises(HandbenchError, match="observation mode"):
        entry.check("hb16", "depth", "hb-v1")
    with pytest.raises(HandbenchError, match="unknown protocol 'hb-v999'; valid: hb-v1, hb-v2"):
        load_protocol("hb-v999")


def test_manifest_tool_writes_new_versions_and_never_rewrites_a_released_one(protocols_in):
    before = (protocols_in / "hb-v1.json").read_bytes()
    with pytest.raises(HandbenchError, match="hb-v1 is released and frozen"):
        write_manifest("hb-v1")
    assert protocol_module.main(["--name", "hb-v1", "--write"]) == 2
    assert (protocols_in / "hb-v1.json").read_bytes() == before
    path = write_manifest("hb-v3")
    hb_v3 = load_protocol("hb-v3")
    assert path == protocols_in / "hb-v3.json" and not hb_v3.released and hb_v3.tasks == load_protocol("hb-v2").tasks
    assert write_manifest("hb-v3") == path  # open: may be rewritten
    release_manifest("hb-v3")
    assert load_protocol("hb-v3").released and latest_released() == "hb-v3"
    with pytest.raises(HandbenchError, match="hb-v3 is released and frozen"):
        write_manifest("hb-v3")
    with pytest.raises(HandbenchError, match="already released"):
        release_manifest("hb-v3")
    assert protocol_module.main([]) == 0


def test_manifest_tool_reports_a_stale_open_protocol(protocols_in, capsys):
    body = json.loads((protocols_in / "hb-v2.json").read_text())
    body["tasks"]["lift-cube"]["episode_steps"] += 1
    (protocols_in / "hb-v2.json").write_text(json.dumps(body, indent=1) + "\n")
    assert protocol_module.main(["--name", "hb-v2"]) == 1
    assert "hb-v2 is stale" in capsys.readouterr().out


class _LiftCubeV1(get_task_class("lift-cube", 0)):
    """A stand-in for a changed lift-cube: a longer episode (hb-v2 material; hb-v1 keeps v0)."""

    version = 1
    max_episode_steps = 120


@pytest.fixture
def lift_cube_v1(monkeypatch):
    monkeypatch.setitem(_registry(), "lift-cube", {0: _registry()["lift-cube"][0], 1: _LiftCubeV1})


def test_older_versions_stay_registered_and_a_protocol_pins_them(lift_cube_v1):
    assert task_versions("lift-cube") == (0, 1)
    assert get_task_class("lift-cube") is _LiftCubeV1
    assert get_task_class("lift-cube", 0).max_episode_steps == 100
    assert make_env("lift-cube", "hb16", version=0).task.version == 0
    assert make_env("lift-cube", "hb16").task.version == 1
    with pytest.raises(HandbenchError, match="task lift-cube has no version 7; registered: v0, v1"):
        get_task_class("lift-cube", 7)
    assert check_released(load_protocol("hb-v1")) == []  # hb-v1 still finds its v0
    assert manifest_problems("hb-v2") != []  # the open protocol must be rewritten to take v1


def test_a_released_protocol_notices_a_pinned_version_that_is_gone_or_changed(monkeypatch):
    monkeypatch.setitem(_registry(), "lift-cube", {1: _LiftCubeV1})
    problems = check_released(load_protocol("hb-v1"))
    assert len(problems) == 1 and "lift-cube v0 is not registered (registered: v1)" in problems[0]

    class EditedInPlace(get_task_class("lift-cube", 1)):
        version = 0

    monkeypatch.setitem(_registry(), "lift-cube", {0: EditedInPlace})
    problems = check_released(load_protocol("hb-v1"))
    assert len(problems) == 1 and problems[0].startswith("lift-cube v0 changed: (episode_steps, success_rule, "
                                                         "obs_modes) is (120,")


def test_evaluator_runs_the_version_its_protocol_pins(lift_cube_v1, tmp_path):
    from handbench.evaluation import evaluate

    rows = evaluate("expert", task="lift-cube", hand="hb16", protocol="hb-v1", episodes=1, workers=0)
    assert rows["task_version"].tolist() == [0] and rows["protocol"].tolist() == ["hb-v1"]
