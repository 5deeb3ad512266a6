"""The ``study`` block of a study job's records: the axis, the point the record scores, the seed, the base data
set and the derived data set's fingerprint, and what the axis's work rule changed in the pipeline's parameters."""

from __future__ import annotations

from typing import Any


def study_block(job_study: dict[str, Any] | None, dataset: Any, split: str) -> dict[str, Any] | None:
    """The record's ``study`` block for ``split`` of a job on ``dataset`` (a
    :class:`benchsuite.studies.derived.DerivedDataset`, also when a ``study:`` spec was given to ``run``) whose
    spec holds ``job_study`` (what ``benchsuite study`` planned; None otherwise); None when the split is no point of
    a study."""
    point_of = getattr(dataset, "study_point", None)
    point = point_of(split) if callable(point_of) else None
    if point is None:
        return None
    job_study = job_study or {}
    block = {**point, "work_floor": job_study.get("work_floor")}
    if job_study.get("work"):
        block["work"] = job_study["work"]
    return block
