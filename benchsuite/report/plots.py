"""The report's plots, drawn with matplotlib's Agg backend into PNG bytes (no pyplot, no display).

Each function takes a :class:`benchsuite.report.model.Group` (and the run folder where it reads saved
artifacts) and returns a :class:`Plot`, or None when the records hold nothing to draw.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchsuite.report.model import Group, ReportModel, Row
from benchsuite.results.safe_paths import relative_inside

log = logging.getLogger(__name__)
T = TypeVar("T")

FAMILY_COLOURS = {"classical": "#D55E00", "deep": "#0072B2"}  # Okabe-Ito vermillion and blue
OTHER_COLOUR = "#777777"
DPI = 100


@dataclass
class Plot:
    name: str  # file stem, unique within a report
    title: str
    caption: str
    png: bytes


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _colour(row: Row) -> str:
    return FAMILY_COLOURS.get(row.family, OTHER_COLOUR)


def _one_per_pipeline(group: Group) -> list[Row]:
    """The first successful row of each pipeline (lowest seed), in the group's order."""
    seen, out = set(), []
    for r in sorted((r for r in group.rows if r.ok), key=lambda r: r.seed):
        if r.pipeline not in seen:
            seen.add(r.pipeline)
            out.append(r)
    order = {r.pipeline: i for i, r in enumerate(group.rows)}
    return sorted(out, key=lambda r: order[r.pipeline])


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (x larger, y larger), sorted by x ascending."""
    idx = []
    for i, (x, y) in enumerate(points):
        dominated = any(x2 >= x and y2 >= y and (x2 > x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            idx.append(i)
    return sorted(idx, key=lambda i: points[i][0])


def _plain_log_ticks(axis, values: list[float]) -> None:
    """Log-axis ticks written as plain numbers: at 1, 2, 5 x 10^k over a short range, powers of ten otherwise."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = [x for x in values if x and x > 0]
    decades = math.log10(max(v) / min(v)) if v else 0.0
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def tradeoff_plot(group: Group) -> Plot | None:
    rows = [r for r in _one_per_pipeline(group)
            if r.metric(group.metric) is not None and r.images_per_s and r.images_per_s > 0]
    if not rows:
        return None
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    pts = [(r.images_per_s, r.metric(group.metric)) for r in rows]
    for r, (x, y) in zip(rows, pts):
        est = r.estimates.get(group.metric)
        yerr = None
        if est is not None and est.has_interval:
            yerr = [[max(0.0, y - est.lo)], [max(0.0, est.hi - y)]]
        ax.errorbar([x], [y], yerr=yerr, fmt="o" if not r.pretrained_reference else "s", ms=7, capsize=3,
                    color=_colour(r), mfc=_colour(r) if not r.pretrained_reference else "white")
        ax.annotate(r.pipeline, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8)
    front = pareto_front(pts if group.higher_is_better else [(x, -y) for x, y in pts])  # quality by its direction
    fx = [pts[i][0] for i in front]
    fy = [pts[i][1] for i in front]
    ax.plot(fx, fy, "o", ms=14, mfc="none", mec="#444444", mew=1.0, label="Pareto front")
    if len(front) > 1:
        ax.step(fx, fy, where="post", color="#444444", lw=1, ls="--")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, [p[0] for p in pts])
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("images per second (log scale, higher is faster)")
    ax.set_ylabel(group.metric_title)
    lo, hi = ax.get_ylim()
    hi = max(hi, 0.05)
    ax.set_ylim(max(lo, -0.03 * hi) if min(p[1] for p in pts) >= 0 else lo, hi)
    for fam, col in FAMILY_COLOURS.items():
        ax.plot([], [], "o", color=col, label=fam)
    if any(r.pretrained_reference for r in rows):
        ax.plot([], [], "s", color="black", mfc="white", label="pretrained reference")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{group.metric_title} against speed: {group.dataset}, {group.split}", fontsize=10)
    return Plot(f"{group.slug}-tradeoff", "Quality against speed",
                "One point per pipeline (lowest seed), 95% bootstrap intervals as bars; circled (and joined "
                "by the dashed line): the pipelines that no other beats on both quality and speed.", _png(fig))


def _grouped_bars(ax, names: list[str], series: list[tuple[str, list[float | None], str]]) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(names))
    for k, (label, values, colour) in enumerate(series):
        vals = [np.nan if v is None else v for v in values]
        ax.bar(x - 0.4 + width * (k + 0.5), vals, width, label=label, color=colour, edgecolor="white", lw=0.5)
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                  fontsize=8)


def _series_colours(rows: list[Row]) -> list[str]:
    import matplotlib as mpl

    cmap = {"classical": mpl.colormaps["Oranges"], "deep": mpl.colormaps["Blues"]}
    counts = {f: sum(r.family == f for r in rows) for f in cmap}
    seen = dict.fromkeys(cmap, 0)
    out = []
    for r in rows:
        if r.family in cmap:
            seen[r.family] += 1
            out.append(mpl.colors.to_hex(cmap[r.family](0.35 + 0.6 * seen[r.family] / (counts[r.family] + 0.5))))
        else:
            out.append(OTHER_COLOUR)
    return out


def per_class_plot(group: Group) -> Plot | None:
    """Bars per class and pipeline of the task's per-class view (:meth:`benchsuite.tasks.base.Task.per_class`)."""
    rows = _one_per_pipeline(group)
    task = group.spec
    if task is None or not task.per_class_title:
        return None
    what = task.per_class_title

    def get(r: Row) -> dict[str, float | None]:
        return task.per_class(r.record.get("metrics") or {})

    rows = [r for r in rows if get(r)]
    if not rows:
        return None
    classes = list(get(rows[0]).keys())
    fig = _figure(max(6.0, 0.45 * len(classes) * max(1, len(rows)) ** 0.5 + 2), 3.8)
    ax = fig.add_subplot()
    colours = _series_colours(rows)
    _grouped_bars(ax, classes, [(r.pipeline, [get(r).get(c) for c in classes], col) for r, col in zip(rows, colours)])
    ax.set_ylabel(what)
    ax.set_ylim(0, 1.0)
    fig.legend(fontsize=7, ncols=min(6, len(rows)), loc="outside upper center")
    ax.grid(axis="y", alpha=0.3)
    return Plot(f"{group.slug}-per-class", f"Per-class {what}",
                "Orange shades: classical pipelines; blue shades: deep.", _png(fig))


def _read_confusion(path: Path) -> tuple[list[str], np.ndarray] | None:
    from benchsuite.results.safe_paths import read_limited

    try:
        lines = read_limited(path, 16 * 2**20, "confusion matrix").decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    classes = lines[0].split(",")[1:]
    counts = np.array([[int(v) for v in ln.split(",")[1:]] for ln in lines[1:]], np.float64)
    return classes, counts


def confusion_plot(group: Group, run_dir: Path) -> Plot | None:
    mats = []
    for r in _one_per_pipeline(group):
        art = (r.record.get("artifacts") or {}).get("confusion_matrix")
        got = _read_confusion(relative_inside(run_dir, art, "artifacts.confusion_matrix")) if art else None
        if got:
            mats.append((r, *got))
    if not mats:
        return None
    cols = min(3, len(mats))
    nrows = math.ceil(len(mats) / cols)
    fig = _figure(3.4 * cols + 0.6, 3.3 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    im = None
    for ax, (r, classes, cm) in zip(axes.ravel(), mats):
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{r.pipeline} ({r.family})", fontsize=9)
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, classes, rotation=90, fontsize=6)
        ax.set_yticks(ticks, classes, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    for ax in axes.ravel()[len(mats):]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.7, label="fraction of the true class")
    return Plot(f"{group.slug}-confusion", "Confusion matrices",
                "Rows: true class, normalised to 1; columns: predicted class.", _png(fig))


def pr_curves_plot(group: Group) -> Plot | None:
    rows = [r for r in _one_per_pipeline(group) if r.record.get("metrics", {}).get("pr_curves")]
    if not rows:
        return None
    classes = list(rows[0].record["metrics"]["pr_curves"].keys())
    cols = min(4, len(classes))
    nrows = math.ceil(len(classes) / cols)
    fig = _figure(3.0 * cols + 0.5, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, squeeze=False)
    colours = _series_colours(rows)
    for ax, cls in zip(axes.ravel(), classes):
        for r, col in zip(rows, colours):
            c = r.record["metrics"]["pr_curves"].get(cls) or {}
            if c.get("recall"):
                ax.plot(c["recall"], c["precision"], color=col, lw=1.3, label=r.pipeline)
        ax.set_title(cls, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=7)
        ax.set_ylabel("precision", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(classes):]:
        ax.set_axis_off()
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(rows)), fontsize=8)
    return Plot(f"{group.slug}-pr", "Precision-recall curves per class (VOC matching, IoU 0.5)",
                "Orange shades: classical; blue shades: deep.", _png(fig))


def recall_curve_plot(group: Group) -> Plot | None:
    rows = [r for r in _one_per_pipeline(group) if r.record.get("metrics", {}).get("recall_curve")]
    if not rows:
        return None
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    for r, col in zip(rows, _series_colours(rows)):
        c = r.record["metrics"]["recall_curve"]
        ax.plot(c["num_proposals"], c["recall_iou50"], color=col, lw=1.6, label=f"{r.pipeline} IoU 0.5")
        if c.get("recall_iou70"):
            ax.plot(c["num_proposals"], c["recall_iou70"], color=col, lw=1.2, ls="--", label=f"{r.pipeline} IoU 0.7")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, [float(n) for r in rows for n in r.record["metrics"]["recall_curve"]["num_proposals"]])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("proposals per image (log scale)")
    ax.set_ylabel("recall of objects")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncols=2)
    return Plot(f"{group.slug}-recall", "Recall against the number of proposals",
                "Solid: IoU 0.5; dashed: IoU 0.7.", _png(fig))


SIZES = (("ap_small", "small"), ("ap_medium", "medium"), ("ap_large", "large"))


def size_ap_plot(group: Group) -> Plot | None:
    rows = [r for r in _one_per_pipeline(group)
            if any(r.metric(k) is not None for k, _ in SIZES)]
    if not rows:
        return None
    fig = _figure(max(6.0, 0.9 * len(rows) + 2), 3.6)
    ax = fig.add_subplot()
    _grouped_bars(ax, [r.pipeline for r in rows],
                  [(label, [r.metric(k) for r in rows], col)
                   for (k, label), col in zip(SIZES, ("#CC79A7", "#009E73", "#56B4E9"))])
    ax.set_ylabel("COCO AP (IoU 0.5:0.95)")
    ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
    ax.legend(fontsize=8, title="object size", title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return Plot(f"{group.slug}-sizes", "AP by object size",
                "COCO areas: small < 32², medium 32²–96², large > 96² pixels; a missing bar means no object "
                "of that size in the split.", _png(fig))


#: the plots a task may name in its ``plots`` (:class:`benchsuite.tasks.base.Task`), by kind: each takes the
#: report's group and the run folder and returns a Plot or None (nothing to draw)
PLOTS: dict[str, Callable[[Group, Path], Plot | None]] = {
    "tradeoff": lambda g, run_dir: tradeoff_plot(g),
    "per_class": lambda g, run_dir: per_class_plot(g),
    "confusion": confusion_plot,
    "pr_curves": lambda g, run_dir: pr_curves_plot(g),
    "recall_curve": lambda g, run_dir: recall_curve_plot(g),
    "size_ap": lambda g, run_dir: size_ap_plot(g),
}


def contributed(group: Group, run_dir: Path, kinds: Iterable[str | Callable[[Group, Path], T | None]],
                known: Mapping[str, Callable[[Group, Path], T | None]], what: str) -> list[T]:
    """What ``group``'s task contributes, in its order: each of ``kinds`` is a kind of ``known`` or a function of the
    group and the run folder; a function that returns None or fails (logged, never fatal) contributes nothing."""
    out = []
    for kind in kinds:
        make = kind if callable(kind) else known.get(kind)
        if make is None:
            log.warning("report: task %s names the %s %r, which the report does not know (known: %s)",
                        group.task, what, kind, ", ".join(known))
            continue
        try:
            item = make(group, run_dir)
        except Exception as exc:  # one bad record must not cost the whole report
            log.warning("report: a %s of %s failed (%s: %s)", what, group.slug, type(exc).__name__, exc)
            item = None
        if item is not None:
            out.append(item)
    return out


def group_plots(group: Group, run_dir: Path) -> list[Plot]:
    """The plots ``group``'s task contributes, in its order (a task no longer installed: the trade-off only)."""
    task = group.spec
    return contributed(group, run_dir, task.plots if task is not None else ("tradeoff",), PLOTS, "plot")


def all_plots(model: ReportModel) -> dict[tuple[str, str, str], list[Plot]]:
    return {g.key: group_plots(g, model.run_dir) for g in model.groups}


def erf_maps_plot(name: str, title: str, maps: Mapping[str, np.ndarray], rf_box: np.ndarray,
                  radii: Mapping[str, float | None], caption: str) -> Plot | None:
    """A network's effective receptive field at each stage side by side (:mod:`benchsuite.results.erf`): each
    map ``(H, W)`` (summing to 1) with the theoretical field of the centre unit (dashed box, ``rf_box`` ``x1, y1,
    x2, y2`` in map pixels, NaN: not drawn) and the disc around the centre of mass holding the radius's share
    (``radii``, pixels). None without maps."""
    from matplotlib.patches import Circle, Rectangle

    stages = [s for s in ("init", "trained") if s in maps]
    if not stages:
        return None
    fig = _figure(2.6 * len(stages) + 0.4, 2.8)
    axes = fig.subplots(1, len(stages), squeeze=False)[0]
    for ax, stage in zip(axes, stages):
        m = np.asarray(maps[stage], np.float64)
        ax.imshow(m, cmap="magma", interpolation="nearest", extent=(0, m.shape[1], m.shape[0], 0))
        box = np.asarray(rf_box, np.float64)
        if np.all(np.isfinite(box)):
            ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, ls="--",
                                   lw=1.2, ec="#56B4E9", clip_on=True))
        r = radii.get(stage)
        total = float(m.sum())
        if r is not None and total > 0:
            ys, xs = np.mgrid[0:m.shape[0], 0:m.shape[1]] + 0.5
            centre = (float((m * xs).sum() / total), float((m * ys).sum() / total))
            ax.add_patch(Circle(centre, r, fill=False, lw=1.2, ec="#F0E442"))
        lo_x, lo_y, hi_x, hi_y = 0.0, 0.0, float(m.shape[1]), float(m.shape[0])
        if np.all(np.isfinite(box)):  # the view shows the whole theoretical field, the image inside it
            lo_x, lo_y, hi_x, hi_y = min(lo_x, box[0]), min(lo_y, box[1]), max(hi_x, box[2]), max(hi_y, box[3])
        pad = 0.03 * max(hi_x - lo_x, hi_y - lo_y)
        ax.set_facecolor("#DDDDDD")
        ax.set_xlim(lo_x - pad, hi_x + pad)
        ax.set_ylim(hi_y + pad, lo_y - pad)
        ax.set_title(f"{stage}" + (f" (radius {r:.1f} px)" if r is not None else ""), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return Plot(name, title, caption, _png(fig))
