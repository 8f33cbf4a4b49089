"""One-way dependencies: the import graph of the source has no cycle, type-only and in-function imports included.

The graph is built from the source files (``ast``), not from what happens to be imported at run time; ``tasks/``
and ``baselines/`` count as ``handbench.tasks`` and ``handbench.baselines``, as installed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import handbench

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"handbench": REPO / "handbench", "handbench.tasks": REPO / "tasks", "handbench.baselines": REPO / "baselines"}


def source_modules() -> dict[str, Path]:
    """Module name -> file, for every module of the three packages."""
    modules = {}
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            if package == "handbench" and parts and parts[0] in ("tasks", "baselines"):
                continue  # a link or leftover copy: the real packages are the top-level folders
            modules[".".join([package, *parts])] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (top level, in functions, under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # handbench.hands.base.X -> handbench.hands.base
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_source_has_no_import_cycle():
    graph = import_graph()
    assert {"handbench.env", "handbench.registry", "handbench.tasks.lift_cube", "handbench.baselines.act"} <= set(graph)
    problems = [" <-> ".join(component) + "\n    " + "\n    ".join(
        f"{module} imports {', '.join(sorted(graph[module] & set(component)))}" for module in component)
        for component in cycles(graph)]
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from handbench.env import X\n"
    (tmp_path / "m.py").write_text(source + "def f():\n    from . import registry\n")
    modules = {"handbench.m": tmp_path / "m.py", "handbench.env": Path(), "handbench.registry": Path()}
    assert imported_modules("handbench.m", tmp_path / "m.py", modules) == {"handbench.env", "handbench.registry"}


def test_env_and_tasks_do_not_reach_up_the_layers():
    graph = import_graph()
    assert "handbench.registry" not in graph["handbench.env"]  # HandEnv receives what it runs
    for module in ("handbench.task", "handbench.expert"):
        assert not graph[module] & {"handbench.env", "handbench.registry"}, module


def test_version_matches_the_package_metadata():
    import tomllib

    assert handbench.__version__ == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
