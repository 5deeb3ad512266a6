"""Moved to :mod:`benchsuite.measure.conditions` (the tasks need it, and the runner imports the tasks); these
names stay importable from here for code written against the old place."""

from __future__ import annotations

from benchsuite.measure.conditions import (
    CONTENTION_MARGIN_CORES,
    CONTENTION_RULE,
    CONTENTION_WAIT_SHARE,
    MIN_PHASE_S,
    Snapshot,
    busy_other_cores,
    is_contended,
    load_average,
    machine_busy_s,
    machine_state,
    omp_wait_policy,
    phase_conditions,
    tree_cpu_s,
    tree_run_delay_s,
)

__all__ = [
    "CONTENTION_MARGIN_CORES", "CONTENTION_RULE", "CONTENTION_WAIT_SHARE", "MIN_PHASE_S", "Snapshot",
    "busy_other_cores", "is_contended", "load_average", "machine_busy_s", "machine_state", "omp_wait_policy",
    "phase_conditions", "tree_cpu_s", "tree_run_delay_s",
]
