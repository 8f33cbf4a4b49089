"""``handbench bench``: a quick physics run gives positive figures, a table and JSON/CSV; gaps say so."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handbench import bench
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


def test_missing_module_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(bench, "_baseline_timing", lambda section, name: "handbench.training.timing is missing")
    report = bench.run_bench(bench.BenchConfig(sections=("inference", "train")))
    assert [f.status for f in report.figures] == ["not available", "not available"]
    assert all(f.value is None and "missing" in f.note for f in report.figures)


def test_crashing_section_does_not_stop_the_others(monkeypatch):
    def broken(config, report):
        raise RuntimeError("boom")

    monkeypatch.setitem(bench.SECTION_RUNNERS, "render", broken)
    monkeypatch.setattr(bench, "_baseline_timing", lambda section, name: "missing")
    report = bench.run_bench(bench.BenchConfig(sections=("render", "train")))
    assert report.figures[0].status == "not available" and "boom" in report.figures[0].note
    assert report.figures[1].section == "train"


def test_targets_and_section_names():
    assert bench.Figure("physics", "x", 0.6, "fraction", limit=0.7).status == "MISSED"
    assert bench.Figure("physics", "x", 0.8, "fraction", limit=0.7).status == "ok"
    assert bench.Figure("render", "x", 5.0, "ms", limit=10, higher_is_better=False).status == "ok"
    assert bench.parse_sections("physics, render") == ("physics", "render")
    with pytest.raises(HandbenchError, match="unknown bench section 'gpu'"):
        bench.parse_sections("physics,gpu")
