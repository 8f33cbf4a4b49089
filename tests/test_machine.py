"""Results and verification records name the kind of machine they were made on: the CPU and numpy's BLAS kernel,
which sets the last digits of the experts' IK and of the rewards (README, "Across kinds of CPU")."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from handbench.evaluation import evaluate
from handbench.machine import blas_kernel, machine_info


def test_the_blas_kernel_is_read_from_the_loaded_library():
    """Not a guess from the CPU: a kernel forced with OPENBLAS_CORETYPE (read when numpy loads) is the one named."""
    assert machine_info()["cpu"] and blas_kernel() != "unknown"
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("OPENBLAS_CORETYPE names x86 kernels")
    code = "from handbench.machine import blas_kernel; print(blas_kernel())"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Nehalem"}  # SSE4.2: every x86-64 CPU of this age runs it
    named = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert named.stdout.strip() == "openblas Nehalem"


def test_evaluation_results_record_the_machine(tmp_path):
    evaluate(policy="hold", task="lift-cube", hand="hb16", obs_mode="state", workers=0, seeds=(1000000,),
             protocol="hb-v2", progress=False, out=tmp_path / "hold")
    assert json.loads((tmp_path / "hold" / "meta.json").read_text())["machine"] == machine_info()
