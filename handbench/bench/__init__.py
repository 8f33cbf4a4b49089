"""``handbench bench``: measured speed of every stage, each against its target where one exists.

One module per stage: :mod:`~handbench.bench.physics` (raw ``mj_step`` against ``env.step``; render ms per
frame), :mod:`~handbench.bench.generate` (expert demos/s with 1 and 2 workers, ``generate-demos`` end to
end), :mod:`~handbench.bench.evaluation` (episodes/s in-process and on Ray workers, evaluator overhead),
:mod:`~handbench.bench.rollout` (batched lanes against the one-episode path and an AsyncVectorEnv loop; the
full-protocol wall time), :mod:`~handbench.bench.policies` (ms per model query, training steps/s).
:mod:`~handbench.bench.report` holds the figures and the table; :mod:`~handbench.bench.runner` runs the
sections. Nothing is hard-coded: every figure is measured, and ratios are measured within one run.
"""

from __future__ import annotations

from handbench.bench.physics import ENV_OVER_RAW_TARGET
from handbench.bench.report import (
           DEFAULT_SECTIONS,
           SECTIONS,
           BenchConfig,
           BenchReport,
           Figure,
           print_report,
           write_report,
)
from handbench.bench.runner import SECTION_RUNNERS, parse_sections, run_bench, validate_names

__all__ = ["DEFAULT_SECTIONS", "ENV_OVER_RAW_TARGET", "SECTIONS", "SECTION_RUNNERS", "BenchConfig", "BenchReport",
           "Figure", "parse_sections", "print_report", "run_bench", "validate_names", "write_report"]
