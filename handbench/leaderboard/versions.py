"""Which library versions a leaderboard result may come from.

A result is accepted only if every library that shapes it was at a version handbench supports: handbench itself
at a released version (``HANDBENCH_RELEASES``, or the installed one), and each of its dependencies within
handbench's own requirement (the floors and pins of ``pyproject.toml``, read from the installed package's
metadata) and below the next major version that handbench has not been tested with (``UNTESTED_FROM``).
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, requires

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from handbench.errors import HandbenchError

HANDBENCH_RELEASES = ("0.1.0",)
# The first version of a dependency handbench has not been tested with (a major release can change physics,
# the compiled model format or numerics).
UNTESTED_FROM = {"mujoco": "5", "numpy": "3", "gymnasium": "2", "pandas": "4"}
# Libraries whose versions results record (episodes.csv columns and meta.json ``versions``) and that are checked.
CHECKED_LIBRARIES = ("mujoco", "numpy", "gymnasium", "pandas", "torch", "ray")


@functools.cache
def supported_specifiers() -> dict[str, SpecifierSet]:
    """Library name -> the versions accepted: handbench's requirement, capped by ``UNTESTED_FROM``."""
    specifiers: dict[str, SpecifierSet] = {}
    try:
        declared = requires("handbench") or []
    except PackageNotFoundError:  # pragma: no cover - handbench runs installed
        declared = []
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # pragma: no cover - pip would not have installed it
            continue
        if requirement.marker is not None or requirement.name not in CHECKED_LIBRARIES:
            continue
        specifiers[requirement.name] = requirement.specifier
    for name, ceiling in UNTESTED_FROM.items():
        specifiers[name] = specifiers.get(name, SpecifierSet()) & SpecifierSet(f"<{ceiling}")
    return specifiers


def handbench_releases() -> tuple[str, ...]:
    from handbench.version import __version__

    return tuple(sorted({*HANDBENCH_RELEASES, __version__}))


def version_problem(library: str, version: str) -> str | None:
    """None if ``version`` of ``library`` is supported, else a sentence saying what is supported."""
    if library == "handbench":
        releases = handbench_releases()
        if version in releases:
            return None
        return f"handbench {version} is not a handbench release ({', '.join(releases)})"
    specifier = supported_specifiers().get(library)
    if specifier is None:
        return None
    try:
        parsed = Version(version)
    except InvalidVersion:
        return f"{library} version {version!r} is not a version number"
    # Local labels (torch's "+cpu") name a build of the same release.
    if not specifier.contains(Version(parsed.public), prereleases=True):
        return f"{library} {version} is outside the supported versions ({specifier})"
    return None


def check_versions(versions: dict[str, str], where: str) -> None:
    """Raise on the first unsupported library version (``versions``: library -> version as recorded)."""
    for library in ("handbench", *CHECKED_LIBRARIES):
        version = versions.get(library)
        if not version or version == "not installed":
            continue
        problem = version_problem(library, version)
        if problem:
            raise HandbenchError(f"{where}: {problem}; re-run with supported versions (`handbench doctor`)")
