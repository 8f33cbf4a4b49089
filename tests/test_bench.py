"""``handbench bench``: a quick physics run gives positive figures, a table and JSON/CSV; gaps say so."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from handbench import bench
from handbench.bench.planning import PLANNING_EPISODE_TARGET_S
from handbench.cli import main
from handbench.errors import HandbenchError


def test_quick_physics_section_prints_and_writes(tmp_path, capsys):
    code = main(["bench", "--only", "physics", "--quick", "--task", "lift-cube", "--hand", "hb16",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "env / raw: lift-cube / hb16" in out and "steps/s" in out
    report = json.loads((tmp_path / "bench.json").read_text())
    figures = {f["measure"]: f for f in report["figures"]}
    raw = figures["raw mj_step x frame_skip: lift-cube / hb16"]["value"]
    env = figures["env.step (state): lift-cube / hb16"]["value"]
    share = figures["env / raw: lift-cube / hb16"]
    assert raw > 0 and env > 0 and share["limit"] == bench.ENV_OVER_RAW_TARGET
    assert share["value"] == pytest.approx(env / raw) and share["status"] in ("ok", "MISSED")
    table = pd.read_csv(tmp_path / "bench.csv")
    assert len(table) == 3 and (table["value"] > 0).all()


def test_crashing_section_does_not_stop_the_others(monkeypatch):
    def broken(config, report):
        raise RuntimeError("boom")

    def fine(config, report):
        report.figures.append(bench.Figure("train", "x", 1.0, "steps/s"))

    monkeypatch.setitem(bench.SECTION_RUNNERS, "render", broken)
    monkeypatch.setitem(bench.SECTION_RUNNERS, "train", fine)
    report = bench.run_bench(bench.BenchConfig(sections=("render", "train")))
    assert report.figures[0].status == "not available" and "boom" in report.figures[0].note
    assert report.figures[1].section == "train" and report.figures[1].value == 1.0


def test_rollout_section_compares_lanes_and_a_vector_env(monkeypatch):
    """Tiny: 2 seeds of 3 steps; figures are positive and the ratios are the measured times' ratios."""
    from handbench.bench import rollout

    monkeypatch.setattr(rollout, "ROLLOUT_POLICIES", ("diffusion",))
    monkeypatch.setattr(rollout, "protocol_seeds", lambda task, count: ([1_000_000, 1_000_001], 3, True))
    assert bench.BenchConfig().lanes == (32, 1)  # hb-v2's width against the one-episode path
    report = bench.run_bench(bench.BenchConfig(sections=("rollout",), lanes=(2, 1), rounds=1))
    figures = {figure.measure: figure for figure in report.figures}
    assert all(figure.status != "not available" for figure in report.figures), [f.note for f in report.figures]
    rate = {lanes: figures[f"diffusion, lanes {lanes}: lift-cube / hb16"].value for lanes in (2, 1)}
    assert figures["diffusion: lanes 2 over lanes 1"].value == pytest.approx(rate[2] / rate[1])
    assert figures["diffusion: lanes 2 over lanes 1"].limit == rollout.BATCHED_SPEEDUP_TARGET["diffusion"]
    assert figures["diffusion: lanes 2 over AsyncVectorEnv(2)"].value > 0
    assert figures["diffusion, lanes 1: lift-cube / hb16"].note.endswith("best of 1")
    assert figures["diffusion: lanes 2, envs in 2 threads, over AsyncVectorEnv(2)"].value > 0
    step = {lanes: figures[f"diffusion, lanes {lanes}: one lockstep step"] for lanes in (2, 1)}
    assert all(figure.value > 0 and "model forward" in figure.note for figure in step.values())
    cost = figures["diffusion: a step of 2 lanes over a step of 1"]
    assert cost.value == pytest.approx(step[2].value / step[1].value)
    lane_check = figures["diffusion, lanes 2: rows whose action depends on their lane"]
    # (on this CPU, Diffusion Policy's row 1 of 2 takes another oneDNN path: 1; either way the note names the rows)
    assert lane_check.note == ("lanes 1 differ from lane 0: results would depend on grouping" if lane_check.value
                               else "none: every lane bit-identical (rollout.lane_dependent_rows)")
    assert not any(f.measure.startswith("diffusion, lanes 1: rows") for f in report.figures)
    quick = bench.run_bench(bench.BenchConfig(sections=("rollout",), quick=True, lanes=(2, 1), rounds=1))
    quick_ratio = next(f for f in quick.figures if f.measure == "diffusion: lanes 2 over lanes 1")
    assert quick_ratio.limit is None  # the target is on the protocol's 50 seeds, not --quick's 8


def test_timed_lanes_split_a_step_into_model_policy_physics_and_engine():
    """Through the engine: 2 seeds of 3 steps at 2 lanes is 3 policy calls; the shares add up to 100%."""
    from handbench.bench.rollout import bench_policy, time_lanes

    policy = bench_policy("diffusion", "lift-cube", "hb16")
    timing = time_lanes(policy, "lift-cube", "hb16", [1_000_000, 1_000_001], 2, 3, True)
    assert timing.steps == 3 and sorted(timing.returns) == [1_000_000, 1_000_001]
    assert 0 < timing.model <= timing.policy < timing.wall and 0 < timing.physics < timing.wall
    shares = timing.shares()
    assert list(shares) == ["model forward", "rest of the policy", "env.step", "engine"]
    assert sum(shares.values()) == pytest.approx(100) and all(share >= 0 for share in shares.values())
    assert "predict_action" not in vars(policy.model)  # the timer is removed after the run


def test_targets_and_section_names():
    assert bench.Figure("physics", "x", 0.6, "fraction", limit=0.7).status == "MISSED"
    assert bench.Figure("physics", "x", 0.8, "fraction", limit=0.7).status == "ok"
    assert bench.Figure("render", "x", 5.0, "ms", limit=10, higher_is_better=False).status == "ok"
    assert bench.parse_sections("physics, render") == ("physics", "render")
    with pytest.raises(HandbenchError, match="unknown bench section 'gpu'"):
        bench.parse_sections("physics,gpu")


def test_train_pixels_section_reports_speed_and_where_the_time_goes(monkeypatch):
    """Tiny frames and one policy: every figure is measured and positive, the shares are percentages."""
    from handbench.bench import pixels

    monkeypatch.setattr(pixels, "PIXEL_POLICIES", ("bc",))
    monkeypatch.setattr(pixels, "FRAME_SIZES", ((24, 24),))
    report = bench.run_bench(bench.BenchConfig(sections=("train-pixels",), quick=True))
    figures = {figure.measure: figure for figure in report.figures}
    assert all(figure.status != "not available" for figure in report.figures), [f.note for f in report.figures]
    assert figures["bc: 24x24 frames, 2 cameras"].value > 0
    assert "s per 1000 steps" in figures["bc: 24x24 frames, 2 cameras"].note
    for share in ("image encoder", "data"):
        assert 0 < figures[f"bc: {share} share of a step"].value < 100
    assert figures["bc: preset encoder vs (32, 64, 128)"].value > 0


def test_planning_section_times_the_planning_expert_per_episode():
    config = bench.BenchConfig(sections=("planning",), quick=True, tasks=("rotate-block", "lift-cube"),
                               hands=("hb16",))
    report = bench.run_bench(config)
    figures = {f.measure: f for f in report.figures}
    wall = figures["planning expert wall time per episode, one core: rotate-block / hb16"]
    cpu = figures["planning expert CPU time per episode: rotate-block / hb16"]
    assert len(figures) == 2  # lift-cube has a scripted expert: not a planning task
    assert wall.value > 0 and cpu.value > 0 and wall.limit == PLANNING_EPISODE_TARGET_S
    assert wall.status in ("ok", "MISSED") and "steps each" in wall.note


def test_protocol_section_times_one_evaluation_per_task_hand_and_checkpoint(monkeypatch, capsys):
    """Evaluations replaced by a stand-in: the section's loop, episode and step counts and its lines, not Ray."""
    import handbench.evaluation
    from handbench.bench import rollout

    calls = []

    def evaluate(config):
        calls.append((config.task, config.hand, config.workers))
        return SimpleNamespace(episodes=pd.DataFrame({"steps": [70, 70, 70]}))

    monkeypatch.setattr(rollout, "bench_policy", lambda name, task, hand, device: f"{name}:{task}:{hand}")
    monkeypatch.setattr(handbench.evaluation, "run_evaluation", evaluate)
    config = bench.BenchConfig(sections=("protocol",), tasks=("press-button", "lift-cube"), hands=("hb16",),
                               checkpoints=2)
    report = bench.run_bench(config)
    assert calls == [("press-button", "hb16", 2)] * 2 + [("lift-cube", "hb16", 2)] * 2
    figure, estimate = report.figures
    assert figure.unit == "minutes" and figure.value > 0
    assert "2 task(s) x 1 hand(s) x 2 checkpoint(s), 12 episodes, 840 steps" in figure.measure
    # a part of the protocol: the full one is estimated from it, and says so
    assert estimate.measure.startswith("diffusion: full hb-v2 protocol, 8 tasks x 2 hands x 3 checkpoints")
    assert estimate.note.startswith("extrapolated, not measured")
    assert "press-button/hb16, lift-cube/hb16" in estimate.note
    assert capsys.readouterr().err.count("protocol: ") == 4


def test_the_full_protocol_is_extrapolated_per_hand_from_seconds_per_step():
    from handbench.bench.rollout import extrapolate_protocol, full_protocol_steps
    from handbench.protocol import load_protocol

    full = full_protocol_steps(load_protocol("hb-v1"))
    assert len(full) == 12 and full[("stack", "shadow")] == 50 * 200 * 3
    assert sum(full.values()) == 2 * 50 * 3 * (70 + 100 + 100 + 80 + 200 + 200)
    # hb16 measured at 0.01 s per step, shadow at 0.03: each hand's steps at its own rate
    measured = {("lift-cube", "hb16"): (50.0, 5000), ("lift-cube", "shadow"): (150.0, 5000)}
    hand_steps = sum(full.values()) // 2
    assert extrapolate_protocol(measured, full) == pytest.approx(hand_steps * 0.01 + hand_steps * 0.03)
    # a hand never measured costs the average of all measured steps
    only_hb16 = {("lift-cube", "hb16"): (50.0, 5000), ("stack", "hb16"): (250.0, 5000)}
    assert extrapolate_protocol(only_hb16, full) == pytest.approx(2 * hand_steps * 0.03)
