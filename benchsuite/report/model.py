"""The report's data model: built once from a run folder, rendered as Markdown and as HTML.

:func:`build_model` reads ``run.json`` and ``records.jsonl``, computes 95% bootstrap intervals over test
images for each record's main metrics (by the record's task, :meth:`benchsuite.tasks.base.Task.intervals`, from
the per-image evidence the task saved beside the predictions when it scored them,
``jobs/<job>/evidence-<split>.npz``; cached in ``report_files/intervals.json``), and groups the records by
(task, data set, split) with a headline per group: the best classical and the best deep pipeline, the gap and
the cost ratio. What a task is (its primary metric and direction, its interval metrics, its order) comes from
the task registry. Records of pipelines that belong to a study (``Pipeline.report_group``, recorded in
``fit_info``) are also gathered by study (:meth:`ReportModel.studies`). The model reads the run folder only: it
never reopens a data set, so a run folder copied elsewhere gives the same report. A record without an evidence
file (a run folder written before evidence was saved) has no bootstrap interval: :attr:`ReportModel.no_evidence`
lists them and the report says so.
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.errors import BenchsuiteError
from benchsuite.results.atomic import atomic_write_json
from benchsuite.results.evidence import evidence_name, load_evidence
from benchsuite.results.intervals import interval_cache_path, interval_key, read_interval_cache
from benchsuite.results.safe_paths import inside, relative_inside
from benchsuite.results.store import RunStore
from benchsuite.tasks.registry import find_task

log = logging.getLogger(__name__)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


@dataclass
class Estimate:
    """A metric value with its 95% interval (``lo``/``hi`` None when none could be computed)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None


@dataclass
class Row:
    """One record (one pipeline, seed and split) as the report shows it."""

    task: str
    dataset: str
    split: str
    pipeline: str
    family: str
    seed: int
    status: str
    job_id: str
    estimates: dict[str, Estimate]
    fit_s: float | None = None
    images_per_s: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    peak_mb: float | None = None
    weights: str = "-"
    pretrained_reference: bool = False
    failure: str | None = None
    error: str | None = None
    record: dict[str, Any] = field(default_factory=dict, repr=False)
    harness_floor: bool = False  # a null-* reference: its timings are the harness's own cost
    contended: bool | None = None  # a timed phase ran while other processes competed for the cores
    shortcuts: list[dict[str, Any]] = field(default_factory=list)  # where the fit did less than the profile asked

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def non_result(self) -> dict[str, Any] | None:
        """The record's comparison with its task's floor (``metrics.floor``) when it flags the row as a non-result
        (a score not distinguishable from a pipeline that ignores the pixels); the floor's own row is never one."""
        floor = (self.record.get("metrics") or {}).get("floor")
        if self.ok and isinstance(floor, dict) and floor.get("non_result") and floor.get("pipeline") != self.pipeline:
            return floor
        return None

    @property
    def shortened(self) -> bool:
        return bool(self.shortcuts)

    def metric(self, key: str) -> float | None:
        if key in self.estimates:
            return self.estimates[key].value
        return _num(self.record.get("metrics", {}).get(key))


@dataclass
class Summary:
    """One pipeline within a group, averaged over its seeds (what headlines and comparisons use)."""

    pipeline: str
    family: str
    pretrained_reference: bool
    seeds: list[int]
    primary: Estimate
    fit_s: float | None
    images_per_s: float | None
    latency_p50_ms: float | None = None
    peak_mb: float | None = None
    shortened: bool = False  # some seed's record did less work than its profile asked
    non_result: bool = False  # some seed's record is not distinguishable from its task's floor (``metrics.floor``)


@dataclass
class Headline:
    classical: Summary | None
    deep: Summary | None
    reference: Summary | None  # the best pretrained reference, shown apart
    gap: float | None  # deep - classical in the primary metric
    gap_clear: bool  # the two 95% intervals do not overlap
    fit_ratio: float | None  # deep fit time / classical fit time
    speed_ratio: float | None  # deep images/s / classical images/s
    #: non-results (:attr:`Summary.non_result`) that rank above the best of their family and were passed over
    passed_over: list[Summary] = field(default_factory=list)


@dataclass
class Group:
    task: str
    dataset: str
    split: str
    metric: str
    metric_title: str
    rows: list[Row]
    headline: Headline | None = None
    higher_is_better: bool = True  # the primary metric's direction (the task's)
    metric_points: bool = True  # the primary metric is a fraction: differences are given in points (x 100)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.task, self.dataset, self.split

    @property
    def spec(self) -> Any | None:
        """The group's task from the registry (None for a task no longer installed)."""
        return find_task(self.task)

    @property
    def slug(self) -> str:
        return "-".join(self.key).replace("/", "_").replace(":", "_")


@dataclass
class ReportModel:
    run_dir: Path
    run: dict[str, Any]
    groups: list[Group]
    failures: list[Row]
    #: successful records whose task has interval metrics but whose job folder holds no evidence file (a run
    #: folder written before tasks saved evidence): no bootstrap interval can be drawn for them
    no_evidence: list[Row] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id"))

    @property
    def datasets(self) -> list[dict[str, Any]]:
        return list(self.run.get("datasets", []))

    @property
    def synthetic_names(self) -> list[str]:
        """Data sets that were synthetic stand-ins, from run.json and from the records themselves."""
        names = [str(d.get("name")) for d in self.datasets if d.get("origin") == "synthetic"]
        names += [r.dataset for r in self.rows() if r.record.get("data_origin") == "synthetic"]
        return list(dict.fromkeys(names))

    @property
    def synthetic(self) -> bool:
        return bool(self.synthetic_names)

    def rows(self) -> list[Row]:
        return [r for g in self.groups for r in g.rows]

    def studies(self) -> list[Study]:
        """The studies of the run: the rows of every pipeline that declares the same ``report_group``
        (:attr:`benchsuite.api.Pipeline.report_group`, recorded as ``fit_info.report_group``), by table group, in
        the order the studies first appear."""
        out: dict[str, Study] = {}
        for g in self.groups:
            for r in g.rows:
                info = r.record.get("fit_info") or {}
                title = info.get("report_group") if isinstance(info, dict) else None
                if not isinstance(title, str) or not title:
                    continue
                study = out.setdefault(title, Study(title))
                if not study.parts or study.parts[-1][0] is not g:
                    study.parts.append((g, []))
                study.parts[-1][1].append(r)
                note = info.get("report_note")
                if isinstance(note, str) and note and note not in study.notes:
                    study.notes.append(note)
        return list(out.values())


@dataclass
class Study:
    """The rows of the pipelines that declare one ``report_group``: its title, the notes they declare
    (``report_note``) and the rows per table group (task, data set, split)."""

    title: str
    notes: list[str] = field(default_factory=list)
    parts: list[tuple[Group, list[Row]]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- summaries


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[Row], metric: str, higher_is_better: bool = True) -> list[Summary]:
    """Per pipeline (successful rows only), the seed average of ``metric``, its interval ends and the costs;
    best first by the metric's direction."""
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.ok and r.metric(metric) is not None and not r.harness_floor:
            by[r.pipeline].append(r)
    out = []
    for pipeline, rs in by.items():
        ests = [r.estimates.get(metric, Estimate(r.metric(metric))) for r in rs]
        lo = _mean([e.lo for e in ests]) if all(e.has_interval for e in ests) else None
        hi = _mean([e.hi for e in ests]) if all(e.has_interval for e in ests) else None
        out.append(Summary(pipeline, rs[0].family, rs[0].pretrained_reference, sorted(r.seed for r in rs),
                           Estimate(_mean([e.value for e in ests]), lo, hi), _mean([r.fit_s for r in rs]),
                           _mean([r.images_per_s for r in rs]), _mean([r.latency_p50_ms for r in rs]),
                           _mean([r.peak_mb for r in rs]), any(r.shortened for r in rs),
                           any(r.non_result for r in rs)))
    if not higher_is_better:
        return sorted(out, key=lambda s: (s.primary.value, s.pipeline))
    return sorted(out, key=lambda s: (-(s.primary.value or -1.0), s.pipeline))


def intervals_apart(a: Estimate, b: Estimate) -> bool:
    """True when both have 95% intervals and they do not overlap."""
    if not (a.has_interval and b.has_interval):
        return False
    return a.hi < b.lo or b.hi < a.lo


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def make_headline(rows: list[Row], metric: str, higher_is_better: bool = True) -> Headline | None:
    """Best classical and best deep pipeline (pretrained references apart), the gap and the cost ratios. A
    pipeline flagged a non-result on some seed (it has not learned: :attr:`Summary.non_result`) is never the best of
    its family; those it would have been are listed in ``passed_over``."""
    summaries = summarise(rows, metric, higher_is_better)
    if not summaries:
        return None
    trained = [s for s in summaries if not s.pretrained_reference]
    best: dict[str, Summary | None] = {}
    passed_over: list[Summary] = []
    for family in ("classical", "deep"):
        ranked = [s for s in trained if s.family == family]
        best[family] = next((s for s in ranked if not s.non_result), None)
        passed_over += ranked[:ranked.index(best[family])] if best[family] else ranked
    classical, deep = best["classical"], best["deep"]
    reference = next((s for s in summaries if s.pretrained_reference), None)
    gap = fit_ratio = speed_ratio = None
    clear = False
    if classical and deep:
        gap = deep.primary.value - classical.primary.value
        clear = intervals_apart(deep.primary, classical.primary)
        fit_ratio = _ratio(deep.fit_s, classical.fit_s)
        speed_ratio = _ratio(deep.images_per_s, classical.images_per_s)
    return Headline(classical, deep, reference, gap, clear, fit_ratio, speed_ratio, passed_over)


# ----------------------------------------------------------------------------------------------- intervals


def job_file(run_dir: Path, record: dict[str, Any], artifact: str, default: str) -> Path:
    """A file of the record's job: its ``artifacts[artifact]`` (relative to the run folder), else ``default`` in
    the job folder. The record is untrusted: a path that is absolute, has ``..`` or resolves outside the run
    folder is an :class:`~benchsuite.results.safe_paths.UnsafePathError` naming it."""
    rel = (record.get("artifacts") or {}).get(artifact)
    if rel is not None:
        return relative_inside(run_dir, rel, f"artifacts.{artifact}")
    return inside(run_dir, "jobs", str(record.get("job_id")), default, what="job file")


def evidence_path(run_dir: Path, record: dict[str, Any]) -> Path:
    """Where the evidence the record's task saved when it scored the split lies (it may be missing)."""
    return job_file(Path(run_dir), record, "evidence", evidence_name(str(record.get("split"))))


def _predictions_path(run_dir: Path, record: dict[str, Any]) -> Path:
    """The record's predictions file: the name its job's ``result.json`` gives for the split (a plain file name in
    the job folder), else ``predictions-<split>.npz`` there."""
    import json

    from benchsuite.results.safe_paths import is_safe_name, read_limited

    job_dir = inside(run_dir, "jobs", str(record.get("job_id")), what="job folder")
    name = f"predictions-{record.get('split')}.npz"
    try:
        result = json.loads(read_limited(job_dir / "result.json", 64 * 2**20, "worker result"))
        given = result["splits"][record["split"]]["predictions"]
        name = given if is_safe_name(given, 255) else name
    except (OSError, ValueError, KeyError, TypeError, IndexError, BenchsuiteError):  # missing or malformed
        pass
    return inside(job_dir, name, what="predictions file")


def record_intervals(record: dict[str, Any], run_dir: Path) -> dict[str, list[float] | None] | None:
    """``{metric: [lo, hi] or None}`` for the record's interval metrics, by its task's interval statistic over
    the evidence file saved beside its predictions; None when there is no evidence file."""
    task = find_task(str(record.get("task")))
    if task is None or not task.interval_metrics:
        return {}
    path = evidence_path(Path(run_dir), record)
    if not os.path.lexists(path):
        return None
    evidence = load_evidence(path)
    if evidence.task != task.name:
        raise ValueError(f"{path} holds evidence of task {evidence.task!r}, not {task.name!r}")
    return task.intervals(evidence)


def compute_intervals(run_dir: Path, records: list[dict[str, Any]]
                      ) -> tuple[dict[str, dict[str, list[float] | None]], set[str]]:
    """Intervals of every successful record, by cache key (recomputed only for records not in the cache), and
    the keys of the records that have no evidence file (no interval; not cached, so a later file is read)."""
    cache_path = interval_cache_path(run_dir)
    cache = read_interval_cache(run_dir)  # a damaged cache is recomputed, never trusted
    fresh: dict[str, Any] = {}
    missing: set[str] = set()
    for rec in records:
        task = find_task(str(rec.get("task")))
        if rec.get("status") != "ok" or task is None or not task.interval_metrics:
            continue
        key = interval_key(rec)
        if key in cache:
            fresh[key] = cache[key]
            continue
        try:
            got = record_intervals(rec, run_dir)
        except Exception as exc:
            log.warning("report: no interval for %s (%s: %s)", rec.get("job_id"), type(exc).__name__, exc)
            got = {}
        if got is None:
            missing.add(key)
            continue
        fresh[key] = got
    if missing:
        log.warning("report: %d record(s) of %s have no evidence file (written before tasks saved evidence): "
                    "their bootstrap intervals are unavailable", len(missing), run_dir)
    if fresh != cache or _on_disk(cache_path) != fresh:  # a damaged cache is written again, whole
        try:
            atomic_write_json(cache_path, fresh)
        except OSError as exc:  # a read-only run folder still gets a report on stdout
            log.warning("report: cannot write %s (%s)", cache_path, exc)
    return fresh, missing


def _on_disk(path: Path) -> Any:
    """The JSON value of the file at ``path`` as it is (None when it is missing or not JSON)."""
    import json

    from benchsuite.results.safe_paths import read_limited

    try:
        return json.loads(read_limited(path, 64 * 2**20, "interval cache"))
    except (OSError, ValueError, RecursionError, BenchsuiteError):
        return None


# ------------------------------------------------------------------------------------------------ building


def make_row(rec: dict[str, Any], intervals: dict[str, list[float] | None]) -> Row:
    task = rec.get("task", "")
    spec = find_task(task)
    metrics = rec.get("metrics") or {}
    estimates: dict[str, Estimate] = {}
    for key in (spec.interval_metrics if spec is not None else ()):
        value = _num(metrics.get(key))
        iv = intervals.get(key) or (metrics.get(f"{key}_ci95") if isinstance(metrics.get(f"{key}_ci95"), list)
                                    else None)
        lo, hi = (_num(iv[0]), _num(iv[1])) if iv and len(iv) == 2 else (None, None)
        estimates[key] = Estimate(value, lo, hi)
    timing, memory = rec.get("timing") or {}, rec.get("memory") or {}
    weights = (rec.get("fit_info") or {}).get("weights")
    return Row(
        task=task, dataset=rec.get("dataset", ""), split=rec.get("split", ""), pipeline=rec.get("pipeline", ""),
        family=rec.get("family", ""), seed=int(rec.get("seed") or 0), status=rec.get("status", "failed"),
        job_id=rec.get("job_id", ""), estimates=estimates, fit_s=_num(timing.get("fit_s")),
        images_per_s=_num(timing.get("images_per_s")), latency_p50_ms=_num(timing.get("latency_ms_p50")),
        latency_p95_ms=_num(timing.get("latency_ms_p95")),
        peak_mb=_num(memory.get("peak_rss_mb")) or _num(memory.get("peak_tree_rss_mb")),
        weights=str(weights) if weights else ("pretrained" if rec.get("pretrained_reference") else "scratch"
                                              if rec.get("family") == "deep" else "-"),
        pretrained_reference=bool(rec.get("pretrained_reference")), failure=rec.get("failure"),
        error=rec.get("error"), record=rec, harness_floor=bool(rec.get("harness_floor")),
        contended=timing.get("contended") if isinstance(timing.get("contended"), bool) else None,
        shortcuts=[c for c in (rec.get("shortcuts") or []) if isinstance(c, dict)],
    )


def _task_order(task: str) -> int:
    spec = find_task(task)
    return int(spec.order) if spec is not None else 1000


def _row_order(r: Row, metric: str, higher_is_better: bool) -> tuple[Any, ...]:
    """Successful rows first, best first by the metric's direction (rows without it last), then by name."""
    v = r.metric(metric)
    rank = (-(v if v is not None else -1.0)) if higher_is_better else (v if v is not None else math.inf)
    return not r.ok, rank, r.pipeline, r.seed


def build_model(run_dir: Path | str, intervals: bool = True) -> ReportModel:
    """The report's data for ``run_dir`` (``intervals=False`` skips the bootstrap: record intervals only)."""
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    run = store.read_run_info()
    records = store.records()
    ivs, missing = compute_intervals(run_dir, records) if intervals else ({}, set())
    grouped: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    no_evidence = []
    for rec in records:
        row = make_row(rec, ivs.get(interval_key(rec), {}))
        grouped[(row.task, row.dataset, row.split)].append(row)
        if interval_key(rec) in missing:
            no_evidence.append(row)
    groups = []
    for (task, dataset, split), rows in sorted(grouped.items(), key=lambda kv: (_task_order(kv[0][0]), kv[0])):
        spec = find_task(task)
        primary = spec.primary if spec is not None else None
        metric, title = (primary.key, primary.title) if primary is not None else ("", "")
        higher = primary.higher_is_better if primary is not None else True
        rows.sort(key=lambda r: _row_order(r, metric, higher))
        groups.append(Group(task, dataset, split, metric, title, rows, make_headline(rows, metric, higher),
                            higher, primary.points if primary is not None else True))
    failures = [r for g in groups for r in g.rows if not r.ok]
    return ReportModel(run_dir, run, groups, failures, no_evidence)
