"""What every task provides to the runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from benchsuite.api import Budget, Context, Pipeline
from benchsuite.data.detection import decode_seconds
from benchsuite.runner.timing import ImportWatch, Stopwatch


def split_cap(budget: Budget, split: str) -> int | None:
    """The profile's cap on the number of images of ``split``."""
    return {
        "train": budget.max_train_images,
        "val": budget.max_val_images,
        "test": budget.max_test_images,
    }.get(split)


def timed_fit(pipeline: Pipeline, train: Any, val: Any, ctx: Context) -> dict[str, Any]:
    """Call ``pipeline.fit(train, val, ctx)`` on the fit clock; returns the fit's timing block.

    ``fit_s`` is the wall clock around the one call (the GPU synchronised at both ends); the pipeline's module
    was imported and the splits loaded before the clock started. Image decoding that the pipeline does inside
    ``fit`` (``fit_decode_s``) and packages first imported inside ``fit`` (``fit_imports``) are reported apart:
    they are on the clock but are not the method's work. ``fit`` holds the phase's conditions.
    """
    decoded = decode_seconds()
    with ImportWatch() as imports, Stopwatch(ctx.device, ctx.num_threads) as clock:
        returned = pipeline.fit(train, val, ctx)
    if returned is not pipeline:  # the contract (scikit-learn's): fit returns self
        from benchsuite.errors import OutputValidationError

        got = "None" if returned is None else f"a {type(returned).__name__}"
        raise OutputValidationError(f"{type(pipeline).__name__}.fit() returned {got}; it must return the pipeline "
                                    f"itself (end fit() with `return self`)")
    return {"fit_s": clock.seconds, "fit_decode_s": round(decode_seconds() - decoded, 4),
            "fit_imports": imports.packages, "fit": clock.conditions}


def timing_method(ctx: Context, predict_batch_size: int, decode_in_predict_clock: bool, latency_images: int,
                  latency_warmup: int) -> dict[str, Any]:
    """How a job's timings were taken, stored with every record (``timing.method``)."""
    return {
        "clock": "wall clock (time.perf_counter)",
        "device_synchronised": ctx.device != "cpu",
        "fit": "one fit() call; imports of the pipeline module and loading of the splits before the clock",
        "predict_batch_size": int(predict_batch_size),
        "decode_in_predict_clock": bool(decode_in_predict_clock),
        "latency": f"{latency_images} single-image calls after {latency_warmup} warm-up calls, images decoded "
                   f"beforehand",
        "threads": int(ctx.num_threads),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "library default (spin, then sleep)"),
    }


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
