"""Where a run folder keeps the report's bootstrap intervals, and the key of a record in that cache.

The report writes ``<run>/report_files/intervals.json`` (``{record key: {metric: [lo, hi] or null}}``); the
tidy export adds those intervals as ``ci95.<metric>.lo`` / ``.hi`` columns. Both read the layout from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: the report's folder of assets (plots, the interval cache) inside a run folder
ASSETS = "report_files"
#: the interval cache's file name inside :data:`ASSETS`
INTERVAL_CACHE = "intervals.json"


def interval_key(record: dict[str, Any]) -> str:
    """The cache key of ``record``: its job, split and finish time (a rerun of the job gets a new key)."""
    return f"{record.get('job_id')}|{record.get('split')}|{record.get('finished_at')}"


def interval_cache_path(run_dir: Path | str) -> Path:
    """``<run_dir>/report_files/intervals.json``."""
    return Path(run_dir) / ASSETS / INTERVAL_CACHE


#: the largest interval cache read (a few hundred bytes per record)
MAX_CACHE_BYTES = 64 * 2**20


def read_interval_cache(run_dir: Path | str) -> dict[str, dict[str, list[float] | None]]:
    """The cached intervals of a run folder, entry by entry checked: ``{record key: {metric: [lo, hi] (finite,
    lo <= hi) or None}}``. A file that is missing, damaged or not of that shape gives an empty cache, and an entry
    of another shape is left out: the report recomputes what the cache does not hold, so it never trusts it."""
    import math

    from benchsuite.errors import BenchsuiteError
    from benchsuite.results.safe_paths import read_limited

    try:
        cache = json.loads(read_limited(interval_cache_path(run_dir), MAX_CACHE_BYTES, "interval cache"),
                           parse_constant=lambda name: None)
    except (OSError, ValueError, RecursionError, BenchsuiteError):
        return {}
    if not isinstance(cache, dict):
        return {}

    def interval(value: Any) -> bool:
        return value is None or (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            and value[0] <= value[1])

    return {key: entry for key, entry in cache.items()
            if isinstance(key, str) and isinstance(entry, dict)
            and all(isinstance(m, str) and interval(v) for m, v in entry.items())}
