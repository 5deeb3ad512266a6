"""Records as a tidy pandas table: one row per record, nested blocks flattened to dotted columns.

Pure functions of record dicts: the run folder (:mod:`benchsuite.results.store`) writes ``summary.csv`` with
them, and :func:`benchsuite.results.table.load_run` reads a folder into one. Lists become one JSON text column
(``fit_info.selection.grid``), except ``[lo, hi]`` intervals (``*_ci95``), which become ``.lo`` / ``.hi``.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

#: columns first in every table, in this order, when present
LEADING = ["run_id", "task", "dataset", "split", "pipeline", "family", "seed", "device", "status"]
#: nested blocks that stay out of the flat table (large or per-class; read them from the records)
NESTED_SKIP = ("metrics.per_class_accuracy", "metrics.per_class", "metrics.pr_curves",
               "metrics.recall_curve", "traceback")


def _flatten(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if any(prefix == s or prefix.startswith(s + ".") for s in NESTED_SKIP):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, row)
    elif isinstance(value, list) and prefix.endswith("_ci95") and len(value) == 2:
        row[f"{prefix}.lo"], row[f"{prefix}.hi"] = value
    elif isinstance(value, list):
        row[prefix] = json.dumps(value)
    else:
        row[prefix] = value


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """One record as a flat row ``{dotted column: value}``."""
    row: dict[str, Any] = {}
    _flatten("", record, row)
    return row


def records_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Tidy table of ``records`` (any iterable of record dicts)."""
    df = pd.DataFrame([flatten_record(rec) for rec in records])
    lead = [c for c in LEADING if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]
