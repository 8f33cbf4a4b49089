"""handbench: imitation learning benchmark for dexterous robot hands in MuJoCo."""

from handbench.rendering import choose_gl_backend

choose_gl_backend()

__version__ = "0.1.0"

from handbench.registry import make, register_envs, task_names  # noqa: E402

register_envs()

__all__ = ["__version__", "make", "task_names"]
