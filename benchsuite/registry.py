"""Pipeline discovery through the ``benchsuite.pipelines`` entry-point group.

Built-in pipelines register through the same group as third-party plugins (see ``pyproject.toml``), so
there is one way in; the group is read by :class:`benchsuite.plugins.PluginGroup`, as are tasks and data-set
formats. A plugin that fails to import or does not conform (:func:`pipeline_problems`) is listed with its
problem and skipped; it never stops the suite from running the others.

A run may also name a class that no entry point registers, as ``module:Class`` (:func:`ref_info`). An unknown
id is refused with what may have been meant (:func:`discovery_hints`): entry points in a group whose name is a
near miss of ``benchsuite.pipelines``, and classes that declare that id but are not registered (found by reading
source files, never by importing them).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchsuite.api import Pipeline, check_pipeline_class
from benchsuite.errors import ConfigError
from benchsuite.plugins import PluginGroup, PluginProblem, load_ref, name_problem, near_miss_groups
from benchsuite.tasks.registry import TASKS

__all__ = ["PIPELINES", "PipelineInfo", "discover", "discovery_hints", "distribution_version", "find_pipeline",
           "get_pipeline_class", "list_pipelines", "load_ref", "pipeline_problems", "pipeline_provenance", "ref_info",
           "resolve"]

ENTRY_POINT_GROUP = "benchsuite.pipelines"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineInfo:
    """One discovered pipeline: its id, where it lives, and what it declares (or why it is broken)."""

    id: str
    ref: str  # "module:ClassName", importable in a worker process
    distribution: str
    task: str = ""
    family: str = ""
    devices: tuple[str, ...] = ()
    pretrained_reference: bool = False
    description: str = ""
    error: str = ""
    overrides: str = ""  # the built-in's "module:Class" this plugin replaces on request (BENCHSUITE_OVERRIDE)

    @property
    def ok(self) -> bool:
        return not self.error


def distribution_version(distribution: str | None) -> str | None:
    """The installed version of ``distribution`` (None when unknown)."""
    from importlib import metadata

    if not distribution or distribution == "?":
        return None
    try:
        return metadata.version(distribution)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def pipeline_provenance(info: PipelineInfo) -> dict[str, Any]:
    """What ``run.json`` and each record say about the class registered under ``info.id``: its module and class
    name, the distribution that registered it and that distribution's version, and the built-in it replaces on the
    user's request (``overrides``, None when none)."""
    module, _, qualname = info.ref.partition(":")
    return {"module": module, "qualname": qualname, "distribution": info.distribution or None,
            "version": distribution_version(info.distribution), "overrides": info.overrides or None}


def pipeline_problems(cls: Any) -> list[str]:
    """What is wrong with pipeline class ``cls`` (empty when it conforms): its declarations
    (:func:`benchsuite.api.check_pipeline_class`), then its task: a registered one, whose pipeline base class it
    derives from and whose required methods it implements."""
    problems = check_pipeline_class(cls)
    if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
        return problems
    if isinstance(cls.id, str) and cls.id and name_problem(cls.id, "pipeline"):
        problems.append(f"{cls.__name__}.id: {name_problem(cls.id, 'pipeline')}")
    task = TASKS.find(cls.task) if isinstance(cls.task, str) else None
    if task is None:
        problems.append(f"{cls.__name__}.task must be one of {TASKS.names()}, got {cls.task!r}")
        return problems
    base = task.pipeline_base
    if not issubclass(cls, base):
        problems.append(f"{cls.__name__} declares task {cls.task!r} but does not derive from "
                        f"{base.__module__}.{base.__name__}")
    for name in task.required_methods:
        if getattr(cls, name, None) is getattr(base, name, None):
            problems.append(f"{cls.__name__} does not implement {name}()")
    return problems


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def _check(name: str, cls: Any) -> PipelineInfo:
    problems = pipeline_problems(cls)
    if not problems and cls.id != name:
        problems.append(f"entry point name {name!r} differs from {cls.__module__}.{cls.__qualname__}.id {cls.id!r}")
    if problems:
        raise PluginProblem("; ".join(problems))
    return PipelineInfo(id=cls.id, ref="", distribution="", task=cls.task, family=cls.family,
                        devices=tuple(cls.devices), pretrained_reference=bool(cls.pretrained_reference),
                        description=cls.description or _first_line(cls.__doc__))


#: the ``benchsuite.pipelines`` entry points, by id
PIPELINES: PluginGroup[PipelineInfo] = PluginGroup(ENTRY_POINT_GROUP, "pipeline", _check)


def _info(entry: Any) -> PipelineInfo:
    info = entry.obj if entry.ok else PipelineInfo(entry.name, "", "", error=entry.error)
    return replace(info, ref=entry.ref, distribution=entry.distribution, overrides=entry.overrides)


def find_pipeline(pipeline_id: str) -> PipelineInfo | None:
    """The pipeline registered under ``pipeline_id`` (broken or not), importing that one plugin only; None when no
    entry point has that name."""
    entry = PIPELINES.entry(pipeline_id)
    return _info(entry) if entry is not None else None


def discover() -> dict[str, PipelineInfo]:
    """Every pipeline in the entry-point group, by id (broken ones included, with ``error`` set)."""
    return {entry.name: _info(entry) for entry in PIPELINES.discover().values()}


def list_pipelines(pattern: str = "*", task: str | None = None, include_broken: bool = False
                   ) -> list[PipelineInfo]:
    """Pipelines whose id matches the shell-style ``pattern``, optionally of one task (only the plugins whose entry
    point name matches are imported)."""
    if pattern == "*":
        infos = list(discover().values())
    else:
        infos = [i for i in (find_pipeline(n) for n in PIPELINES.registered_names() if fnmatch.fnmatch(n, pattern))
                 if i is not None]
    return [
        info
        for info in infos
        if fnmatch.fnmatch(info.id, pattern)
        and (task is None or info.task == task)
        and (include_broken or info.ok)
    ]


#: the ``distribution`` of a pipeline a run names as ``module:Class`` (no entry point)
NOT_INSTALLED = "(module:Class, not installed)"


def ref_info(ref: str) -> PipelineInfo:
    """The pipeline class ``ref`` (``module:Class``) that no entry point may register, for a run: importable from
    the current folder or ``sys.path`` (a worker imports it the same way), conforming (:func:`pipeline_problems`),
    and not reusing an installed pipeline's id. Anything else is a ConfigError saying so."""
    if os.getcwd() not in sys.path:  # `benchsuite run --pipelines mymodule:Class` from the folder that holds it
        sys.path.append(os.getcwd())
    try:
        cls = load_ref(ref)
    except Exception as exc:
        raise ConfigError(f"--pipelines {ref}: cannot import it ({type(exc).__name__}: {exc}); module:Class must be "
                          f"importable from the current folder or PYTHONPATH") from None
    problems = pipeline_problems(cls)
    if problems:
        raise ConfigError(f"--pipelines {ref}: " + "; ".join(problems))
    installed = find_pipeline(cls.id)
    if installed is not None and installed.ref != ref and (not installed.ok or load_ref(installed.ref) is not cls):
        raise ConfigError(f"--pipelines {ref}: its id {cls.id!r} is the installed pipeline {installed.ref}'s (from "
                          f"{installed.distribution}); give the class an id of its own")
    info = _check(cls.id, cls)
    return replace(info, ref=ref, distribution=installed.distribution if installed else NOT_INSTALLED)


def resolve(ids: list[str], tasks: list[str] | None = None) -> list[PipelineInfo]:
    """The pipelines named by ``ids`` (shell patterns, or ``module:Class`` for a class no entry point registers:
    :func:`ref_info`); an unknown id is a ConfigError that names what may have been meant
    (:func:`discovery_hints`)."""
    chosen: dict[str, PipelineInfo] = {}
    for pattern in ids:
        if ":" in pattern:
            info = ref_info(pattern)
            if tasks is None or info.task in tasks:
                chosen[info.id] = info
            continue
        if any(c in pattern for c in "*?["):
            matches = [info for pid, info in discover().items() if fnmatch.fnmatch(pid, pattern)]
        else:  # one id: only its plugin is imported
            matches = [info] if (info := find_pipeline(pattern)) is not None else []
        if not matches:
            raise ConfigError(str(PIPELINES.unknown(pattern, PIPELINES.registered_names())) + discovery_hints(pattern))
        for info in matches:
            if not info.ok:
                if pattern == info.id:
                    raise PIPELINES.unusable(PIPELINES.entry(info.id))  # type: ignore[arg-type]
                log.warning("--pipelines %r matches the broken plugin %s (%s, from %s), left out: %s", pattern,
                            info.id, info.ref, info.distribution, info.error)
                continue
            if tasks is None or info.task in tasks:
                chosen[info.id] = info
    return list(chosen.values())


def get_pipeline_class(pipeline_id: str) -> type[Pipeline]:
    """The class registered under ``pipeline_id``."""
    PIPELINES.get(pipeline_id)  # an unknown or broken id fails here, in the group's words
    return load_ref(PIPELINES.discover()[pipeline_id].ref)


# ------------------------------------------------------------------------------------------------ discovery hints
def discovery_hints(name: str) -> str:
    """What an unknown pipeline id ``name`` may have meant, as text to append to the error ('' when nothing):
    entries in an entry-point group whose name is a near miss of ``benchsuite.pipelines``, and classes that declare
    ``id = name`` without an entry point (:func:`unregistered_classes`). Nothing is imported."""
    hints = []
    for group, dist, entries in near_miss_groups(ENTRY_POINT_GROUP):
        hints.append(f"distribution {dist} registers {', '.join(entries)} in the entry-point group {group!r}, which "
                     f"the suite does not read: the group is {ENTRY_POINT_GROUP!r} (fix its pyproject.toml and "
                     f"reinstall)")
    if not any(c in name for c in "*?["):
        for ref, where in unregistered_classes(name):
            hints.append(f"{where} declares id {name!r} in {ref}, which no entry point registers: add "
                         f"`{name} = \"{ref}\"` under [project.entry-points.\"{ENTRY_POINT_GROUP}\"] in its "
                         f"pyproject.toml and pip install it, or name the class: --pipelines {ref}")
    return "".join(f"\n  hint: {h}" for h in hints)


#: at most this many source files are read when looking for a class that declares an id
_MAX_SCANNED = 400
_SKIPPED_FOLDERS = {"site-packages", "node_modules", "__pycache__", "build", "dist", "results", "data"}


def _candidate_sources() -> list[tuple[Path, Path, str]]:
    """``(file, import root, where)`` of the Python files a plugin author's unregistered class may be in: the
    current folder (two levels down, and its ``src/``), and the installed distributions that require
    benchsuite (their installed files, or the source folder of an editable install)."""
    import json
    import re
    from importlib.metadata import distributions

    out: list[tuple[Path, Path, str]] = []
    cwd = Path.cwd()
    for root in (cwd, cwd / "src"):
        if root.is_dir():
            for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")) + sorted(root.glob("*/*/*.py")):
                rel = path.relative_to(root).parts
                if not any(p.startswith(".") or p in _SKIPPED_FOLDERS or p.startswith("venv") for p in rel[:-1]):
                    out.append((path, root, f"{path.relative_to(cwd)} (the current folder)"))
    for dist in distributions():
        if not any(re.split(r"[\s;<>=!~\[(]", r.strip(), maxsplit=1)[0].lower() == "benchsuite"
                   for r in dist.requires or ()):
            continue
        name = dist.metadata["Name"]
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            direct = {}
        if direct.get("dir_info", {}).get("editable") and str(direct.get("url", "")).startswith("file://"):
            source = Path(direct["url"][len("file://"):])
            for root in (source / "src", source):
                if root.is_dir():
                    out += [(p, root, f"distribution {name} (editable, {root})") for p in sorted(root.rglob("*.py"))
                            if not any(part.startswith(".") or part in _SKIPPED_FOLDERS for part in
                                       p.relative_to(root).parts[:-1])]
                    break
        else:
            for f in dist.files or ():
                if str(f).endswith(".py") and not str(f).startswith(".."):
                    out.append((Path(str(dist.locate_file(f))), Path(str(dist.locate_file(""))),
                                f"distribution {name}"))
    return out[:_MAX_SCANNED]


def unregistered_classes(pipeline_id: str) -> list[tuple[str, str]]:
    """``(module:Class, where)`` of the classes in :func:`_candidate_sources` whose body declares
    ``id = "<pipeline_id>"`` and that no ``benchsuite.pipelines`` entry point names. The files are parsed
    (:mod:`ast`), never imported."""
    import ast
    from importlib.metadata import entry_points

    registered = {ep.value.strip() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found: list[tuple[str, str]] = []
    for path, root, where in _candidate_sources():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if pipeline_id not in text:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        module = module[: -len(".__init__")] if module.endswith(".__init__") else module
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant)
                    and stmt.value.value == pipeline_id
                    and any(isinstance(t, ast.Name) and t.id == "id"
                            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]))
                    for stmt in node.body):
                ref = f"{module}:{node.name}"
                if ref not in registered and (ref, where) not in found:
                    found.append((ref, where))
    return found
