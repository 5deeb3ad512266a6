"""No import cycles, no arrows upward, no task named outside its task: the import graph of ``benchsuite/`` and
``pipelines/``, and the string literals of the tree, read statically.

Every ``import`` and ``from ... import`` counts, at module level or inside a function (a function-level import
is still a dependency; it only hides the cycle until the function runs). Imports under ``if TYPE_CHECKING:`` do
not count: they never run. A cycle between modules fails the test with the cycle and the lines that make it;
so does any module of the framework (``benchsuite``) that imports a pipeline (``pipelines``): pipelines are
plugins of the framework, found through entry points, never imported by it; so does a module that imports one of
a higher layer, the layers as the README's "Contributing: where things go" lists them; and so does a registered
task's name used as a string literal outside ``benchsuite/tasks/`` and the task's own module.
"""

from __future__ import annotations

import ast
import re
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


# ------------------------------------------------------------------------------------------------ layers


def readme_layers(readme: str) -> list[list[str]]:
    """The framework's layers, lowest first, as the README's "Contributing: where things go" lists them: a
    numbered line per layer, ``1. `errors`, `plugins`: what they are``; each name is a module or package under
    ``benchsuite/`` (``__init__`` is the package's own module)."""
    start = readme.index("## Contributing: where things go")
    end = readme.find("\n## ", start + 1)
    section = readme[start:end if end > 0 else None]
    layers = []
    for line in section.splitlines():
        m = re.match(r"^(\d+)\. (.+?): ", line)
        if m:
            assert int(m.group(1)) == len(layers) + 1, f"README layer lines out of order at {line!r}"
            layers.append(re.findall(r"`([^`]+)`", m.group(2)))
    return layers


def layer_of(module: str, layers: list[list[str]], package: str = "benchsuite") -> int | None:
    """The index of ``module``'s layer (its longest listed prefix), or None when no layer lists it."""
    rel = "__init__" if module == package else module.removeprefix(package + ".")
    best: tuple[int, int] | None = None
    for index, names in enumerate(layers):
        for name in names:
            if (rel == name or rel.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def upward_imports(edges: list[Edge], layers: list[list[str]], package: str = "benchsuite") -> list[str]:
    """Every import of ``package`` whose target sits in a higher layer than its source, as text."""
    out = []
    for e in edges:
        if e.source.split(".")[0] != package or e.target.split(".")[0] != package:
            continue
        low, high = layer_of(e.source, layers, package), layer_of(e.target, layers, package)
        if low is not None and high is not None and high > low:
            out.append(f"{e} : layer {low + 1} ({', '.join(layers[low])}) imports layer {high + 1} "
                       f"({', '.join(layers[high])})")
    return out


def _layers() -> list[list[str]]:
    return readme_layers((ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_framework_module_is_in_a_layer_of_the_readme():
    layers = _layers()
    assert len(layers) >= 4, f"the README lists {len(layers)} layers"
    modules = [m for m in module_files(ROOT, ("benchsuite",))]
    unplaced = [m for m in modules if layer_of(m, layers) is None]
    assert not unplaced, f"modules in no layer of the README's list: {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    upward = upward_imports(_suite_edges(), _layers())
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_layer_check_names_an_upward_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("x = 1\n\ndef f():\n    from pkg import high\n")
    (pkg / "high.py").write_text("from pkg.low import a\n")
    readme = "## Contributing: where things go\n\n1. `low`, `__init__`: below\n2. `high`: above\n\n## Next\n"
    layers = readme_layers(readme)
    assert layers == [["low", "__init__"], ["high"]]
    edges = import_edges(module_files(tmp_path, ("pkg",)), tmp_path)
    (line,) = upward_imports(edges, layers, "pkg")
    assert line.startswith("pkg.low.a -> pkg.high (pkg/low/a.py:4)") and "layer 1 (low, __init__)" in line


# ------------------------------------------------------------------------------------------------ task names

#: string literals equal to a task's name that do not name the task, by (file, literal), with the reason; an entry
#: whose literal is no longer in its file fails the test, so that the list never outlives its reason
NOT_A_TASK = {
    ("benchsuite/proposal_cache.py", "proposals"): "the cache's folder name and its progress bar's label",
    ("benchsuite/metrics/proposals.py", "proposals"): "the name of the argument in a message about its shape",
    # the Ray executor infers the proposals job's consumers from their names until the declared dependencies of
    # issue 21.4 replace it (benchsuite/runner, another change): remove this entry then
}


def registered_tasks(pyproject: str) -> dict[str, str]:
    """Task name -> its module, from the ``benchsuite.tasks`` entry points of ``pyproject.toml``."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    group = tomllib.loads(pyproject)["project"]["entry-points"]["benchsuite.tasks"]
    return {name: ref.partition(":")[0] for name, ref in group.items()}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _declarations(tree: ast.AST) -> set[int]:
    """Constants that declare a class's ``task`` (a pipeline says which task it is for) or are a path component
    (``folder / "name"``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else (
                    stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None)
                if isinstance(target, ast.Name) and target.id == "task" and isinstance(stmt.value, ast.Constant):
                    out.add(id(stmt.value))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            out.update(id(side) for side in (node.left, node.right) if isinstance(side, ast.Constant))
    return out


def task_name_literals(root: Path, files: list[Path], tasks: dict[str, str]) -> list[tuple[str, int, str]]:
    """``(file, line, name)`` of every string literal equal to a task's name in ``files``, outside
    ``benchsuite/tasks/`` and the task's own module, docstrings, ``task`` declarations and path components."""
    own = {name: module.replace(".", "/") + ".py" for name, module in tasks.items()}
    found = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel.startswith("benchsuite/tasks/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        skip = _docstrings(tree) | _declarations(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in tasks
                    and id(node) not in skip and own[node.value] != rel):
                found.append((rel, node.lineno, node.value))
    return sorted(found)


def _tree_files() -> list[Path]:
    files = [p for package in (*PACKAGES, "tools") for p in sorted((ROOT / package).rglob("*.py"))]
    return [*files, ROOT / "run_all.py"]


def test_no_task_is_named_outside_its_task():
    tasks = registered_tasks((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert {"classification", "detection", "proposals"} <= set(tasks)
    found = task_name_literals(ROOT, _tree_files(), tasks)
    named = [f"{f}:{line}: {name!r}" for f, line, name in found if (f, name) not in NOT_A_TASK]
    assert not named, ("task names as string literals outside benchsuite/tasks/ (ask the task instead: "
                       "benchsuite.tasks.registry):\n" + "\n".join(named))
    stale = sorted(k for k in NOT_A_TASK if k not in {(f, name) for f, _, name in found})
    assert not stale, f"NOT_A_TASK entries whose literal is gone (remove them): {stale}"


def test_the_literal_check_names_file_and_line(tmp_path):
    (tmp_path / "benchsuite" / "tasks").mkdir(parents=True)
    (tmp_path / "benchsuite" / "tasks" / "counting.py").write_text('name = "counting"\n')
    (tmp_path / "benchsuite" / "runner.py").write_text(
        '"""Runs "counting" jobs."""\n\nclass P:\n    task = "counting"\n\n'
        'def f(job, folder):\n    return folder / "counting" if job.task == "counting" else None\n')
    files = sorted(tmp_path.rglob("*.py"))
    found = task_name_literals(tmp_path, files, {"counting": "benchsuite.tasks.counting"})
    assert found == [("benchsuite/runner.py", 7, "counting")]
