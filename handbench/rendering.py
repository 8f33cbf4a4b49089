"""Headless rendering backend selection and a small offscreen renderer cache.

MuJoCo reads ``MUJOCO_GL`` when it is imported, so the backend is chosen here, before
any ``import mujoco`` in the package: EGL first (fast, software llvmpipe works), then OSMesa.
A value the user set is checked first (:func:`gl_setting_problem`): one naming a backend that is
missing or cannot work here would crash ``import mujoco`` (osmesa without libOSMesa, a typo) or fail
at the first frame (glfw without a display). The package then imports MuJoCo with rendering switched
off, so the CLI can stop with one line and ``handbench doctor`` can report it.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import os
from collections.abc import Iterator

from handbench.errors import HandbenchError

BACKEND_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa"}
DEBIAN_PACKAGES = {"egl": "libegl1 libegl-mesa0 libgl1-mesa-dri", "osmesa": "libosmesa6"}
INSTALL_HINT = (
    "install the packages for headless rendering: apt-get install "
    f"{DEBIAN_PACKAGES['egl']} (or {DEBIAN_PACKAGES['osmesa']} for MUJOCO_GL=osmesa)"
)


def backend_library_present(backend: str) -> bool:
    """Whether the shared library a MuJoCo GL backend needs can be found."""
    return ctypes.util.find_library(BACKEND_LIBRARIES[backend]) is not None


OFF_VALUES = ("disable", "disabled", "off", "false", "0")  # MuJoCo's own "no rendering" values
DISPLAY_BACKENDS = ("glfw", "glx", "enable", "enabled", "on", "true", "1")  # need an X11/Wayland display
PYTHON_PACKAGES = {"osmesa": "PyOpenGL", "glfw": "glfw"}  # import name -> pip name is the same but for case
_IMPORT_NAMES = {"osmesa": "OpenGL", "glfw": "glfw"}


def gl_setting_problem(value: str | None = None) -> str | None:
    """Why a user-set ``MUJOCO_GL`` (``value``, default: the environment's) cannot render here, in one line
    naming the package to install or saying to unset it; None when it is unset, switched off or usable."""
    value = os.environ.get("MUJOCO_GL", "") if value is None else value
    backend = value.strip().lower()
    if not backend or backend in OFF_VALUES:
        return None
    unset = "or unset MUJOCO_GL to let handbench choose a headless backend"
    if backend not in (*BACKEND_LIBRARIES, *DISPLAY_BACKENDS):
        return (f"MUJOCO_GL={value!r} is not a MuJoCo rendering backend; use egl or osmesa (headless) or glfw "
                f"(with a display), {unset}")
    if backend in BACKEND_LIBRARIES and not backend_library_present(backend):
        return (f"MUJOCO_GL={backend} but lib{BACKEND_LIBRARIES[backend]} is not installed: apt-get install "
                f"{DEBIAN_PACKAGES[backend]}, {unset}")
    if backend in DISPLAY_BACKENDS and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (f"MUJOCO_GL={backend} needs a display and none is set (DISPLAY is empty); unset MUJOCO_GL to render "
                f"headless with egl (apt-get install {DEBIAN_PACKAGES['egl']} if it is missing)")
    module = _IMPORT_NAMES.get("glfw" if backend in DISPLAY_BACKENDS else backend)
    if module and importlib.util.find_spec(module) is None:
        package = PYTHON_PACKAGES["glfw" if backend in DISPLAY_BACKENDS else backend]
        return f"MUJOCO_GL={backend} needs the Python package {package}: pip install {package}, {unset}"
    return None


@contextlib.contextmanager
def importing_mujoco() -> Iterator[None]:
    """Around the package's first ``import mujoco``: an unusable user-set MUJOCO_GL is switched off while
    MuJoCo loads (so the import cannot crash) and restored afterwards, for the CLI and doctor to report."""
    value = os.environ.get("MUJOCO_GL")
    if value is None or gl_setting_problem(value) is None:
        yield
        return
    os.environ["MUJOCO_GL"] = "disable"
    try:
        yield
    finally:
        os.environ["MUJOCO_GL"] = value


def choose_gl_backend() -> str | None:
    """Set ``MUJOCO_GL`` to a usable headless backend unless the user already chose one."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend in ("egl", "osmesa"):
        if backend_library_present(backend):
            os.environ["MUJOCO_GL"] = backend
            if backend == "osmesa":
                os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
            return backend
    return None


class FrameRenderer:
    """Renders named cameras of one model at one size; created lazily inside each worker."""

    def __init__(self, model, height: int, width: int) -> None:
        import mujoco

        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:  # the GL libraries raise many different types
            backend = os.environ.get("MUJOCO_GL", "none")
            problem = gl_setting_problem()
            raise HandbenchError(problem or f"cannot render with MUJOCO_GL={backend} ({exc}); {INSTALL_HINT}") from exc
        self.height, self.width = height, width
        self.cameras = [model.camera(i).name for i in range(model.ncam)]

    def render(self, data, camera: str):
        if camera not in self.cameras:
            raise HandbenchError(f"unknown camera {camera!r}; valid: {', '.join(self.cameras)}")
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        self._renderer.close()
