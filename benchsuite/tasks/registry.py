"""Task discovery through the ``benchsuite.tasks`` entry-point group.

A task (classification, detection, proposals, or a plugin's own) is one module with one class derived from
:class:`benchsuite.tasks.base.Task`, registered under its name in the group, exactly as pipelines register in
``benchsuite.pipelines``::

    [project.entry-points."benchsuite.tasks"]
    counting = "mypkg.counting:CountingTask"

The runner, the worker, the report, ``compare``, :mod:`benchsuite.api` (which tasks a pipeline may declare) and
:mod:`benchsuite.data.datasets` (which tasks a data set serves) all ask this registry; none of them names a task.
A task plugin that fails to import or does not conform is listed with its problem (:func:`list_tasks`) and left
out; it never stops the others.

This module imports no task and nothing of the framework above :mod:`benchsuite.errors`, so that any layer may
ask it; the task modules are imported when the group is first read.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from benchsuite.errors import ConfigError

ENTRY_POINT_GROUP = "benchsuite.tasks"
#: the suite's own tasks, used only when the installed metadata predates the ``benchsuite.tasks`` group (an
#: editable install from before it existed): ``pip install -e .`` again makes the entry points the one way in
BUILTIN_TASKS = {
    "classification": "benchsuite.tasks.classification:ClassificationTask",
    "detection": "benchsuite.tasks.detection:DetectionTask",
    "proposals": "benchsuite.tasks.proposals:ProposalTask",
}
#: what a task object must provide (see :class:`benchsuite.tasks.base.Task`)
REQUIRED = ("name", "dataset_kind", "default_dataset", "pipeline_base", "required_methods", "metrics",
            "primary_metric", "interval_metrics", "columns", "plots", "execute", "evaluate", "intervals")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskInfo:
    """One registered task: its name, where it lives, the task object (None when broken) or its problem."""

    name: str
    ref: str  # "module:ClassName"
    distribution: str
    task: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _load(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _inspect(name: str, ref: str, dist: str) -> TaskInfo:
    try:
        cls = _load(ref)
        task = cls() if isinstance(cls, type) else cls
    except Exception as exc:  # a broken plugin is reported, not fatal
        return TaskInfo(name, ref, dist, error=f"cannot load {ref}: {type(exc).__name__}: {exc}")
    missing = [attr for attr in REQUIRED if not hasattr(task, attr)]
    problems = [f"{ref} lacks {', '.join(missing)} (derive it from benchsuite.tasks.base.Task)"] if missing else []
    if not missing and task.name != name:
        problems.append(f"entry point name {name!r} differs from {ref}.name {task.name!r}")
    if not missing and task.primary_metric not in {m.key for m in task.metrics}:
        problems.append(f"{ref}.primary_metric {task.primary_metric!r} is not one of its metrics")
    if problems:
        return TaskInfo(name, ref, dist, error="; ".join(problems))
    return TaskInfo(name, ref, dist, task)


_CACHE: dict[tuple[str, ...], dict[str, TaskInfo]] = {}


def discover(refresh: bool = False) -> dict[str, TaskInfo]:
    """Every task in the entry-point group, by name (broken ones included, with ``error`` set).

    Read once per ``sys.path`` (installing a distribution into the running process changes it); ``refresh``
    reads the group again.
    """
    key = tuple(sys.path)
    if not refresh and key in _CACHE:
        return _CACHE[key]
    found: dict[str, TaskInfo] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in found:
            if found[ep.name].ref != ep.value:
                log.warning("task %r is registered twice (%s and %s); keeping the first", ep.name,
                            found[ep.name].ref, ep.value)
            continue
        found[ep.name] = _inspect(ep.name, ep.value, dist)
    stale = [name for name in BUILTIN_TASKS if name not in found]
    if stale:
        log.warning("the installed benchsuite metadata does not register task(s) %s in %s; using the built-in "
                    "definitions (run `pip install -e .` again)", ", ".join(stale), ENTRY_POINT_GROUP)
        for name in stale:
            found[name] = _inspect(name, BUILTIN_TASKS[name], "benchsuite")
    out = dict(sorted(found.items(), key=lambda kv: (_order(kv[1]), kv[0])))
    _CACHE[key] = out
    return out


def _order(info: TaskInfo) -> int:
    return int(getattr(info.task, "order", 100)) if info.ok else 1000


def list_tasks(include_broken: bool = False) -> list[TaskInfo]:
    """The registered tasks in report order (the suite's own first)."""
    return [info for info in discover().values() if include_broken or info.ok]


def task_names() -> tuple[str, ...]:
    """The names of the working tasks, in report order."""
    return tuple(info.name for info in list_tasks())


def find_task(name: str) -> Any | None:
    """The task registered as ``name``, or None (unknown or broken): for readers of old records."""
    info = discover().get(name)
    return info.task if info is not None and info.ok else None


def get_task(name: str) -> Any:
    """The task registered as ``name``; an unknown or broken task is a ConfigError naming the problem."""
    info = discover().get(name)
    if info is None:
        raise ConfigError(f"unknown task {name!r}; expected one of: {', '.join(task_names())}")
    if not info.ok:
        raise ConfigError(f"task {name!r} ({info.ref}, from {info.distribution}) cannot be used: {info.error}")
    return info.task


def tasks_of_kind(kind: str) -> tuple[str, ...]:
    """The working tasks that run on data sets of ``kind`` (``"classification"``, ``"detection"``, ...)."""
    return tuple(info.name for info in list_tasks() if info.task.dataset_kind == kind)
