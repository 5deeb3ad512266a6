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


def read_interval_cache(run_dir: Path | str) -> dict[str, Any]:
    """The cached intervals of a run folder; empty when there are none or the file is damaged."""
    try:
        cache = json.loads(interval_cache_path(run_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return cache if isinstance(cache, dict) else {}
