"""Measuring a phase of work: wall clock with device synchronisation, latency percentiles, peak memory
(:mod:`benchsuite.measure.timing`), the conditions a timing was taken under
(:mod:`benchsuite.measure.conditions`) and what a job read from the shared cache rather than computed
(:mod:`benchsuite.measure.cache_use`).

It sits below the tasks and the runner: both import it, it imports neither.
"""
