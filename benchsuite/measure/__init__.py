"""Measuring a phase of work: wall clock with device synchronisation, latency percentiles, peak memory
(:mod:`benchsuite.measure.timing`) and the conditions a timing was taken under
(:mod:`benchsuite.measure.conditions`).

It sits below the tasks and the runner: both import it, it imports neither.
"""
