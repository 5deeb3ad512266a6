"""No import cycles, no arrows upward: the import graph of ``benchsuite/`` and ``pipelines/``, read statically.

Every ``import`` and ``from ... import`` counts, at module level or inside a function (a function-level import
is still a dependency; it only hides the cycle until the function runs). Imports under ``if TYPE_CHECKING:`` do
not count: they never run. A cycle between modules fails the test with the cycle and the lines that make it;
so does any module of the framework (``benchsuite``) that imports a pipeline (``pipelines``): pipelines are
plugins of the framework, found through entry points, never imported by it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("benchsuite", "pipelines")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{self.line})"


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of ``packages`` under ``root`` (a package is its
    ``__init__.py``)."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, at any depth, except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:  # the else branch runs
                yield from _imports_in(other)
        else:
            yield from _imports_in(child)


def _imports_in(statement: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        yield statement
    else:
        yield from _import_nodes(statement)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is a known module (``a.b.attr`` -> ``a.b``)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_edges(modules: dict[str, Path], root: Path) -> list[Edge]:
    """The edges between ``modules``: one per (importing module, imported module, line)."""
    edges: list[Edge] = []
    for source, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(root))
        for node in _import_nodes(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, modules) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the package of ``source``
                    package = source.split(".") if is_package else source.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join([*package, base] if base else package)
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    targets.append(full if full in modules else _known(base, modules))
            for target in targets:
                if target is not None and target != source:
                    edges.append(Edge(source, target, rel, node.lineno))
    return edges


def cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges) for each strongly connected component of more than one module (Tarjan)."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            if e.target not in index:
                visit(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(sorted(c)[0], set(c), graph) for c in components]


def _one_cycle(start: str, members: set[str], graph: dict[str, list[Edge]]) -> list[Edge]:
    """The shortest cycle through ``start`` inside one component (breadth first)."""
    came: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for e in graph[v]:
                if e.target not in members:
                    continue
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if e.target not in came:
                    came[e.target] = e
                    nxt.append(e.target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a component of more than one module has one


def describe(cycle: list[Edge]) -> str:
    names = " -> ".join([cycle[0].source, *(e.target for e in cycle)])
    return names + "\n    " + "\n    ".join(str(e) for e in cycle)


# ------------------------------------------------------------------------------------------------ the tests


def _suite_edges() -> list[Edge]:
    return import_edges(module_files(ROOT, PACKAGES), ROOT)


def test_no_import_cycles():
    found = cycles(_suite_edges())
    assert not found, "import cycles:\n" + "\n".join(describe(c) for c in found)


def test_the_framework_never_imports_a_pipeline():
    upward = [e for e in _suite_edges() if e.source.split(".")[0] == "benchsuite"
              and e.target.split(".")[0] == "pipelines"]
    assert not upward, "benchsuite imports pipelines (they are plugins):\n" + "\n".join(map(str, upward))


def test_the_graph_sees_function_level_imports_and_reports_the_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import thing\n    return thing\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
                              "from . import b\n")
    edges = import_edges(module_files(tmp_path, ("pkg",)), tmp_path)
    assert {(e.source, e.target) for e in edges} == {("pkg.a", "pkg.b"), ("pkg.b", "pkg.a"), ("pkg.c", "pkg.b")}
    (cycle,) = cycles(edges)
    assert describe(cycle).splitlines()[0] == "pkg.a -> pkg.b -> pkg.a"
    assert "pkg/b.py:2" in describe(cycle)


def _declared_pipelines(modules: dict[str, Path]) -> set[str]:
    """``module:Class`` of every class in ``pipelines/`` that declares a non-empty ``id`` (a concrete pipeline)."""
    out = set()
    for name, path in modules.items():
        if not name.startswith("pipelines."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else (
                    stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None)
                value = getattr(stmt, "value", None)
                if (isinstance(target, ast.Name) and target.id == "id" and isinstance(value, ast.Constant)
                        and isinstance(value.value, str) and value.value):
                    out.add(f"{name}:{node.name}")
    return out


def test_every_pipeline_class_is_registered():
    """A built-in pipeline is registered through the entry points a plugin uses, or it is not in the tree."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    registered = set(project["entry-points"]["benchsuite.pipelines"].values())
    unregistered = _declared_pipelines(module_files(ROOT, PACKAGES)) - registered
    assert not unregistered, f"pipeline classes with an id but no entry point: {sorted(unregistered)}"


def test_the_graph_covers_the_whole_suite():
    modules = module_files(ROOT, PACKAGES)
    assert {"benchsuite.api", "benchsuite.results.schema", "benchsuite.measure.timing",
            "pipelines.classical.nn_l1"} <= set(modules)
    edges = _suite_edges()
    assert any(e.source == "benchsuite.tasks.classification" and e.target == "benchsuite.measure.timing"
               for e in edges)
