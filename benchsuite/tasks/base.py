"""What every task provides to the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from benchsuite.api import Budget, Context, Pipeline


def split_cap(budget: Budget, split: str) -> int | None:
    """The profile's cap on the number of images of ``split``."""
    return {
        "train": budget.max_train_images,
        "val": budget.max_val_images,
        "test": budget.max_test_images,
    }.get(split)


class Task(Protocol):
    """A task runs a pipeline on a data set in the worker and scores saved predictions in the parent."""

    name: str
    dataset_kind: str

    def execute(self, pipeline: Pipeline, dataset: Any, ctx: Context, eval_splits: list[str],
                job_dir: Path, latency_images: int, latency_warmup: int) -> dict[str, Any]:
        """Fit, predict every split in ``eval_splits`` (timed), save predictions under ``job_dir``.

        Returns ``{"timing": {...}, "splits": {split: {"predictions": file name, "predict_s": s,
        "images": n, "images_per_s": r, ...}}}``.
        """
        ...

    def evaluate(self, dataset: Any, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """``(metrics, artifacts)`` for one split's saved predictions; artifacts are file names."""
        ...


def get_task(name: str) -> Task:
    from benchsuite.errors import ConfigError

    if name == "classification":
        from benchsuite.tasks.classification import ClassificationTask

        return ClassificationTask()
    if name == "detection":
        from benchsuite.tasks.detection import DetectionTask

        return DetectionTask()
    if name == "proposals":
        from benchsuite.tasks.proposals import ProposalTask

        return ProposalTask()
    raise ConfigError(f"unknown task {name!r}; expected classification, detection or proposals")
