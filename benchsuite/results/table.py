"""Records as a tidy pandas table: one row per (job, split), nested blocks flattened to dotted columns."""

from __future__ import annotations

import json
from pathlib import Path
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


def records_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Tidy table of ``records`` (any iterable of record dicts)."""
    rows = []
    for rec in records:
        row: dict[str, Any] = {}
        _flatten("", rec, row)
        rows.append(row)
    df = pd.DataFrame(rows)
    lead = [c for c in LEADING if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]


def load_run(run_dir: Path | str) -> pd.DataFrame:
    """The tidy table of a run folder: the latest record of each (job, split)."""
    from benchsuite.results.store import RunStore

    store = RunStore(Path(run_dir))
    store.read_run_info()  # a clear error when the folder is not a run
    return records_table(store.records())
