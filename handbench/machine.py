"""What kind of machine a result was made on: its CPU and numpy's BLAS kernel.

numpy's OpenBLAS picks a kernel for the CPU when numpy loads (AVX-512, AVX2, ...), and kernels round a sum
differently; the experts' wrist IK and the rewards go through it, so results made on another kind of CPU can differ
in their last digits (README, "Across kinds of CPU"). Results and verification records name both, so a difference
can be traced to it.
"""

from __future__ import annotations

import platform
from pathlib import Path

# The kernel of the machines that made the hb-v1 and hb-v2 reference results (AVX-512).
REFERENCE_BLAS = "openblas SkylakeX"


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows; "" when nothing says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_kernel() -> str:
    """numpy's BLAS library and the kernel it picked for this CPU, e.g. ``openblas Haswell`` (threadpoolctl reads it
    from the loaded library); "unknown" when the library does not say."""
    import numpy  # noqa: F401 - the BLAS library is inspected once numpy has loaded it
    from threadpoolctl import threadpool_info

    blas = [library for library in threadpool_info() if library.get("user_api") == "blas"]
    numpy_blas = [library for library in blas if "numpy" in str(library.get("filepath", ""))]  # not another one's
    candidates = numpy_blas or blas
    if not candidates:
        return "unknown"
    library = candidates[0]
    return " ".join(str(part) for part in (library.get("internal_api"), library.get("architecture")) if part)


def machine_info() -> dict[str, str]:
    """``{"cpu": ..., "blas": ...}`` for a results or verification record."""
    return {"cpu": cpu_model(), "blas": blas_kernel()}
