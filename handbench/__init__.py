"""handbench: imitation learning benchmark for dexterous robot hands in MuJoCo."""

from handbench.rendering import choose_gl_backend, importing_mujoco

choose_gl_backend()
with importing_mujoco():  # a user-set MUJOCO_GL that cannot work is reported by the CLI and doctor, not a crash here
    import mujoco  # noqa: F401

from handbench.errors import HandbenchError  # noqa: E402
from handbench.pinned import make, make_env  # noqa: E402
from handbench.registry import (  # noqa: E402
    register_envs,
    register_hand,
    register_task,
    task_names,
)
from handbench.version import __version__  # noqa: E402

try:
    register_envs()
except HandbenchError:
    # A task module that breaks the task contract (or does not import) must not break `import handbench`: every
    # registry call raises the same one-line error, which commands print as `handbench CMD: error: ...`.
    pass

__all__ = ["__version__", "evaluate", "load_policy", "make", "make_env", "register_hand", "register_task", "task_names"]


def load_policy(path, **kwargs):
    """A trained baseline checkpoint (``handbench train``) as a ready-to-evaluate Policy (imports torch lazily)."""
    from handbench.training.checkpoint import load_policy as _load_policy

    return _load_policy(path, **kwargs)


def evaluate(*args, **kwargs):
    """Evaluate a policy on the protocol's seeds -> pandas DataFrame, one row per episode (``handbench eval``)."""
    from handbench.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
