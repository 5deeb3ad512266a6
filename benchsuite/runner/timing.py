"""Moved to :mod:`benchsuite.measure.timing` (the tasks need it, and the runner imports the tasks); these names
stay importable from here for code written against the old place."""

from __future__ import annotations

from benchsuite.measure.timing import ImportWatch, Stopwatch, gpu_peak_mb, measure_latency, peak_rss_mb

__all__ = ["ImportWatch", "Stopwatch", "gpu_peak_mb", "measure_latency", "peak_rss_mb"]
