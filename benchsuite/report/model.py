"""The report's data model: built once from a run folder, rendered as Markdown and as HTML.

:func:`build_model` reads ``run.json`` and ``records.jsonl``, computes 95% bootstrap intervals over test
images for each record's main metrics (from the saved predictions, the data set reopened from the job's
``job.json``; cached in ``report_files/intervals.json``), and groups the records by (task, data set,
split) with a headline per group: the best classical and the best deep pipeline, the gap and the cost ratio.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.report import bootstrap as bs
from benchsuite.results.atomic import atomic_write_json
from benchsuite.results.store import RunStore

log = logging.getLogger(__name__)

TASK_ORDER = {"classification": 0, "detection": 1, "proposals": 2}
#: per task: (metric key, title) of the metric that ranks pipelines (higher is better), then the others
#: that get an interval
PRIMARY = {"classification": ("accuracy", "accuracy"), "detection": ("map50", "mAP50"),
           "proposals": ("recall_at_1000_iou50", "recall@1000 (IoU 0.5)")}
INTERVAL_METRICS = {"classification": ("accuracy",), "detection": ("map50",),
                    "proposals": ("recall_at_1000_iou50", "mabo")}
ASSETS = "report_files"
INTERVAL_CACHE = "intervals.json"
FUSION_PREFIX = "fusion-"


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


@dataclass
class Headline:
    classical: Summary | None
    deep: Summary | None
    reference: Summary | None  # the best pretrained reference, shown apart
    gap: float | None  # deep - classical in the primary metric
    gap_clear: bool  # the two 95% intervals do not overlap
    fit_ratio: float | None  # deep fit time / classical fit time
    speed_ratio: float | None  # deep images/s / classical images/s


@dataclass
class Group:
    task: str
    dataset: str
    split: str
    metric: str
    metric_title: str
    rows: list[Row]
    headline: Headline | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.task, self.dataset, self.split

    @property
    def slug(self) -> str:
        return "-".join(self.key).replace("/", "_").replace(":", "_")


@dataclass
class ReportModel:
    run_dir: Path
    run: dict[str, Any]
    groups: list[Group]
    failures: list[Row]

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

    def fusion_rows(self) -> list[Row]:
        return [r for r in self.rows() if r.pipeline.startswith(FUSION_PREFIX) and r.task == "detection"]


# ----------------------------------------------------------------------------------------------- summaries


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[Row], metric: str) -> list[Summary]:
    """Per pipeline (successful rows only), the seed average of ``metric``, its interval ends and the costs."""
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
                           _mean([r.peak_mb for r in rs]), any(r.shortened for r in rs)))
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


def make_headline(rows: list[Row], metric: str) -> Headline | None:
    """Best classical and best deep pipeline (pretrained references apart), the gap and the cost ratios."""
    summaries = summarise(rows, metric)
    if not summaries:
        return None
    trained = [s for s in summaries if not s.pretrained_reference]
    classical = next((s for s in trained if s.family == "classical"), None)
    deep = next((s for s in trained if s.family == "deep"), None)
    reference = next((s for s in summaries if s.pretrained_reference), None)
    gap = fit_ratio = speed_ratio = None
    clear = False
    if classical and deep:
        gap = deep.primary.value - classical.primary.value
        clear = intervals_apart(deep.primary, classical.primary)
        fit_ratio = _ratio(deep.fit_s, classical.fit_s)
        speed_ratio = _ratio(deep.images_per_s, classical.images_per_s)
    return Headline(classical, deep, reference, gap, clear, fit_ratio, speed_ratio)


# ----------------------------------------------------------------------------------------------- intervals


class _DataCache:
    """Reopens the data set of a job (from its job.json) once per (spec, data root, cache)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._open: dict[tuple[str, str, str, bool], Any] = {}

    def job(self, job_id: str) -> dict[str, Any] | None:
        path = self.run_dir / "jobs" / job_id / "job.json"
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def split(self, record: dict[str, Any]) -> Any | None:
        """The evaluated split of ``record`` as the task loaded it, or None (data gone or changed)."""
        from benchsuite.api import Budget
        from benchsuite.data.datasets import open_dataset
        from benchsuite.profiles import PROFILES
        from benchsuite.tasks.base import split_cap

        job = self.job(record.get("job_id", ""))
        if job is None:
            return None
        profile = PROFILES.get(job.get("profile", ""))
        key = (job["dataset_spec"], job["data_root"], job["cache_dir"], bool(profile and profile.synthetic_only))
        if key not in self._open:
            try:
                self._open[key] = open_dataset(key[0], Path(key[1]), Path(key[2]), force_synthetic=key[3])
            except Exception as exc:  # the report must not fail because the data moved
                log.warning("report: cannot reopen data set %s (%s); intervals from the records only", key[0], exc)
                self._open[key] = None
        ds = self._open[key]
        if ds is None:
            return None
        if ds.info.fingerprint != record.get("dataset_fingerprint"):
            log.warning("report: data set %s changed since the run (fingerprint %s, recorded %s)",
                        ds.info.name, ds.info.fingerprint, record.get("dataset_fingerprint"))
            return None
        split = record["split"]
        return ds.load(split, split_cap(Budget(**job["budget"]), split))


def _predictions_path(run_dir: Path, record: dict[str, Any]) -> Path:
    job_dir = run_dir / "jobs" / record["job_id"]
    try:
        name = json.loads((job_dir / "result.json").read_text())["splits"][record["split"]]["predictions"]
        return job_dir / name
    except (OSError, KeyError, TypeError, json.JSONDecodeError):  # missing or malformed result.json
        return job_dir / f"predictions-{record['split']}.npz"


def record_intervals(record: dict[str, Any], data: Any, run_dir: Path) -> dict[str, list[float] | None]:
    """``{metric: [lo, hi]}`` for the record's interval metrics, computed from its saved predictions."""
    from benchsuite.tasks.per_image import load_ragged

    task = record["task"]
    path = _predictions_path(run_dir, record)
    out: dict[str, list[float] | None] = {}
    if task == "classification":
        with np.load(path) as npz:
            pred = npz["labels"]
        truth = np.asarray(data.labels)
        if len(pred) != len(truth):
            return {}
        iv = bs.percentile_interval(bs.accuracy_resamples(pred == truth))
        out["accuracy"] = list(iv) if iv else None
    elif task == "detection":
        ids, pred = load_ragged(path)
        if ids != list(data.image_ids):
            return {}
        ev = bs.detection_evidence([s.boxes for s in data], [s.labels for s in data], [s.difficult for s in data],
                                   pred["boxes"], pred["scores"], pred["labels"], data.num_classes)
        iv = bs.percentile_interval(bs.map50_resamples(ev))
        out["map50"] = list(iv) if iv else None
    elif task == "proposals":
        ids, pred = load_ragged(path)
        if ids != list(data.image_ids):
            return {}
        ev = bs.proposal_evidence([s.boxes for s in data], [s.labels for s in data], [s.difficult for s in data],
                                  pred["boxes"], data.num_classes)
        rec, mabo = bs.proposal_resamples(ev)
        for key, vals in (("recall_at_1000_iou50", rec), ("mabo", mabo)):
            iv = bs.percentile_interval(vals)
            out[key] = list(iv) if iv else None
    return out


def _cache_key(record: dict[str, Any]) -> str:
    return f"{record.get('job_id')}|{record.get('split')}|{record.get('finished_at')}"


def compute_intervals(run_dir: Path, records: list[dict[str, Any]]) -> dict[str, dict[str, list[float] | None]]:
    """Intervals of every successful record, by cache key; recomputed only for records not in the cache."""
    cache_path = run_dir / ASSETS / INTERVAL_CACHE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    if not isinstance(cache, dict):  # a damaged cache is recomputed, never trusted
        cache = {}
    data = _DataCache(run_dir)
    fresh: dict[str, Any] = {}
    for rec in records:
        if rec.get("status") != "ok" or rec.get("task") not in INTERVAL_METRICS:
            continue
        key = _cache_key(rec)
        if key in cache:
            fresh[key] = cache[key]
            continue
        try:
            split = data.split(rec)
            fresh[key] = record_intervals(rec, split, run_dir) if split is not None else {}
        except Exception as exc:
            log.warning("report: no interval for %s (%s: %s)", rec.get("job_id"), type(exc).__name__, exc)
            fresh[key] = {}
    if fresh != cache:
        try:
            atomic_write_json(cache_path, fresh)
        except OSError as exc:  # a read-only run folder still gets a report on stdout
            log.warning("report: cannot write %s (%s)", cache_path, exc)
    return fresh


# ------------------------------------------------------------------------------------------------ building


def make_row(rec: dict[str, Any], intervals: dict[str, list[float] | None]) -> Row:
    task = rec.get("task", "")
    metrics = rec.get("metrics") or {}
    estimates: dict[str, Estimate] = {}
    for key in INTERVAL_METRICS.get(task, ()):
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


def build_model(run_dir: Path | str, intervals: bool = True) -> ReportModel:
    """The report's data for ``run_dir`` (``intervals=False`` skips the bootstrap: record intervals only)."""
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    run = store.read_run_info()
    records = store.records()
    ivs = compute_intervals(run_dir, records) if intervals else {}
    grouped: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for rec in records:
        row = make_row(rec, ivs.get(_cache_key(rec), {}))
        grouped[(row.task, row.dataset, row.split)].append(row)
    groups = []
    for (task, dataset, split), rows in sorted(grouped.items(), key=lambda kv: (TASK_ORDER.get(kv[0][0], 9), kv[0])):
        metric, title = PRIMARY.get(task, ("", ""))
        rows.sort(key=lambda r: (not r.ok, -(r.metric(metric) if r.metric(metric) is not None else -1.0),
                                 r.pipeline, r.seed))
        groups.append(Group(task, dataset, split, metric, title, rows, make_headline(rows, metric)))
    failures = [r for g in groups for r in g.rows if not r.ok]
    return ReportModel(run_dir, run, groups, failures)
