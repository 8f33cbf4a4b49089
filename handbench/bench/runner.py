"""Running the selected sections in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from handbench.bench import evaluation, generate, physics, pixels, planning, policies, rollout
from handbench.bench.report import SECTIONS, BenchConfig, BenchReport, Figure, load_average, machine_info
from handbench.errors import HandbenchError

SECTION_RUNNERS: dict[str, Callable[[BenchConfig, BenchReport], None]] = {
    "physics": physics.physics_section, "render": physics.render_section, "generate": generate.generate_section,
    "eval": evaluation.eval_section, "rollout": rollout.rollout_section, "inference": policies.inference_section,
    "train": policies.train_section, "planning": planning.planning_section,
    "train-pixels": pixels.train_pixels_section, "protocol": rollout.protocol_section,
}


def parse_sections(text: str | None) -> tuple[str, ...]:
    """``--only a,b`` -> ("a", "b"); None: every section but ``protocol``. One line on an unknown name."""
    from handbench.bench.report import DEFAULT_SECTIONS

    if not text:
        return DEFAULT_SECTIONS
    sections = tuple(part.strip() for part in text.split(",") if part.strip())
    for section in sections:
        if section not in SECTIONS:
            raise HandbenchError(f"unknown bench section {section!r}; valid: {', '.join(SECTIONS)}")
    return sections


def run_bench(config: BenchConfig, on_section: Callable[[str], None] | None = None) -> BenchReport:
    """Run the selected sections in order. A section that crashes is reported, and the others still run."""
    report = BenchReport(machine=machine_info())
    for section in config.sections:
        if on_section:
            on_section(section)
        try:
            SECTION_RUNNERS[section](config, report)
        except HandbenchError:
            raise
        except Exception as exc:  # one broken stage must not hide the figures of the others
            report.figures.append(Figure(section, section, None, "",
                                         note=f"failed: {type(exc).__name__}: {str(exc)[:160]}"))
    report.machine["load_average_end"] = load_average()
    return report


def validate_names(tasks: Sequence[str] | None, hands: Sequence[str] | None) -> None:
    from handbench.errors import unknown_choice
    from handbench.hands import HANDS
    from handbench.registry import get_task_class

    for task in tasks or ():
        get_task_class(task)
    for hand in hands or ():
        if hand not in HANDS:
            raise unknown_choice("hand", hand, HANDS)
