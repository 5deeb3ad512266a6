"""Pipeline discovery through the ``benchsuite.pipelines`` entry-point group.

Built-in pipelines register through the same group as third-party plugins (see ``pyproject.toml``), so
there is one way in; the group is read by :class:`benchsuite.plugins.PluginGroup`, as are tasks and data-set
formats. A plugin that fails to import or does not conform (:func:`pipeline_problems`) is listed with its
problem and skipped; it never stops the suite from running the others.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, replace
from typing import Any

from benchsuite.api import Pipeline, check_pipeline_class
from benchsuite.plugins import PluginGroup, PluginProblem, load_ref, name_problem
from benchsuite.tasks.registry import TASKS

__all__ = ["PIPELINES", "PipelineInfo", "discover", "distribution_version", "get_pipeline_class", "list_pipelines",
           "load_ref", "pipeline_problems", "pipeline_provenance", "resolve"]

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


def discover() -> dict[str, PipelineInfo]:
    """Every pipeline in the entry-point group, by id (broken ones included, with ``error`` set)."""
    out = {}
    for entry in PIPELINES.discover().values():
        info = entry.obj if entry.ok else PipelineInfo(entry.name, "", "", error=entry.error)
        out[entry.name] = replace(info, ref=entry.ref, distribution=entry.distribution, overrides=entry.overrides)
    return out


def list_pipelines(pattern: str = "*", task: str | None = None, include_broken: bool = False
                   ) -> list[PipelineInfo]:
    """Pipelines whose id matches the shell-style ``pattern``, optionally of one task."""
    return [
        info
        for info in discover().values()
        if fnmatch.fnmatch(info.id, pattern)
        and (task is None or info.task == task)
        and (include_broken or info.ok)
    ]


def resolve(ids: list[str], tasks: list[str] | None = None) -> list[PipelineInfo]:
    """The pipelines named by ``ids`` (shell patterns allowed); an unknown id is a ConfigError."""
    known = discover()
    chosen: dict[str, PipelineInfo] = {}
    for pattern in ids:
        matches = [info for pid, info in known.items() if fnmatch.fnmatch(pid, pattern)]
        if not matches:
            raise PIPELINES.unknown(pattern)
        for info in matches:
            if not info.ok:
                if pattern == info.id:
                    raise PIPELINES.unusable(PIPELINES.discover()[info.id])
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
