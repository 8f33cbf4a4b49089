"""Commands that run a protocol's tasks build the task versions that protocol pins (not the newest registered),
and default to the protocol's own tasks."""

from __future__ import annotations

import numpy as np
import pytest

import handbench.commands.gallery as gallery
from handbench.cli import main
from handbench.errors import HandbenchError
from handbench.experts_check import check_experts
from handbench.protocol import load_protocol


def test_check_experts_runs_the_pinned_versions_of_the_protocols_tasks():
    hb_v1 = load_protocol("hb-v1")
    checks = check_experts(None, ["hb16"], num_seeds=1, protocol="hb-v1")
    assert [check.task for check in checks] == list(hb_v1.tasks)  # not the in-hand tasks hb-v1 lacks
    assert {check.task_version for check in checks} == {0} and {check.hand_version for check in checks} == {0}
    (newer,) = check_experts(["lift-cube"], ["hb16"], num_seeds=1, protocol="hb-v2")
    assert newer.task_version == load_protocol("hb-v2").task("lift-cube").task_version == 2
    assert newer.hand_version == load_protocol("hb-v2").hand_version("hb16") == 1


def test_check_experts_refuses_a_task_the_protocol_lacks(capsys):
    assert main(["check-experts", "--protocol", "hb-v1", "--tasks", "reorient-cube", "--seeds", "1"]) == 2
    assert "unknown task in protocol hb-v1: 'reorient-cube'" in capsys.readouterr().err


@pytest.fixture
def frames(monkeypatch) -> list[tuple[str, int, str, int]]:
    """The (task, version, hand, seed) of every picture the gallery renders (rendering replaced by a blank)."""
    calls = []

    def blank(task, version, hand, seed, camera, size, fraction, hand_version):
        calls.append((task, version, f"{hand} v{hand_version}", seed))
        return np.zeros((*size, 3), dtype=np.uint8)

    monkeypatch.setattr(gallery, "expert_frame", blank)
    return calls


def test_gallery_shows_the_version_and_first_eval_seed_the_protocol_pins(tmp_path, frames):
    assert main(["gallery", "--protocol", "hb-v1", "--out", str(tmp_path / "v1"), "--size", "8", "8"]) == 0
    hb_v1 = load_protocol("hb-v1")
    assert sorted({(task, version, seed) for task, version, _, seed in frames}) == sorted(
        (task, 0, entry.eval_seeds[0]) for task, entry in hb_v1.tasks.items())
    assert sorted(path.stem for path in (tmp_path / "v1").iterdir()) == sorted(hb_v1.tasks)
    assert {hand for _, _, hand, _ in frames} == {"hb16 v0", "shadow v0"}
    frames.clear()
    assert main(["gallery", "--tasks", "lift-cube", "--out", str(tmp_path / "v2"), "--size", "8", "8"]) == 0
    assert {version for _, version, _, _ in frames} == {load_protocol("hb-v2").task("lift-cube").task_version} == {2}
    assert {hand for _, _, hand, _ in frames} == {"hb16 v1", "shadow v0"}  # the hand versions hb-v2 pins


def test_gallery_refuses_a_task_the_protocol_lacks(tmp_path, frames, capsys):
    out = tmp_path / "g"
    assert main(["gallery", "--protocol", "hb-v1", "--tasks", "reorient-cube", "--out", str(out)]) == 2
    assert "unknown task in protocol hb-v1: 'reorient-cube'" in capsys.readouterr().err
    assert frames == [] and not out.exists()


def test_generate_demos_warns_about_noise_for_the_pinned_version(monkeypatch, capsys):
    import handbench.generate

    def stop(config):
        raise HandbenchError("stopped before generating")

    monkeypatch.setattr(handbench.generate, "generate_demos", stop)
    argv = ["generate-demos", "--task", "turn-valve", "--num-demos", "1", "--action-noise", "0.01"]
    main([*argv, "--protocol", "hb-v2"])  # v1: its expert was measured noise-free only
    assert "above 0, the highest level at which the turn-valve v1 expert" in capsys.readouterr().err
    main([*argv, "--protocol", "hb-v1"])  # v0: no limit measured, and the line says so
    assert "the turn-valve v0 expert's tolerance to action noise was not measured" in capsys.readouterr().err
