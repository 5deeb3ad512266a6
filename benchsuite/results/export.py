"""Tidy export of a run: one row per record (nested blocks as dotted columns), as CSV or Parquet.

The report's bootstrap intervals, when the report has been written, are added as ``ci95.<metric>.lo`` /
``.hi`` columns.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from benchsuite.errors import ConfigError
from benchsuite.results.intervals import interval_key, read_interval_cache
from benchsuite.results.store import RunStore
from benchsuite.results.tidy import records_table

FORMATS = ("csv", "parquet")


def run_table(run_dir: Path | str) -> pd.DataFrame:
    """The tidy table of ``run_dir`` with the report's intervals where it has computed them."""
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    store.read_run_info()
    records = store.records()
    df = records_table(records)
    intervals = read_interval_cache(run_dir)
    if intervals and len(df):
        extra: dict[str, list[float | None]] = {}
        for i, rec in enumerate(records):
            for metric, iv in (intervals.get(interval_key(rec)) or {}).items():
                for end, k in (("lo", 0), ("hi", 1)):
                    col = extra.setdefault(f"ci95.{metric}.{end}", [None] * len(records))
                    col[i] = iv[k] if iv else None
        for col, values in extra.items():
            df[col] = pd.array(values, dtype="Float64").astype("float64")
    return df


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (a parameter that is a number in one record and a string in another)
    become strings: Parquet columns have one type."""
    df = df.copy()
    for col in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:
        kinds = {type(v) for v in df[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
        if len(kinds) > 1 or (kinds and not kinds <= {str, bool}):
            df[col] = [None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in df[col]]
    return df


def export_run(run_dir: Path | str, fmt: str = "csv", out: Path | str | None = None) -> Path:
    """Write the tidy table of ``run_dir`` as ``fmt`` (csv or parquet); returns the file written.

    Default file: ``<run_dir>/records.<fmt>``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError("parquet export needs pyarrow, which is not installed: "
                          "pip install 'benchsuite[parquet]' (or export --format csv)")
    df = run_table(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / f"records.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        _parquet_safe(df).to_parquet(path, index=False)
    return path
