"""Formatting helpers for the report's tables: numbers to cells, rows to a Markdown table.

Which quality columns a task's table has is the task's to say (:attr:`benchsuite.tasks.base.Task.columns`, read by
:func:`benchsuite.report.document.task_columns`); the cost columns are the same for every task.
"""

from __future__ import annotations

import math
from typing import Any


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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
