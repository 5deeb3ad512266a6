"""Task discovery through the ``benchsuite.tasks`` entry-point group.

A task (classification, detection, proposals, or a plugin's own) is one module with one class derived from
:class:`benchsuite.tasks.base.Task`, registered under its name in the group, exactly as pipelines register in
``benchsuite.pipelines``::

    [project.entry-points."benchsuite.tasks"]
    counting = "mypkg.counting:CountingTask"

The runner, the worker, the report, ``compare``, the profiles (a task's default budgets), the pipeline registry
(which tasks a pipeline may declare) and :mod:`benchsuite.testing` (a task's check data and adapters) all ask this
registry; none of them names a task. A task plugin that fails to import or does not conform is listed with its
problem (:func:`list_tasks`) and left out; it never stops the others.

The group is read by :class:`benchsuite.plugins.PluginGroup`, like pipelines and data-set formats; the task
modules are imported when the group is first read.
"""

from __future__ import annotations

from typing import Any

from benchsuite.api import Budget
from benchsuite.plugins import Plugin, PluginGroup, PluginProblem

__all__ = ["TASKS", "TaskInfo", "find_task", "get_task", "list_tasks", "task_names"]

ENTRY_POINT_GROUP = "benchsuite.tasks"
#: what a task object must provide (see :class:`benchsuite.tasks.base.Task`)
REQUIRED = ("name", "needs", "default_dataset", "pipeline_base", "required_methods", "metrics", "primary_metric",
            "interval_metrics", "columns", "plots", "sections", "budgets", "check_splits", "checks", "execute",
            "evaluate", "intervals", "runs_on", "budget", "check_data")

#: one registered task; ``obj`` is the task object (None when broken)
TaskInfo = Plugin


def _check(name: str, loaded: Any) -> Any:
    task = loaded() if isinstance(loaded, type) else loaded
    ref = f"{type(task).__module__}:{type(task).__qualname__}"
    missing = [attr for attr in REQUIRED if not hasattr(task, attr)]
    if missing:
        raise PluginProblem(f"{ref} lacks {', '.join(missing)} (derive it from benchsuite.tasks.base.Task)")
    problems = []
    if task.name != name:
        problems.append(f"entry point name {name!r} differs from {ref}.name {task.name!r}")
    if task.primary_metric not in {m.key for m in task.metrics}:
        problems.append(f"{ref}.primary_metric {task.primary_metric!r} is not one of its metrics")
    if not task.needs or not all(isinstance(a, str) and a for a in task.needs):
        problems.append(f"{ref}.needs must name the annotations its data sets provide (e.g. {{'boxes'}}), got "
                        f"{task.needs!r}")
    for profile, sizes in dict(task.budgets).items():
        try:
            Budget(profile=profile, **dict(sizes))
        except TypeError as exc:
            problems.append(f"{ref}.budgets[{profile!r}]: {exc} (the fields of benchsuite.api.Budget)")
    if problems:
        raise PluginProblem("; ".join(problems))
    return task


#: the ``benchsuite.tasks`` entry points, by name, in report order (the suite's own first)
TASKS: PluginGroup[Any] = PluginGroup(ENTRY_POINT_GROUP, "task", _check,
                                      order=lambda p: (int(getattr(p.obj, "order", 100)), p.name))


def list_tasks(include_broken: bool = False) -> list[TaskInfo]:
    """The registered tasks in report order (the suite's own first)."""
    return TASKS.entries(include_broken)


def task_names() -> tuple[str, ...]:
    """The names of the working tasks, in report order."""
    return TASKS.names()


def find_task(name: str) -> Any | None:
    """The task registered as ``name``, or None (unknown or broken): for readers of old records."""
    return TASKS.find(name)


def get_task(name: str) -> Any:
    """The task registered as ``name``; an unknown or broken task is a ConfigError naming the problem."""
    return TASKS.get(name)
