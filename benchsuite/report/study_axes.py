"""The report's studies over a data axis (``benchsuite study AXIS``): curves, costs, crossovers and headlines.

A study run's records carry a ``study`` block (the axis, the point, the seed, the base data set). For every
(axis, task, base data set) the report gathers the records of the test split and its variants into
:class:`AxisStudy`: per pipeline, the primary metric at every point (seed means, with the mean of the seeds' 95%
bootstrap interval ends, as the report's tables average seeds), the fit seconds and images per second; and per
curve of the axis (one, or one per corruption family, the clean test split at severity 0 of each), the crossover
of the best deep and the best classical pipeline (:func:`benchsuite.studies.crossover.crossover`) with its
bootstrap interval, drawn from the per-image evidence each task saved (:meth:`benchsuite.tasks.base.Task.
metric_resamples`, the same image draws for every record). :func:`headline` writes it as one sentence.

The figures (matplotlib, PNG): the metric against the axis with interval bands (classical pipelines in orange
shades, deep in blue, as everywhere in the report) and the crossover marked, the cost against the axis, and AP by
object size at every point where the records have it. Like the rest of the report this reads the run folder only.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.report.document import Block, Figures, Heading, Para, Table, fmt_metric
from benchsuite.report.model import Estimate, ReportModel, Row, Summary, evidence_path, summarise
from benchsuite.report.plots import FAMILY_COLOURS, Plot, _figure, _plain_log_ticks, _png, _series_colours
from benchsuite.report.tables import fmt_auto
from benchsuite.results.evidence import load_evidence
from benchsuite.studies.axes import AXES, Axis, Point
from benchsuite.studies.crossover import Crossover, crossover, envelope
from benchsuite.tasks.registry import find_task

log = logging.getLogger(__name__)

#: bootstrap resamples of each record for the crossover's interval (the same image draws for every record)
STUDY_RESAMPLES = 200
#: the metrics of AP by object size, when the records have them
SIZE_METRICS = (("ap_small", "small"), ("ap_medium", "medium"), ("ap_large", "large"))


@dataclass
class PointStats:
    """One pipeline at one point: the point, its seed-mean summary, the seed means of the size metrics and the
    seed-mean bootstrap draws of the primary metric (None when an evidence file is missing)."""

    point: Point
    summary: Summary
    sizes: dict[str, float | None]
    draws: np.ndarray | None


@dataclass
class PipelineCurve:
    """One pipeline's points along one curve of the axis, in axis order."""

    pipeline: str
    family: str
    pretrained_reference: bool
    points: list[PointStats]


@dataclass
class CurveResult:
    """The crossover of one curve and the envelope's best pipelines at its first and last points."""

    curve: str
    crossover: Crossover
    best: dict[str, tuple[str | None, str | None]]  # family -> (best at the first point, at the last)
    points: list[Point]
    #: the first and last points where both families have a value (the span the crossover is searched over)
    span: tuple[Point, Point] | None = None


@dataclass
class AxisStudy:
    """A study: its axis, task and base data set, the primary metric, the pipelines' curves (by curve name, ""
    for an axis with one) and the crossovers."""

    axis_name: str
    axis: Axis | None
    task: str
    base_dataset: str
    metric: str
    metric_title: str
    higher_is_better: bool
    metric_points: bool
    curves: dict[str, list[PipelineCurve]] = field(default_factory=dict)
    results: dict[str, CurveResult] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    work_notes: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "-".join(("study", self.axis_name, self.task, self.base_dataset)).replace("/", "_").replace(":", "_")

    @property
    def title(self) -> str:
        return f"Study: {self.axis_name} on {self.base_dataset} ({self.task})"

    @property
    def x_scale(self) -> str:
        return self.axis.x_scale if self.axis is not None else "linear"

    def curve_title(self, curve: str) -> str:
        return self.axis.curve_title(curve) if self.axis is not None else curve

    def position_text(self, x: float, points: list[Point]) -> str:
        if self.axis is not None:
            return self.axis.format_position(x, points)
        return f"{x:.3g}"


# ------------------------------------------------------------------------------------------------ building


def _point(block: dict[str, Any]) -> Point:
    return Point(str(block.get("axis")), str(block.get("text")), block.get("value"), str(block.get("label")),
                 str(block.get("slug")), float(block.get("position") or 0.0), str(block.get("curve") or ""))


def _study_rows(model: ReportModel) -> dict[tuple[str, str, str], list[Row]]:
    """Rows of study records on the test split or its variants, by (axis, task, base data set)."""
    out: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in model.rows():
        block = r.record.get("study")
        if not isinstance(block, dict) or not block.get("axis"):
            continue
        if not (r.split == "test" or r.split.startswith("test.")):
            continue
        out[(str(block["axis"]), r.task, str(block.get("base_dataset") or r.dataset))].append(r)
    return out


def is_study_row(row: Row) -> bool:
    """Whether ``row`` is a point of a study (shown in its study's section rather than in a table of its own)."""
    return isinstance(row.record.get("study"), dict)


def _draws(rows: list[Row], run_dir: Path, metric: str, resamples: int) -> np.ndarray | None:
    """The seed mean of the rows' bootstrap draws of ``metric`` (None when any row has no evidence)."""
    task = find_task(rows[0].task) if rows else None
    draw = getattr(task, "metric_resamples", None)
    if draw is None:
        return None
    per_seed = []
    for r in rows:
        path = evidence_path(run_dir, r.record)
        if not path.is_file():
            return None
        try:
            values = draw(load_evidence(path), resamples, 0).get(metric)
        except Exception as exc:  # one damaged file costs its interval, not the report
            log.warning("report: no bootstrap draws for %s (%s: %s)", r.job_id, type(exc).__name__, exc)
            return None
        if values is None:
            return None
        per_seed.append(np.asarray(values, np.float64))
    return np.mean(per_seed, axis=0) if per_seed else None


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def build_axis_studies(model: ReportModel, resamples: int = STUDY_RESAMPLES) -> list[AxisStudy]:
    """The studies of ``model``'s run, in the order their records first appear."""
    studies = []
    for (axis_name, task_name, base), rows in _study_rows(model).items():
        task = find_task(task_name)
        primary = task.primary if task is not None else None
        metric = primary.key if primary is not None else ""
        higher = primary.higher_is_better if primary is not None else True
        study = AxisStudy(axis_name, AXES.find(axis_name), task_name, base, metric,
                          primary.title if primary is not None else metric, higher,
                          primary.points if primary is not None else True)
        study.seeds = sorted({r.seed for r in rows})
        study.work_notes = _work_notes(rows)
        _fill_curves(study, rows, model.run_dir, resamples)
        for curve, curves in study.curves.items():
            study.results[curve] = _curve_result(study, curve, curves)
        studies.append(study)
    return studies


def _work_notes(rows: list[Row]) -> list[str]:
    """Per pipeline, what the axis's work rule changed at its points: epochs per point, refit turned off."""
    epochs: dict[str, dict[float, tuple[str, Any]]] = defaultdict(dict)
    refit: set[str] = set()
    for r in rows:
        block = r.record.get("study") or {}
        work = block.get("work")
        if not isinstance(work, dict):
            continue
        if isinstance(work.get("epochs"), list) and len(work["epochs"]) == 2:
            epochs[r.pipeline][float(block.get("position") or 0)] = (str(block.get("label")), work["epochs"])
        if work.get("refit_on_trainval") is False:
            refit.add(r.pipeline)
    notes = []
    for pipeline, by_point in sorted(epochs.items()):
        steps = ", ".join(f"{new} at {label}" for _, (label, (_, new)) in sorted(by_point.items()))
        first = next(iter(by_point.values()))[1][0]
        notes.append(f"`{pipeline}` trains {first} epochs (its profile's) except {steps}: at least the work floor's "
                     f"share of the full split's training (epochs x images)")
    if refit:
        notes.append(", ".join(f"`{p}`" for p in sorted(refit)) + " train on the point's images only "
                     "(`refit_on_trainval` off: val chooses hyper-parameters and is not trained on)")
    return notes


def _fill_curves(study: AxisStudy, rows: list[Row], run_dir: Path, resamples: int) -> None:
    by: dict[tuple[str, str, str], list[Row]] = defaultdict(list)  # (curve, point text, pipeline) -> seeds
    points: dict[tuple[str, str], Point] = {}
    for r in rows:
        p = _point(r.record["study"])
        by[(p.curve, p.text, r.pipeline)].append(r)
        points[(p.curve, p.text)] = p
    named = sorted({c for c, _ in points if c})
    curves = (study.axis.curve_order(named) if study.axis is not None else named) or [""]
    shared = {t: p for (c, t), p in points.items() if not c}  # a one-fit axis's clean point: in every curve
    stats: dict[tuple[str, str, str], PointStats | None] = {}  # the shared point's, computed once

    def point_stats(key: tuple[str, str, str], p: Point) -> PointStats | None:
        if key not in stats:
            rs = by[key]
            summaries = summarise(rs, study.metric, study.higher_is_better)
            ok = [r for r in rs if r.ok]
            stats[key] = (PointStats(p, summaries[0], {k: _mean([r.metric(k) for r in ok]) for k, _ in SIZE_METRICS},
                                     _draws(ok, run_dir, study.metric, resamples)) if summaries else None)
        return stats[key]

    for curve in curves:
        members = {t: p for (c, t), p in points.items() if c == curve} | (shared if curve else {})
        pipelines: dict[str, PipelineCurve] = {}
        for text, p in sorted(members.items(), key=lambda kv: kv[1].position):
            key_curve = curve if (curve, text) in points else ""
            for (c, t, pipeline), rs in sorted(by.items()):
                if c != key_curve or t != text:
                    continue
                got = point_stats((c, t, pipeline), p)
                if got is None:
                    continue
                first = next(r for r in rs if r.ok)
                pc = pipelines.setdefault(pipeline, PipelineCurve(pipeline, first.family, first.pretrained_reference,
                                                                   []))
                pc.points.append(got)
        study.curves[curve] = sorted(pipelines.values(), key=lambda c: (c.family != "classical", c.pipeline))


def _curve_result(study: AxisStudy, curve: str, curves: list[PipelineCurve]) -> CurveResult:
    points = sorted({ps.point.text: ps.point for c in curves for ps in c.points}.values(), key=lambda p: p.position)
    index = {p.text: i for i, p in enumerate(points)}
    x = np.array([p.position for p in points], np.float64)
    envelopes: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    best: dict[str, tuple[str | None, str | None]] = {}
    for family in ("classical", "deep"):
        members = [c for c in curves if c.family == family and not c.pretrained_reference]
        values = np.full((len(members), len(points)), np.nan)
        draws: list[list[np.ndarray | None]] = [[None] * len(points) for _ in members]
        for m, c in enumerate(members):
            for ps in c.points:
                if ps.summary.primary.value is not None:
                    values[m, index[ps.point.text]] = ps.summary.primary.value
                    draws[m][index[ps.point.text]] = ps.draws
        env = envelope(values, study.higher_is_better) if len(members) else np.full(len(points), np.nan)
        env_draws = _envelope_draws(values, draws, study.higher_is_better)
        envelopes[family] = (env, env_draws)
        have = [j for j in range(len(points)) if np.isfinite(values[:, j]).any()] if len(members) else []
        best[family] = ((_best_at(members, values, have[0], study.higher_is_better),
                         _best_at(members, values, have[-1], study.higher_is_better)) if have else (None, None))
    (deep, deep_draws), (classical, classical_draws) = envelopes["deep"], envelopes["classical"]
    result = crossover(x, deep, classical, study.higher_is_better, study.x_scale, deep_draws, classical_draws)
    both = np.flatnonzero(np.isfinite(deep) & np.isfinite(classical))
    span = (points[both[0]], points[both[-1]]) if len(both) else None
    return CurveResult(curve, result, best, points, span)


def _envelope_draws(values: np.ndarray, draws: list[list[np.ndarray | None]], higher: bool) -> np.ndarray | None:
    """``(B, P)`` envelope of the members' draws (None unless every member with a value has draws)."""
    if not len(draws):
        return None
    stacked = []
    for m, row in enumerate(draws):
        per_point = []
        for j, d in enumerate(row):
            if d is None:
                if np.isfinite(values[m, j]):
                    return None
                per_point.append(None)
            else:
                per_point.append(d)
        stacked.append(per_point)
    width = next((len(d) for row in stacked for d in row if d is not None), 0)
    if not width:
        return None
    cube = np.full((len(stacked), width, values.shape[1]), np.nan)
    for m, row in enumerate(stacked):
        for j, d in enumerate(row):
            if d is not None:
                cube[m, :, j] = d
    return envelope(cube, higher)


def _best_at(members: list[PipelineCurve], values: np.ndarray, j: int, higher: bool) -> str | None:
    if not members or j < 0:
        return None
    column = values[:, j]
    if not np.isfinite(column).any():
        return None
    k = int(np.nanargmax(column) if higher else np.nanargmin(column))
    return members[k].pipeline


# ------------------------------------------------------------------------------------------------ headline


def _where(study: AxisStudy, result: CurveResult) -> str:
    c = result.crossover
    pos = study.position_text(c.position, result.points) if c.position is not None else "?"
    if c.lo is None or c.hi is None:
        return f"**{pos}**"

    first, last = result.span or (result.points[0], result.points[-1])

    def end(v: float) -> str:
        if v == -math.inf:
            return f"below {first.label}"
        if v == math.inf:
            return f"beyond {last.label}"
        return study.position_text(v, result.points)

    return f"**{pos}** (95% interval {end(c.lo)} to {end(c.hi)})"


def _lead_gap(study: AxisStudy, result: CurveResult, j: int) -> str:
    """``cnn (deep) leads hog-svm (classical) by 25.3 points`` at point ``j`` of the curve."""
    curves = study.curves.get(result.curve, [])
    deep, classical = result.best["deep"], result.best["classical"]
    names = {"deep": deep[0 if j == 0 else 1], "classical": classical[0 if j == 0 else 1]}

    def value(name: str | None) -> float | None:
        for c in curves:
            if c.pipeline == name:
                pts = [ps for ps in c.points if ps.point.text == result.points[j].text]
                return pts[0].summary.primary.value if pts else None
        return None

    d, k = value(names["deep"]), value(names["classical"])
    if d is None or k is None:
        return ""
    sign = 1 if study.higher_is_better else -1
    lead, other = ("deep", "classical") if sign * (d - k) > 0 else ("classical", "deep")
    gap = abs(d - k)
    amount = f"{gap * 100:.1f} points" if study.metric_points else f"{gap:.3g}"
    return f"`{names[lead]}` ({lead}) leads `{names[other]}` ({other}) by {amount}"


def _single_curve_sentence(study: AxisStudy, result: CurveResult) -> str:
    c = result.crossover
    first, last = (p.label for p in (result.span or (result.points[0], result.points[-1])))
    if not result.best["deep"][1] and not result.best["deep"][0]:
        return "only classical pipelines ran: no crossover to find"
    if not result.best["classical"][1] and not result.best["classical"][0]:
        return "only deep pipelines ran: no crossover to find"
    if result.span is None:
        return "no point has a record of both families: no crossover to find"
    if c.position is None:
        lead = c.last if c.last != "tie" else c.first
        name = result.best.get(lead, (None, None))[1] if lead in ("deep", "classical") else None
        share = f"; the lead changes in {c.share:.0%} of the bootstrap resamples" if c.share is not None else ""
        who = f"{lead} (`{name}`)" if name else lead
        return f"no crossover between {first} and {last}: {who} ahead at every point{share}"
    over, under = c.last, ("classical" if c.last == "deep" else "deep")
    winner, loser = result.best[over][1], result.best[under][0]
    times = f"; the lead changes {c.changes} times, the last one there" if c.changes > 1 else ""
    return (f"the best {over} pipeline overtakes the best {under} one at {_where(study, result)}{times}: "
            f"`{loser}` ({under}) leads at {first}, `{winner}` ({over}) at {last}")


def headline(study: AxisStudy) -> str:
    """One sentence: where (and whether) the lead between the best deep and best classical pipeline changes."""
    where = f"**{study.axis_name} on {study.base_dataset}** ({study.task}, {study.metric_title})"
    if not study.results:
        return f"{where}: no successful record yet."
    if len(study.results) == 1:
        result = next(iter(study.results.values()))
        if not result.points:
            return f"{where}: no successful record yet."
        return f"{where}: {_single_curve_sentence(study, result)}."
    return f"{where}: {_curves_sentence(study)}."


def _curves_sentence(study: AxisStudy) -> str:
    """The sentence of an axis with a curve per family (``corruption``): the lead at the shared first point, the
    curves where it changes (with their crossovers) and those where it does not."""
    results = [r for r in study.results.values() if r.points]
    if not results:
        return "no successful record yet"
    opening = _lead_gap(study, results[0], 0)
    changed = [r for r in results if r.crossover.position is not None]
    kept = [r for r in results if r.crossover.position is None]
    parts = []
    if opening:
        parts.append(f"at {results[0].points[0].label}, {opening}")
    by_direction: dict[str, list[str]] = defaultdict(list)
    for r in changed:
        by_direction[r.crossover.last].append(f"{study.curve_title(r.curve)} at {_where(study, r)}")
    for over, items in by_direction.items():
        under = "classical" if over == "deep" else "deep"
        parts.append(f"the best {over} pipeline overtakes the best {under} one under {_join(items)}")
    if kept:
        noun = study.axis.curve_noun if study.axis is not None else "curve"
        leads = {r.crossover.last for r in kept}
        lead = leads.pop() if len(leads) == 1 else "the leader at the first point"
        names = (_join([study.curve_title(r.curve) for r in kept]) if len(kept) <= 3
                 else f"the {len(kept)} other {noun}s" if changed else f"all {len(kept)} {noun}s")
        top = study.position_text(max(r.points[-1].position for r in kept), kept[0].points)
        parts.append(f"{lead} stays ahead under {names}, up to {top}")
    return "; ".join(parts)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ------------------------------------------------------------------------------------------------ figures


def _curve_colours(curves: list[PipelineCurve]) -> dict[str, str]:
    class _R:  # the report's family shades, by pipeline (plots._series_colours takes rows)
        def __init__(self, family: str):
            self.family = family

    return dict(zip([c.pipeline for c in curves], _series_colours([_R(c.family) for c in curves])))


def _set_x(ax: Any, study: AxisStudy, points: list[Point]) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    xs = [p.position for p in points]
    if study.x_scale == "log" and all(x > 0 for x in xs):
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(FixedLocator(xs))
    labels = [p.label.replace(" images", "") if not p.curve else f"{p.position:g}" for p in points]
    ax.set_xticks(xs, labels, fontsize=7, rotation=30 if len(xs) > 6 else 0)


def _mark_crossover(ax: Any, result: CurveResult) -> None:
    c = result.crossover
    if c.position is None:
        return
    lo_x, hi_x = result.points[0].position, result.points[-1].position
    lo = lo_x if c.lo is None or c.lo == -math.inf else max(lo_x, c.lo)
    hi = hi_x if c.hi is None or c.hi == math.inf else min(hi_x, c.hi)
    if c.lo is not None:
        ax.axvspan(lo, hi, color="#999999", alpha=0.18, lw=0)
    ax.axvline(c.position, color="#333333", ls="--", lw=1)


def metric_figure(study: AxisStudy) -> Plot | None:
    """The primary metric against the axis, a line and a 95% band per pipeline, the crossover marked (its
    interval shaded); one panel per curve."""
    curves = [(name, cs) for name, cs in study.curves.items() if cs]
    if not curves:
        return None
    cols = min(4, len(curves))
    rows = math.ceil(len(curves) / cols)
    fig = _figure(7.5 if cols == 1 else 3.3 * cols + 0.4, 4.2 if rows == 1 and cols == 1 else 2.8 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    colours = _curve_colours(curves[0][1])
    for ax, (name, cs) in zip(axes.ravel(), curves):
        result = study.results.get(name)
        for c in cs:
            xs = [ps.point.position for ps in c.points]
            ys = [ps.summary.primary.value for ps in c.points]
            colour = colours.get(c.pipeline, FAMILY_COLOURS.get(c.family, "#777777"))
            ax.plot(xs, ys, marker="o", color=colour, lw=1.6, ms=4, label=f"{c.pipeline} ({c.family})",
                    ls="--" if c.pretrained_reference else "-")
            band = [(x, ps.summary.primary) for x, ps in zip(xs, c.points) if ps.summary.primary.has_interval]
            if len(band) > 1:
                ax.fill_between([b[0] for b in band], [b[1].lo for b in band], [b[1].hi for b in band],
                                color=colour, alpha=0.18, lw=0)
        if result is not None and result.points:
            _mark_crossover(ax, result)
            _set_x(ax, study, result.points)
        if name:
            ax.set_title(study.curve_title(name), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(curves):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel(study.metric_title)
    for ax in axes[-1, :]:
        ax.set_xlabel(study.axis.title if study.axis is not None else study.axis_name, fontsize=8)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(labels)), fontsize=8)
    return Plot(f"{study.slug}-metric", f"{study.metric_title} against {study.axis_name}",
                "One line per pipeline (seed means) with its 95% bootstrap band; orange shades: classical, blue "
                "shades: deep. Dashed vertical line: the crossover of the best deep and best classical pipeline, "
                "its 95% bootstrap interval shaded.", _png(fig))


def _by_position(c: PipelineCurve, attr: str) -> tuple[list[float], list[float]]:
    """``(positions, seed-mean cost)`` of one pipeline, averaged over curves sharing a position."""
    got: dict[float, list[float]] = defaultdict(list)
    for ps in c.points:
        v = getattr(ps.summary, attr)
        if v is not None and v > 0:
            got[ps.point.position].append(v)
    xs = sorted(got)
    return xs, [float(np.mean(got[x])) for x in xs]


def cost_figure(study: AxisStudy) -> Plot | None:
    """Fit seconds and images per second against the axis, one line per pipeline (log scale)."""
    merged: dict[str, PipelineCurve] = {}
    for cs in study.curves.values():
        for c in cs:
            m = merged.setdefault(c.pipeline, PipelineCurve(c.pipeline, c.family, c.pretrained_reference, []))
            m.points += c.points
    if not merged:
        return None
    curves = sorted(merged.values(), key=lambda c: (c.family != "classical", c.pipeline))
    points = sorted({ps.point.position: ps.point for c in curves for ps in c.points}.values(),
                    key=lambda p: p.position)
    fig = _figure(10.0, 3.8)
    axes = fig.subplots(1, 2)
    colours = _curve_colours(curves)
    for ax, (attr, title) in zip(axes, (("fit_s", "fit seconds"), ("images_per_s", "images per second"))):
        drawn: list[float] = []
        for c in curves:
            xs, ys = _by_position(c, attr)
            if xs:
                ax.plot(xs, ys, "o-", color=colours[c.pipeline], lw=1.5, ms=4, label=c.pipeline)
                drawn += ys
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis, drawn)
        ax.set_ylabel(f"{title} (log scale)")
        _set_x(ax, study, points)
        ax.set_xlabel(study.axis.title if study.axis is not None else study.axis_name, fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    return Plot(f"{study.slug}-cost", f"Cost against {study.axis_name}",
                "Fit wall seconds and images per second over the scored split (seed means; a curve per corruption "
                "family is averaged at each severity). Timings of a shared machine: see each record's "
                "`timing.contended`.", _png(fig))


def size_figure(study: AxisStudy) -> Plot | None:
    """AP by object size (COCO areas, of the images as the point sees them) against the axis, per pipeline."""
    curves = [c for cs in study.curves.values() for c in cs]
    if not any(v is not None for c in curves for ps in c.points for v in ps.sizes.values()):
        return None
    points = sorted({ps.point.position: ps.point for c in curves for ps in c.points}.values(),
                    key=lambda p: p.position)
    fig = _figure(11.0, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    colours = _curve_colours(curves)
    for ax, (key, name) in zip(axes, SIZE_METRICS):
        for c in curves:
            pts = [(ps.point.position, ps.sizes.get(key)) for ps in c.points if ps.sizes.get(key) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colours[c.pipeline], lw=1.5, ms=4,
                        label=c.pipeline)
        ax.set_title(f"AP, {name} objects", fontsize=9)
        _set_x(ax, study, points)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("COCO AP (IoU 0.5:0.95)")
    axes[0].legend(fontsize=8)
    return Plot(f"{study.slug}-sizes", f"AP by object size against {study.axis_name}",
                "COCO areas in the images as the point sees them (small < 32², medium 32²–96², large > 96² "
                "pixels): resampling moves objects between sizes; a missing point means no object of that size.",
                _png(fig))


def study_plots(study: AxisStudy) -> list[Plot]:
    """The study's figures (each None-safe: a figure with nothing to draw is left out)."""
    out = []
    for make in (metric_figure, cost_figure, size_figure):
        try:
            plot = make(study)
        except Exception as exc:  # a figure must never cost the report
            log.warning("report: %s of %s failed (%s: %s)", make.__name__, study.slug, type(exc).__name__, exc)
            plot = None
        if plot is not None:
            out.append(plot)
    return out


# ------------------------------------------------------------------------------------------------ blocks


def _cell(e: Estimate) -> str:
    if e.value is None:
        return "–"
    return fmt_metric(e.value) + (f" ({e.lo:.3f}–{e.hi:.3f})" if e.has_interval else "")


def study_table(study: AxisStudy) -> Table:
    """Rows: the points (by curve); columns: each pipeline's metric with its interval, fit seconds, images/s."""
    pipelines: dict[str, str] = {}
    cells: dict[tuple[str, str], PointStats] = {}
    points: dict[str, Point] = {}  # a point's text is unique within a study (the clean point is one)
    for cs in study.curves.values():
        for c in cs:
            pipelines.setdefault(c.pipeline, c.family)
            for ps in c.points:
                cells[(ps.point.text, c.pipeline)] = ps
                points[ps.point.text] = ps.point
    names = sorted(pipelines, key=lambda p: (pipelines[p] != "classical", p))
    header = ["point"] + [f"{p} {study.metric_title}" for p in names] + [f"{p} fit s" for p in names] + \
        [f"{p} images/s" for p in names]
    rows = []
    order = {c: i for i, c in enumerate(study.curves)}
    for p in sorted(points.values(), key=lambda p: (order.get(p.curve, -1), p.position)):
        row = [p.label]
        row += [_cell(cells[(p.text, n)].summary.primary) if (p.text, n) in cells else "–" for n in names]
        row += [fmt_auto(cells[(p.text, n)].summary.fit_s) if (p.text, n) in cells else "–" for n in names]
        row += [fmt_auto(cells[(p.text, n)].summary.images_per_s) if (p.text, n) in cells else "–" for n in names]
        rows.append(row)
    return Table(header, rows)


def size_table(study: AxisStudy) -> Table | None:
    """AP by object size per point and pipeline, when the records have it."""
    rows = []
    for cs in study.curves.values():
        for c in cs:
            for ps in c.points:
                if any(v is not None for v in ps.sizes.values()):
                    rows.append((ps.point, c.pipeline, ps))
    if not rows:
        return None
    seen = set()
    body = []
    order = {c: i for i, c in enumerate(study.curves)}
    for p, pipeline, ps in sorted(rows, key=lambda t: (order.get(t[0].curve, -1), t[0].position, t[1])):
        if (p.text, pipeline) in seen:
            continue
        seen.add((p.text, pipeline))
        body.append([p.label, pipeline, fmt_metric(ps.summary.primary.value),
                     *(fmt_metric(ps.sizes.get(k)) for k, _ in SIZE_METRICS)])
    return Table(["point", "pipeline", study.metric_title, "AP small", "AP medium", "AP large"], body)


def study_section(study: AxisStudy, plots: list[Plot]) -> list[Block]:
    """A study's section: its headline, figures, the table of points and the notes on work and intervals."""
    blocks: list[Block] = [Heading(2, study.title, study.slug), Para(headline(study))]
    if plots:
        blocks.append(Figures(plots))
    blocks.append(study_table(study))
    sizes = size_table(study)
    if sizes is not None:
        blocks += [Para("AP by object size at every point (COCO areas in the images as the point sees them):"),
                   sizes]
    seeds = f"seeds {', '.join(map(str, study.seeds))}" if len(study.seeds) > 1 else f"seed {study.seeds[0]}"
    blocks.append(Para(
        f"Points are seed means ({seeds}); bands and intervals are 95% percentile bootstraps over test images. "
        f"The crossover is where the lead of the best deep pipeline over the best classical one (the envelopes, "
        f"pretrained references left out) changes for the last time along the axis, interpolated in its "
        f"{study.x_scale} scale; its interval repeats that on {STUDY_RESAMPLES} paired resamples of the test "
        f"images.", "note"))
    if study.work_notes:
        blocks.append(Para("Work per point: " + "; ".join(study.work_notes[:12])
                           + ("; ..." if len(study.work_notes) > 12 else "") + ".", "note"))
    return blocks


def axis_study_blocks(model: ReportModel, plots: bool = True) -> tuple[list[str], list[Block]]:
    """``(headlines, blocks)`` of the run's studies over a data axis (empty for an ordinary run); ``plots``
    draws their figures."""
    heads: list[str] = []
    blocks: list[Block] = []
    for study in build_axis_studies(model):
        heads.append(headline(study))
        blocks += study_section(study, study_plots(study) if plots else [])
    return heads, blocks


def _crossover_text(study: AxisStudy, result: CurveResult) -> str:
    c = result.crossover
    missing = [f for f in ("deep", "classical") if not any(result.best[f])]
    if missing:
        return f"none (no {missing[0]} pipeline)"
    if c.position is None:
        return f"none ({c.last} ahead throughout)"
    return f"{c.last} overtakes at {_where(study, result)}".replace("**", "")


def compare_studies(a: ReportModel, b: ReportModel) -> list[str]:
    """Markdown lines comparing the crossovers of the studies two runs share (by axis, task and base data set,
    curve by curve): each run's crossover with its interval, and "moved" when both have one and their intervals
    do not overlap."""
    studies_a = {(s.axis_name, s.task, s.base_dataset): s for s in build_axis_studies(a)}
    studies_b = {(s.axis_name, s.task, s.base_dataset): s for s in build_axis_studies(b)}
    lines = []
    for key in sorted(set(studies_a) | set(studies_b)):
        sa, sb = studies_a.get(key), studies_b.get(key)
        for curve in dict.fromkeys([*(sa.results if sa else {}), *(sb.results if sb else {})]):
            ra = sa.results.get(curve) if sa else None
            rb = sb.results.get(curve) if sb else None
            name = f"{key[0]} on {key[2]} ({key[1]})" + (f", {(sa or sb).curve_title(curve)}" if curve else "")
            text_a = _crossover_text(sa, ra) if sa and ra and ra.points else "absent"
            text_b = _crossover_text(sb, rb) if sb and rb and rb.points else "absent"
            flag = ""
            if ra and rb and ra.crossover.lo is not None and rb.crossover.lo is not None:
                ca, cb = ra.crossover, rb.crossover
                apart = ca.hi < cb.lo or cb.hi < ca.lo  # type: ignore[operator]
                flag = " **moved** (the intervals do not overlap)" if apart else " (the intervals overlap)"
            elif ra and rb and (ra.crossover.position is None) != (rb.crossover.position is None):
                flag = " **changed** (a crossover in one run only)"
            lines.append(f"- {name}: A {text_a}; B {text_b}{flag}")
    return lines
