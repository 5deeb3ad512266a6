"""Records as a tidy pandas table: one row per (job, split), nested blocks flattened to dotted columns.

``load_run(folder)`` reads a run folder; the flattening itself is :mod:`benchsuite.results.tidy` (also
importable from here).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchsuite.results.store import RunStore
from benchsuite.results.tidy import LEADING, NESTED_SKIP, flatten_record, records_table

__all__ = ["LEADING", "NESTED_SKIP", "flatten_record", "load_run", "records_table"]


def load_run(run_dir: Path | str) -> pd.DataFrame:
    """The tidy table of a run folder: the latest record of each (job, split), read as the current schema
    version."""
    store = RunStore(Path(run_dir))
    store.read_run_info()  # a clear error when the folder is not a run
    return records_table(store.records())
