"""Pipeline discovery through the ``benchsuite.pipelines`` entry-point group.

Built-in pipelines register through the same group as third-party plugins (see ``pyproject.toml``), so
there is one way in. A plugin that fails to import or does not conform is listed with its problem and
skipped; it never stops the suite from running the others.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from benchsuite.api import Pipeline, check_pipeline_class
from benchsuite.errors import ConfigError

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

    @property
    def ok(self) -> bool:
        return not self.error


def load_ref(ref: str) -> type[Pipeline]:
    """Import ``"module:ClassName"`` and return the class."""
    module_name, _, attr = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def _inspect(name: str, ref: str, dist: str) -> PipelineInfo:
    try:
        cls = load_ref(ref)
    except Exception as exc:  # a broken plugin is reported, not fatal
        return PipelineInfo(name, ref, dist, error=f"cannot import {ref}: {type(exc).__name__}: {exc}")
    problems = check_pipeline_class(cls)
    if not problems and cls.id != name:
        problems.append(f"entry point name {name!r} differs from {ref}.id {cls.id!r}")
    if problems:
        return PipelineInfo(name, ref, dist, error="; ".join(problems))
    return PipelineInfo(
        id=cls.id,
        ref=ref,
        distribution=dist,
        task=cls.task,
        family=cls.family,
        devices=tuple(cls.devices),
        pretrained_reference=bool(cls.pretrained_reference),
        description=cls.description or _first_line(cls.__doc__),
    )


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def discover() -> dict[str, PipelineInfo]:
    """Every pipeline in the entry-point group, by id (broken ones included, with ``error`` set)."""
    found: dict[str, PipelineInfo] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        info = _inspect(ep.name, ep.value, dist)
        if info.id in found and found[info.id].ref != info.ref:
            log.warning("pipeline id %r is registered twice (%s and %s); keeping the first",
                        info.id, found[info.id].ref, info.ref)
            continue
        found[info.id] = info
    return dict(sorted(found.items()))


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
            ok_ids = ", ".join(pid for pid, info in known.items() if info.ok)
            raise ConfigError(f"unknown pipeline {pattern!r}; known pipelines: {ok_ids}")
        for info in matches:
            if not info.ok:
                if pattern == info.id:
                    raise ConfigError(f"pipeline {info.id!r} cannot be used: {info.error}")
                log.warning("--pipelines %r matches the broken plugin %s (%s, from %s), left out: %s", pattern,
                            info.id, info.ref, info.distribution, info.error)
                continue
            if tasks is None or info.task in tasks:
                chosen[info.id] = info
    return list(chosen.values())


def get_pipeline_class(pipeline_id: str) -> type[Pipeline]:
    """The class registered under ``pipeline_id``."""
    info = discover().get(pipeline_id)
    if info is None:
        raise ConfigError(f"unknown pipeline {pipeline_id!r}; see `benchsuite list`")
    if not info.ok:
        raise ConfigError(f"pipeline {pipeline_id!r} cannot be used: {info.error}")
    return load_ref(info.ref)


def create_pipeline(pipeline_id: str, **params: object) -> Pipeline:
    """An instance of the pipeline registered under ``pipeline_id``."""
    return get_pipeline_class(pipeline_id)(**params)
