"""``handbench doctor`` on this machine, with a simulated broken EGL, and with no renderer at all."""

from __future__ import annotations

import pytest

from handbench.cli import main
from handbench.commands import doctor
from handbench.rendering import DEBIAN_PACKAGES


def test_doctor_passes_on_this_machine(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "MUJOCO_GL=egl" in out and "MUJOCO_GL=osmesa" in out and "ready" in out


def test_broken_egl_is_reported_with_its_packages():
    # A real failure inside the probe subprocess: EGL asked for a device that does not exist.
    probe = doctor.probe_backend("egl", {"MUJOCO_EGL_DEVICE_ID": "99"})
    assert not probe.ok and "MUJOCO_EGL_DEVICE_ID" in probe.detail
    checks = doctor.check_rendering(
        probe=lambda backend: probe if backend == "egl" else doctor.RenderProbe(True, "64x64 frame in 5 ms"))
    by_name = {check.name: check for check in checks}
    egl = by_name["render: MUJOCO_GL=egl"]
    assert egl.status == doctor.WARN and egl.fix == f"apt-get install {DEBIAN_PACKAGES['egl']}"
    assert by_name["render: headless"].status == doctor.OK  # osmesa still renders


def test_no_renderer_fails_with_exit_status_1(monkeypatch, capsys):
    broken = doctor.RenderProbe(False, "cannot load libEGL.so.1")
    monkeypatch.setattr(doctor, "run_checks", lambda start_ray=False, probe=None: [
        doctor.check_mujoco(), *doctor.check_rendering(lambda backend: broken)])
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "not ready" in out and DEBIAN_PACKAGES["osmesa"] in out and "libegl1" in out


@pytest.mark.parametrize(("version", "status"), [("2.3.7", doctor.FAIL), ("3.3.0", doctor.OK), ("4.0.0", doctor.OK)])
def test_mujoco_version_gate(monkeypatch, version, status):
    import mujoco

    monkeypatch.setattr(mujoco, "__version__", version)
    assert doctor.check_mujoco().status == status
