"""The task base class: what every task provides to the runner, the worker, the report, ``compare`` and the
conformance checks.

A task is one module with one :class:`Task` subclass, registered in the ``benchsuite.tasks`` entry-point group
(:mod:`benchsuite.tasks.registry`); that registration is all there is to it. The class declares what the rest of
the suite asks about the task: the annotations its data sets must provide (:attr:`Task.needs`), the pipeline
contract (base class and methods), its metrics with the primary one and its direction, the metrics that get a
bootstrap interval, its default budget per profile (:attr:`Task.budgets`), its tiny check data and check adapter
(:attr:`Task.check_splits`, :attr:`Task.checks`, for :mod:`benchsuite.testing`), the report's quality columns,
the per-class view and the plots and report sections it contributes. :meth:`Task.execute` (in the worker) and
:meth:`Task.evaluate` (in the parent) are shared templates; a task supplies only its hooks:
:meth:`Task.predict_split`, :meth:`Task.save_split`, :meth:`Task.latency`, :meth:`Task.score` and
:meth:`Task.intervals`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from benchsuite.api import Budget, Context, ErfRequest, Pipeline
from benchsuite.data.datasets import spec_annotations
from benchsuite.data.detection import decode_seconds
from benchsuite.measure.timing import ImportWatch, Stopwatch
from benchsuite.results.evidence import Evidence, evidence_name, save_evidence
from benchsuite.tasks.checks import CheckAdapter

__all__ = ["CheckData", "ColumnSpec", "MetricSpec", "Scored", "SplitPrediction", "Task", "split_cap", "timed_fit",
           "timing_method"]


def fitted_floor(pipeline_id: str, train: Any, seed: int = 0) -> Any | None:
    """A task's floor, the registered pipeline ``pipeline_id`` that ignores the pixels, fitted on ``train`` (also
    given as its val); None when that pipeline is not installed or broken. The registry's rules apply (built-ins
    first, overrides); the fit's own errors propagate."""
    from benchsuite.registry import PIPELINES, load_ref

    entry = PIPELINES.entry(pipeline_id)
    if entry is None or not entry.ok:
        return None
    return load_ref(entry.ref)().fit(train, train, Context(seed=seed))


def split_cap(budget: Budget, split: str) -> int | None:
    """The profile's cap on the number of images of ``split`` (None: the whole split); a variant of a split
    (``test.<variant>``: a study's corrupted test images) has the cap of the split it varies."""
    return {
        "train": budget.max_train_images,
        "val": budget.max_val_images,
        "test": budget.max_test_images,
    }.get(split.partition(".")[0])


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


def erf_request(pipeline: Pipeline, val: Any) -> ErfRequest | None:
    """The ERF measurement a pipeline's ``erf_layer`` asks for (:mod:`benchsuite.erf`), probing with val images as
    its ``erf_input`` says; None when it declares no layer."""
    layer = str(getattr(pipeline, "erf_layer", "") or "")
    if not layer:
        return None
    return ErfRequest(layer, val, **dict(getattr(pipeline, "erf_input", None) or {}))


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


@dataclass(frozen=True)
class MetricSpec:
    """One metric a task writes into ``record["metrics"]``.

    Attributes:
        key: its key in the metrics block (``"accuracy"``, ``"map50"``).
        title: how the report names it (``"mAP50"``).
        higher_is_better: its direction: which of two values ranks first, which change ``compare`` calls
            better and which worse, and who is "ahead" in the headline.
        points: a fraction in [0, 1], whose differences the report gives in points (x 100); otherwise
            differences are given in the metric's own unit.
    """

    key: str
    title: str
    higher_is_better: bool = True
    points: bool = True

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b


@dataclass(frozen=True)
class ColumnSpec:
    """One quality column of the report's table for a task (cost columns are the same for every task).

    Attributes:
        title: the column's heading.
        metric: the metric key it shows.
        show: ``"value"`` (3 decimals), ``"interval"`` (the metric's 95% interval, ``lo–hi``) or ``"auto"``
            (3 significant figures, for counts and rates).
        optional: shown only when some row of the table has the metric.
    """

    title: str
    metric: str
    show: str = "value"
    optional: bool = False


@dataclass
class SplitPrediction:
    """What :meth:`Task.predict_split` returns for one split.

    Attributes:
        outputs: the validated predictions, in whatever form :meth:`Task.save_split` writes.
        seconds: the predict clock for the split, wall seconds spent in the pipeline's calls.
        conditions: the phase's timing conditions (:class:`benchsuite.measure.timing.Stopwatch`'s).
        output: facts about the output for the record's ``output`` block (boxes clipped, ...); None: no block.
    """

    outputs: Any
    seconds: float
    conditions: dict[str, Any]
    output: dict[str, Any] | None = None


@dataclass
class Scored:
    """What :meth:`Task.score` returns for one split's saved predictions.

    Attributes:
        metrics: the record's metrics block (JSON values).
        artifacts: files written into the job folder, by kind (names relative to the job folder).
        evidence: named arrays the task's interval statistic and the report's data views need (per-image
            correctness, matched scores, counts): saved as ``evidence-<split>.npz`` beside the predictions,
            so that the report never reopens the data set.
    """

    metrics: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckData:
    """A task's tiny data for the conformance checks (:mod:`benchsuite.testing`), built in well under a second.

    Attributes:
        train, val, test: the splits, as the task's pipelines get them in ``fit`` (ImageSet, DetectionSet, ...).
        inputs: the test split's images as the task's prediction method takes them (:meth:`CheckAdapter.inputs`).
        num_classes: the number of classes of the splits.
        folder: the scratch folder the splits' files, if any, were written to.
    """

    train: Any
    val: Any
    test: Any
    inputs: Any
    num_classes: int
    folder: Path | None = None


#: a plot a task contributes: a kind the report knows (``benchsuite.report.plots.PLOTS``) or a function of the
#: report's group and the run folder that returns a ``benchsuite.report.plots.Plot`` or None
PlotKind = str | Callable[[Any, Path], Any]
#: a report section a task contributes below each of its tables: a kind the report knows
#: (``benchsuite.report.sections.SECTIONS``: ``"gallery"``) or a function of the report's group and the run folder
#: that returns a ``benchsuite.report.sections.Section`` or None
SectionKind = str | Callable[[Any, Path], Any]


class Task:
    """A task runs a pipeline on a data set in the worker and scores saved predictions in the parent.

    Subclasses set the class attributes and implement the hooks; :meth:`execute` and :meth:`evaluate` are the
    same for every task. A task object holds no state: the registry makes one per process.
    """

    #: the task's name, as pipelines declare it (``Pipeline.task``) and records carry it
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the annotations a data set must provide for the task to run on it (``benchsuite.data.datasets.BOXES``, ...;
    #: see :meth:`runs_on`), and the spec used when the user names none
    needs: ClassVar[frozenset[str]] = frozenset()
    default_dataset: ClassVar[str] = ""
    #: where its tables come in the report (the suite's own tasks are 0, 1, 2)
    order: ClassVar[int] = 100
    #: the pipeline contract: the base class a pipeline of this task derives from, and the methods it must
    #: override; ``input_type`` / ``output_type`` say what those methods take and return
    pipeline_base: ClassVar[type[Pipeline]] = Pipeline
    required_methods: ClassVar[tuple[str, ...]] = ()
    input_type: ClassVar[str] = ""
    output_type: ClassVar[str] = ""
    #: the pipeline attribute that sets how many images one prediction call gets, and its default
    batch_size_attribute: ClassVar[str] = ""
    default_batch_size: ClassVar[int] = 1
    #: the metrics it writes, the one that ranks pipelines, and those that get a 95% bootstrap interval
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    primary_metric: ClassVar[str] = ""
    interval_metrics: ClassVar[tuple[str, ...]] = ()
    #: how those intervals are drawn, for the report's closing note
    interval_statistic: ClassVar[str] = ""
    #: the report: quality columns, the per-class view's title (empty: no per-class view), the plots it
    #: contributes in order, and the sections below each of its tables (``"gallery"``)
    columns: ClassVar[tuple[ColumnSpec, ...]] = ()
    per_class_title: ClassVar[str] = ""
    plots: ClassVar[tuple[PlotKind, ...]] = ("tradeoff",)
    sections: ClassVar[tuple[SectionKind, ...]] = ()
    #: the default budget of a job of the task per profile: ``{profile: {field of benchsuite.api.Budget: value}}``
    #: (image caps, an epochs hint, the time limit); a profile it does not name gets the profile's time limit only
    budgets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: the conformance checks (:mod:`benchsuite.testing`): ``check_splits(folder) -> (train, val, test)`` builds the
    #: task's tiny synthetic splits (files, if any, under ``folder``), and ``checks`` says how to call its pipelines
    #: and validate their outputs (:mod:`benchsuite.tasks.checks`). None: ``benchsuite check`` cannot fit the task's
    #: pipelines (the checks that need a fit fail, saying so).
    check_splits: ClassVar[Callable[[Path], tuple[Any, Any, Any]] | None] = None
    checks: ClassVar[CheckAdapter | None] = None

    # ------------------------------------------------------------------------------------------ questions
    def metric(self, key: str) -> MetricSpec | None:
        """The declared metric ``key``, or None."""
        return next((m for m in self.metrics if m.key == key), None)

    @property
    def primary(self) -> MetricSpec:
        """The metric that ranks pipelines (with its direction)."""
        spec = self.metric(self.primary_metric)
        if spec is None:
            raise ValueError(f"task {self.name!r}: primary_metric {self.primary_metric!r} is not one of its metrics")
        return spec

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        """The per-class view of a record's metrics block: class name -> value (empty when none)."""
        return {}

    def runs_on(self, spec: str, data_root: Path | None = None, force_synthetic: bool = False) -> bool:
        """Whether the data set ``spec`` provides every annotation the task :attr:`needs` (without opening it;
        ``data_root`` is where real data is looked for)."""
        return self.needs <= spec_annotations(spec, data_root, force_synthetic=force_synthetic)

    def budget(self, profile: str, time_limit_s: float) -> Budget:
        """A job's budget in ``profile``: the task's :attr:`budgets` for it over the profile's ``time_limit_s``."""
        return Budget(**{"profile": profile, "time_limit_s": time_limit_s, **dict(self.budgets.get(profile, {}))})

    def check_data(self, folder: Path) -> CheckData:
        """The task's tiny data for the conformance checks (:attr:`check_splits`), files under ``folder``."""
        build, checks = type(self).check_splits, self.checks
        if build is None or checks is None:
            missing = " and ".join(n for n, v in (("check_splits", build), ("checks", checks)) if v is None)
            raise NotImplementedError(f"task {self.name!r} ({type(self).__module__}:{type(self).__qualname__}) "
                                      f"declares no {missing}: its pipelines cannot be fitted by the checks "
                                      f"(see benchsuite.tasks.base.Task.check_splits)")
        train, val, test = build(Path(folder))
        return CheckData(train, val, test, checks.inputs(test), int(train.num_classes), Path(folder))

    def batch_size(self, pipeline: Pipeline) -> int:
        """Images per prediction call: the pipeline's ``batch_size_attribute``, else the task's default."""
        if not self.batch_size_attribute:
            return max(1, int(self.default_batch_size))
        return max(1, int(getattr(pipeline, self.batch_size_attribute, self.default_batch_size)))

    # ------------------------------------------------------------------------------- worker: the template
    def execute(self, pipeline: Pipeline, dataset: Any, ctx: Context, eval_splits: list[str],
                job_dir: Path, latency_images: int, latency_warmup: int) -> dict[str, Any]:
        """Fit (timed), predict every split in ``eval_splits`` (timed), save predictions under ``job_dir``,
        then time single-image latency on the test split (else the last split predicted).

        Returns ``{"timing": {...}, "splits": {split: {"predictions": file name, "predict_s": s, "images": n,
        "images_per_s": r, "seconds_per_image": s, "predict": conditions[, "output": {...}]}}}``.
        """
        budget = ctx.budget
        for attr in ("report_group", "report_note"):  # a study the pipeline belongs to, for the report
            if getattr(pipeline, attr, ""):
                ctx.record(**{attr: str(getattr(pipeline, attr))})
        train = dataset.load("train", budget.max_train_images)
        val = dataset.load("val", budget.max_val_images)
        ctx.job_dir = job_dir
        ctx.erf = erf_request(pipeline, val)
        fit_timing = timed_fit(pipeline, train, val, ctx)
        batch_size = self.batch_size(pipeline)
        splits: dict[str, Any] = {}
        latency_data = None
        for split in eval_splits:
            data = val if split == "val" else dataset.load(split, split_cap(budget, split))
            prediction = self.predict_split(pipeline, data, ctx, batch_size, split)
            file = job_dir / f"predictions-{split}.npz"
            self.save_split(file, data, prediction.outputs)
            n, seconds = len(data), prediction.seconds
            splits[split] = {"predictions": file.name, "predict_s": seconds, "images": n,
                             "images_per_s": n / seconds if seconds > 0 else float("nan"),
                             "seconds_per_image": seconds / n if n else float("nan"),
                             "predict": prediction.conditions}
            if prediction.output is not None:
                splits[split]["output"] = prediction.output
            if split == "test" or latency_data is None:
                latency_data = data
        latency: dict[str, Any] = {}
        if latency_images > 0 and latency_data is not None and len(latency_data):
            latency = self.latency(pipeline, latency_data, latency_images, latency_warmup, ctx.device)
        method = timing_method(ctx, batch_size, False, latency_images, latency_warmup)
        return {"timing": {**fit_timing, "train_images": len(train), "val_images": len(val), **latency,
                           "method": method},
                "splits": splits}

    def predict_split(self, pipeline: Pipeline, data: Any, ctx: Context, batch_size: int, split: str
                      ) -> SplitPrediction:
        """Run the pipeline over ``data`` in batches of ``batch_size`` on the predict clock (decoding off it)
        and validate every output (:class:`benchsuite.errors.OutputValidationError` names what is wrong)."""
        raise NotImplementedError

    def save_split(self, path: Path, data: Any, outputs: Any) -> None:
        """Write the validated ``outputs`` for ``data`` to ``path`` (an ``npz``), atomically."""
        raise NotImplementedError

    def latency(self, pipeline: Pipeline, data: Any, count: int, warmup: int, device: str) -> dict[str, float]:
        """Single-image latency on ``data`` (:func:`benchsuite.measure.timing.measure_latency`'s block)."""
        return {}

    # ------------------------------------------------------------------------------- parent: the template
    def evaluate(self, dataset: Any, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """``(metrics, artifacts)`` for one split's saved predictions; artifacts are file names in ``job_dir``.

        The split is loaded as the worker loaded it (the profile's cap); :meth:`score` scores it, and its
        evidence is saved as ``evidence-<split>.npz`` (artifact ``evidence``) for the report's intervals.
        """
        data = dataset.load(split, split_cap(budget, split))
        scored = self.score(data, predictions, job_dir, split)
        artifacts = dict(scored.artifacts)
        if scored.evidence:
            name = evidence_name(split)
            save_evidence(job_dir / name, self.name, scored.evidence)
            artifacts["evidence"] = name
        return scored.metrics, artifacts

    def score(self, data: Any, predictions: Path, job_dir: Path, split: str) -> Scored:
        """Score the predictions saved at ``predictions`` against ``data``; write artifacts into ``job_dir``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------- report: intervals
    def intervals(self, evidence: Evidence) -> dict[str, list[float] | None]:
        """``{metric: [lo, hi] or None}`` for :attr:`interval_metrics`, from a saved evidence file only."""
        return {}

    def metric_resamples(self, evidence: Evidence, resamples: int, seed: int = 0) -> dict[str, Any]:
        """``{metric: (resamples,) bootstrap values}`` of :attr:`interval_metrics` from a saved evidence file. The
        same ``seed`` and number of images give the same image draws, so the draws of records scored on the same
        images are paired (a study's crossover is bootstrapped on them). Empty: the task has none."""
        return {}
