"""``handbench doctor``: can this machine run the benchmark? One table, and the fix for each problem.

Each GL backend is tried in its own subprocess because MuJoCo reads ``MUJOCO_GL`` once, at import.
Exit status 1 when something the benchmark needs is missing (no working renderer, MuJoCo too old,
Ray or torch not importable, hand assets or task scenes not loading); warnings alone exit 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_MUJOCO = (3, 3)
RENDER_TIMEOUT_S = 90

# Renders one 64x64 frame of a one-sphere scene; prints JSON. Runs with MUJOCO_GL set by the caller.
_RENDER_PROBE = """
import json, time
import mujoco
xml = ('<mujoco><worldbody><light pos="0 0 1"/><camera name="c" pos="0 -0.5 0.2" xyaxes="1 0 0 0 0.4 1"/>'
       '<geom type="sphere" size="0.1" rgba="1 0 0 1"/></worldbody></mujoco>')
model = mujoco.MjModel.from_xml_string(xml)
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 64, 64)
renderer.update_scene(data, camera="c")
renderer.render()
start = time.perf_counter()
renderer.update_scene(data, camera="c")
image = renderer.render()
ms = (time.perf_counter() - start) * 1000
renderer.close()
print(json.dumps({"ms": ms, "mean": float(image.mean())}))
"""


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class RenderProbe:
    ok: bool
    detail: str


def probe_backend(backend: str, extra_env: Mapping[str, str] | None = None) -> RenderProbe:
    """Render one frame with ``MUJOCO_GL=backend`` in a fresh interpreter."""
    from handbench.rendering import BACKEND_LIBRARIES, backend_library_present

    if backend in BACKEND_LIBRARIES and not backend_library_present(backend):
        return RenderProbe(False, f"lib{BACKEND_LIBRARIES[backend]} not found")
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend, **(extra_env or {})}
    try:
        result = subprocess.run([sys.executable, "-c", _RENDER_PROBE], env=env, capture_output=True, text=True,
                                timeout=RENDER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return RenderProbe(False, f"no frame after {RENDER_TIMEOUT_S} s")
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return RenderProbe(False, lines[-1][:200] if lines else f"exit status {result.returncode}")
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return RenderProbe(False, f"unexpected output: {result.stdout[-200:]!r}")
    if report["mean"] <= 0:
        return RenderProbe(False, "rendered an all-black frame")
    return RenderProbe(True, f"64x64 frame in {report['ms']:.1f} ms")


def check_rendering(probe: Callable[[str], RenderProbe] = probe_backend) -> list[Check]:
    """One row per headless backend, one for a MUJOCO_GL the user set, and whether handbench can render."""
    from handbench.rendering import DEBIAN_PACKAGES, OFF_VALUES, gl_setting_problem

    checks = []
    for backend in ("egl", "osmesa"):
        result = probe(backend)
        fix = "" if result.ok else f"apt-get install {DEBIAN_PACKAGES[backend]}"
        checks.append(Check(f"render: MUJOCO_GL={backend}", OK if result.ok else WARN, result.detail, fix))
    working = [c.name.split("=")[1] for c in checks if c.status == OK]
    setting = os.environ.get("MUJOCO_GL", "").strip().lower()
    if setting:  # the user's choice is what handbench uses: report it honestly, whatever the others do
        name = f"render: your MUJOCO_GL={setting}"
        problem = gl_setting_problem()
        if problem:
            checks.append(Check(name, FAIL, problem, "unset MUJOCO_GL (or install what the detail names)"))
        elif setting in OFF_VALUES:
            checks.append(Check(name, WARN, "rendering switched off: pixel observations and videos fail",
                                "unset MUJOCO_GL to render"))
        elif setting in working:
            checks.append(Check(name, OK, "renders (see its row)"))
        else:
            result = probe(setting)
            checks.append(Check(name, OK if result.ok else FAIL, result.detail,
                                "" if result.ok else "unset MUJOCO_GL to let handbench choose a headless backend"))
    if setting and checks[-1].status != OK:
        checks.append(Check("render: headless", checks[-1].status, f"working: {', '.join(working) or 'none'}; but "
                            f"handbench uses your MUJOCO_GL={setting}, which cannot render", "unset MUJOCO_GL"))
    elif working:
        chosen = setting or working[0]
        checks.append(Check("render: headless", OK, f"working: {', '.join(working)}; handbench uses {chosen}"))
    else:
        checks.append(Check("render: headless", FAIL, "no GL backend can render; pixel observations and videos fail",
                            f"apt-get install {DEBIAN_PACKAGES['egl']} (or {DEBIAN_PACKAGES['osmesa']})"))
    return checks


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_mujoco() -> Check:
    import mujoco

    version = mujoco.__version__
    if _version_tuple(version) < MIN_MUJOCO:
        return Check("mujoco", FAIL, f"version {version}; handbench needs >= {'.'.join(map(str, MIN_MUJOCO))}",
                     "pip install -U mujoco")
    return Check("mujoco", OK, f"version {version}")


def check_video() -> Check:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # missing package or missing binary
        return Check("video: ffmpeg", WARN, f"not usable ({exc}); videos and LeRobot export fail",
                     "pip install imageio-ffmpeg")
    encoders = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    if "libx264" not in encoders:
        return Check("video: ffmpeg", WARN, f"{exe} has no libx264 encoder", "pip install -U imageio-ffmpeg")
    return Check("video: ffmpeg", OK, f"{os.path.basename(exe)} with libx264")


def check_ray(start: bool) -> Check:
    try:
        import ray
    except Exception as exc:
        return Check("ray", FAIL, f"cannot import ray ({exc}); parallel evaluation needs it",
                     "pip install 'ray[default]'")
    if not start:
        return Check("ray", OK, f"version {ray.__version__} (import only; --ray starts a local cluster)")
    started = time.perf_counter()
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        value = ray.get(ray.remote(lambda: 41 + 1).remote(), timeout=120)
    except Exception as exc:
        return Check("ray", FAIL, f"local cluster failed to start ({str(exc)[:150]})",
                     "check /tmp/ray logs; free shared memory (/dev/shm)")
    finally:
        if ray.is_initialized():
            ray.shutdown()
    status = OK if value == 42 else FAIL
    return Check("ray", status, f"version {ray.__version__}; local cluster ran a task in "
                                f"{time.perf_counter() - started:.1f} s")


def check_torch() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check("torch", FAIL, f"cannot import torch ({exc}); training needs it", "pip install torch")
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    detail = f"version {torch.__version__}; {threads} intra-op threads on {cores} CPU cores"
    if threads > cores:
        return Check("torch", WARN, detail, f"set OMP_NUM_THREADS={cores}")
    return Check("torch", OK, detail)


def check_hand_assets() -> list[Check]:
    from handbench.errors import HandbenchError
    from handbench.hands import HANDS
    from handbench.hands.shadow import adroit_model_path
    from handbench.registry import compiled_model, task_names

    checks = []
    try:
        checks.append(Check("gymnasium-robotics assets", OK, f"Adroit hand at {adroit_model_path()}"))
    except HandbenchError as exc:
        checks.append(Check("gymnasium-robotics assets", FAIL, str(exc), "pip install gymnasium-robotics"))
    tasks = task_names()
    for hand in HANDS:
        failures = []
        for task in tasks:
            try:
                compiled_model(task, hand)
            except Exception as exc:  # a broken scene raises MuJoCo or handbench errors
                failures.append(f"{task}: {str(exc)[:120]}")
        if failures:
            checks.append(Check(f"scenes: {hand}", FAIL, "; ".join(failures), "reinstall handbench"))
        else:
            checks.append(Check(f"scenes: {hand}", OK, f"{len(tasks)} task scenes compile"))
    return checks


def check_blas() -> Check:
    """numpy's BLAS kernel, which sets the last digits of the experts' IK and the rewards: not a problem, but a
    re-derivation on another kernel can differ from the published results (README, "Across kinds of CPU")."""
    from handbench.machine import REFERENCE_BLAS, machine_info

    machine = machine_info()
    same = ("the kernel the reference results were made with" if machine["blas"] == REFERENCE_BLAS else
            f"the reference results were made with {REFERENCE_BLAS}: re-derived results may differ in their last "
            "digits (README, 'Across kinds of CPU')")
    return Check("numpy BLAS", OK, f"{machine['blas']} on {machine['cpu'] or 'an unnamed CPU'}; {same}")


def check_optional_packages() -> Check:
    missing = [name for name in ("pyarrow", "zarr") if importlib.util.find_spec(name) is None]
    if missing:
        return Check("export packages", WARN, f"missing {', '.join(missing)}; handbench export needs them",
                     f"pip install {' '.join(missing)}")
    return Check("export packages", OK, "pyarrow and zarr present")


def _guarded(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run one check; an unexpected exception becomes a FAIL row instead of ending doctor with a traceback."""
    try:
        result = check()
    except Exception as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        return [Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {first[:200]}",
                      "report this with the output of `handbench doctor`")]
    return result if isinstance(result, list) else [result]


def run_checks(start_ray: bool = False, probe: Callable[[str], RenderProbe] = probe_backend) -> list[Check]:
    steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("mujoco", check_mujoco), ("render", lambda: check_rendering(probe)), ("video: ffmpeg", check_video),
        ("ray", lambda: check_ray(start_ray)), ("torch", check_torch), ("scenes", check_hand_assets),
        ("numpy BLAS", check_blas), ("export packages", check_optional_packages)]
    return [check for name, step in steps for check in _guarded(name, step)]


def print_report(checks: list[Check], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    table = Table(title="handbench doctor")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    colours = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for check in checks:
        table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail, check.fix)
    console.print(table)
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        console.print(f"[bold red]not ready:[/] {len(failed)} problem(s): {', '.join(c.name for c in failed)}")
    else:
        warned = sum(c.status == WARN for c in checks)
        console.print(f"[green]ready[/] to run the benchmark ({warned} warning(s))")


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check rendering, video, Ray, torch and assets on this machine")
    parser.add_argument("--ray", action="store_true", help="also start a local Ray cluster and run one task")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = run_checks(start_ray=args.ray)
    print_report(checks)
    return 1 if any(check.status == FAIL for check in checks) else 0
