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


def test_broken_egl_is_reported_with_its_packages(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)  # handbench chooses: osmesa still renders
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


def test_users_mujoco_gl_is_reported_honestly(monkeypatch, capsys):
    """The issue's inputs: glfw on a headless machine, osmesa without libOSMesa; and a value MuJoCo rejects."""
    from handbench import rendering

    works = doctor.RenderProbe(True, "64x64 frame in 5 ms")
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for value, message in [("glfw", "needs a display"), ("osmesa", "libOSMesa is not installed"),
                           ("bogus", "not a MuJoCo rendering backend")]:
        monkeypatch.setenv("MUJOCO_GL", value)
        monkeypatch.setattr(rendering, "backend_library_present", lambda backend: backend == "egl")
        by_name = {c.name: c for c in doctor.check_rendering(probe=lambda backend: works)}
        mine = by_name[f"render: your MUJOCO_GL={value}"]
        assert mine.status == doctor.FAIL and message in mine.detail
        assert by_name["render: headless"].status == doctor.FAIL, "never 'ready' when the chosen backend fails"
    monkeypatch.setenv("MUJOCO_GL", "disable")
    by_name = {c.name: c for c in doctor.check_rendering(probe=lambda backend: works)}
    assert by_name["render: your MUJOCO_GL=disable"].status == doctor.WARN


def test_doctor_never_crashes(monkeypatch, capsys):
    def broken():
        raise RuntimeError("libsomething.so: cannot open shared object file")

    monkeypatch.setattr(doctor, "check_video", broken)
    monkeypatch.setattr(doctor, "check_hand_assets", lambda: [])
    monkeypatch.setattr(doctor, "check_rendering", lambda probe: [])
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "the check itself failed: RuntimeError" in out and "not ready" in out


def test_unusable_mujoco_gl_does_not_break_import(tmp_path):
    """``import handbench`` with a MUJOCO_GL that would crash ``import mujoco``; the CLI then says so in one line."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MUJOCO_GL": "bogus"}
    code = "import handbench, mujoco, os; print('imported', os.environ['MUJOCO_GL'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "imported bogus" in result.stdout, result.stderr
    result = subprocess.run([sys.executable, "-m", "handbench.cli", "tasks"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "unset MUJOCO_GL" in result.stderr


def test_the_blas_kernel_is_reported_against_the_reference_one(monkeypatch):
    """Not a failure: a row naming this machine's kernel and whether it is the one the reference results used."""
    import handbench.machine as machine

    monkeypatch.setattr(machine, "machine_info", lambda: {"cpu": "Some CPU", "blas": "openblas Haswell"})
    check = doctor.check_blas()
    assert check.status == doctor.OK and check.detail.startswith("openblas Haswell on Some CPU; ")
    assert "made with openblas SkylakeX: re-derived results may differ" in check.detail
    monkeypatch.setattr(machine, "machine_info", lambda: {"cpu": "Other", "blas": machine.REFERENCE_BLAS})
    assert doctor.check_blas().detail.endswith("the kernel the reference results were made with")
