"""Headless rendering backend selection and a small offscreen renderer cache.

MuJoCo reads ``MUJOCO_GL`` when it is imported, so the backend is chosen here, before
any ``import mujoco`` in the package: EGL first (fast, software llvmpipe works), then OSMesa.
"""

from __future__ import annotations

import ctypes.util
import os

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
            raise HandbenchError(f"cannot render with MUJOCO_GL={backend} ({exc}); {INSTALL_HINT}") from exc
        self.height, self.width = height, width

    def render(self, data, camera: str):
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        self._renderer.close()
