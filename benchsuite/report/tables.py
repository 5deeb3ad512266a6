"""Report tables: per task, one row per pipeline, the columns that answer "how good, at what cost"."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[dict[str, Any]], Any]
    fmt: Callable[[Any], str]


def _get(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def fmt_num(digits: int) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return f"{v:.{digits}f}"

    return f


def fmt_auto(v: Any) -> str:
    """Three significant figures, no scientific notation for the usual ranges."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_ci(v: Any) -> str:
    if not v or any(x is None for x in v):
        return "–"
    return f"{v[0]:.3f}–{v[1]:.3f}"


def metric(dotted: str, title: str, digits: int = 3) -> Column:
    return Column(title, lambda r: _get(r, dotted), fmt_num(digits))


def cost_columns() -> list[Column]:
    return [
        Column("fit s", lambda r: _get(r, "timing.fit_s"), fmt_auto),
        Column("images/s", lambda r: _get(r, "timing.images_per_s"), fmt_auto),
        Column("latency p50 ms", lambda r: _get(r, "timing.latency_ms_p50"), fmt_auto),
        Column("latency p95 ms", lambda r: _get(r, "timing.latency_ms_p95"), fmt_auto),
        Column("peak RSS MB", lambda r: _get(r, "memory.peak_rss_mb"), fmt_auto),
    ]


def _status(rec: dict[str, Any]) -> str:
    return "ok" if rec.get("status") == "ok" else f"failed ({rec.get('failure')})"


#: the quality columns of each task; cost columns follow
TASK_COLUMNS: dict[str, list[Column]] = {
    "classification": [
        metric("metrics.accuracy", "accuracy"),
        Column("95% CI", lambda r: _get(r, "metrics.accuracy_ci95"), fmt_ci),
        metric("metrics.macro_f1", "macro F1"),
    ],
    "detection": [
        metric("metrics.map50", "mAP50"),
        metric("metrics.coco_ap", "COCO AP"),
        metric("metrics.ap_small", "AP small"),
        metric("metrics.ap_medium", "AP medium"),
        metric("metrics.ap_large", "AP large"),
    ],
    "proposals": [
        metric("metrics.recall_at_1000_iou50", "recall@1000 (0.5)"),
        metric("metrics.recall_at_1000_iou70", "recall@1000 (0.7)"),
        metric("metrics.mabo", "MABO"),
        Column("proposals/image", lambda r: _get(r, "metrics.proposals_per_image"), fmt_auto),
        Column("s/image", lambda r: _get(r, "timing.seconds_per_image"), fmt_auto),
    ],
}

#: the metric that ranks pipelines of a task (higher is better)
PRIMARY_METRIC = {"classification": "metrics.accuracy", "detection": "metrics.map50",
                  "proposals": "metrics.recall_at_1000_iou50"}


def primary_value(rec: dict[str, Any]) -> float:
    v = _get(rec, PRIMARY_METRIC.get(rec.get("task", ""), ""))
    return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else float("-inf")


def task_table(records: list[dict[str, Any]], task: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the records of one task and split, best first."""
    columns = [
        Column("pipeline", lambda r: r["pipeline"] + (" (pretrained ref.)" if r.get("pretrained_reference")
                                                      else ""), str),
        Column("family", lambda r: r.get("family"), str),
        Column("seed", lambda r: r.get("seed"), str),
        *TASK_COLUMNS.get(task, []),
        *cost_columns(),
        Column("status", _status, str),
    ]
    ordered = sorted(records, key=lambda r: (-primary_value(r), r["pipeline"], r.get("seed", 0)))
    rows = [[c.fmt(c.value(r)) for c in columns] for r in ordered]
    return [c.title for c in columns], rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
