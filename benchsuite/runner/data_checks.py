"""Data sanity at planning: each data set of a run checked before any job starts (:mod:`benchsuite.data.sanity`).

The splits a job loads (train, val and the scored ones, each at its task's cap in the profile) are checked once
per data set: an error refuses the run with one line per finding (:class:`~benchsuite.errors.DataError`); a
warning is logged and kept in ``run.json``'s ``data_findings`` (and shown by the report).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchsuite.data.datasets import BOXES, dataset_key
from benchsuite.data.sanity import ERROR, Finding, check_dataset
from benchsuite.errors import DataError
from benchsuite.tasks.base import split_cap
from benchsuite.tasks.registry import get_task

if TYPE_CHECKING:
    from benchsuite.profiles import Profile

log = logging.getLogger(__name__)


def _widest(a: int | None, b: int | None, seen: bool) -> int | None:
    """The larger of two caps (None: the whole split) for a split that ``seen`` already had a cap for."""
    if not seen:
        return b
    return None if a is None or b is None else max(a, b)


def check_run_data(jobs: list[Any], datasets: dict[str, Any], profile: Profile, eval_splits: list[str],
                   cache_dir: Path) -> list[str]:
    """Check every data set the ``jobs`` use; raise a DataError listing the errors, return the warnings (lines)."""
    plans: dict[str, dict[str, Any]] = {}
    for job in jobs:
        key = dataset_key(job.dataset_spec, get_task(job.task).needs)  # as the planner opened it
        plan = plans.setdefault(key, {"used": {}, "scored": {}, "boxes": False})
        budget = profile.budget(job.task)
        for split in ("train", "val", *eval_splits):
            cap = split_cap(budget, split)
            plan["used"][split] = _widest(plan["used"].get(split), cap, split in plan["used"])
            if split in eval_splits:
                plan["scored"][split] = _widest(plan["scored"].get(split), cap, split in plan["scored"])
        plan["boxes"] = plan["boxes"] or BOXES in get_task(job.task).needs
    findings: list[Finding] = []
    for spec, plan in plans.items():
        ds = datasets[spec]
        findings += check_dataset(ds, ds.info.name, plan["used"], plan["scored"], plan["boxes"], cache_dir)
    errors = [f.message for f in findings if f.level == ERROR]
    warnings = [f.message for f in findings if f.level != ERROR]
    for line in warnings:
        log.warning("data: %s", line)
    if errors:
        raise DataError("the data would fail or mislead the run, so no job was started: " + "; ".join(errors))
    return warnings
