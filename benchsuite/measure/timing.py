"""Wall-clock timing with GPU synchronisation, the conditions it was taken under, latency percentiles and
peak memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchsuite.device import synchronize
from benchsuite.measure.conditions import Snapshot, phase_conditions


class Stopwatch:
    """``with Stopwatch(device, threads) as sw: ...`` then ``sw.seconds`` and ``sw.conditions``.

    Waits for the GPU at both ends. ``sw.conditions`` is the phase's conditions block
    (:func:`benchsuite.measure.conditions.phase_conditions`: the job's CPU seconds, the threads it was given,
    the cores other processes kept busy, the load average at both ends and whether it was contended).
    """

    def __init__(self, device: str = "cpu", threads: int = 1):
        self.device = device
        self.threads = threads
        self.seconds = float("nan")
        self.conditions: dict[str, Any] = {}

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self._snapshot = Snapshot.take()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start
        self.conditions = phase_conditions(self._snapshot, Snapshot.take(), self.threads)


class ImportWatch:
    """The top-level packages first imported inside a ``with`` block (an import inside ``fit`` is start-up
    cost on the fit clock: a pipeline should import at module level, which the worker does before timing)."""

    def __enter__(self) -> ImportWatch:
        self._before = set(sys.modules)
        self.packages: list[str] = []
        return self

    def __exit__(self, *exc: object) -> None:
        before = {name.split(".")[0] for name in self._before}
        new = {name.split(".")[0] for name in sys.modules} - before
        stdlib = getattr(sys, "stdlib_module_names", frozenset())
        self.packages = sorted(n for n in new if not n.startswith("_") and "__" not in n and n not in stdlib)


def measure_latency(call: Callable[[int], Any], count: int, warmup: int, device: str = "cpu"
                    ) -> dict[str, float]:
    """Time ``call(i)`` for i in ``range(warmup + count)``; the first ``warmup`` calls are discarded.

    Returns ``latency_ms_p50``, ``latency_ms_p95``, ``latency_ms_mean`` and ``latency_images``.
    """
    times = []
    for i in range(warmup + count):
        synchronize(device)
        start = time.perf_counter()
        call(i)
        synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    if not times:
        return {"latency_ms_p50": float("nan"), "latency_ms_p95": float("nan"),
                "latency_ms_mean": float("nan"), "latency_images": 0}
    arr = np.asarray(times)
    return {
        "latency_ms_p50": float(np.percentile(arr, 50)),
        "latency_ms_p95": float(np.percentile(arr, 95)),
        "latency_ms_mean": float(arr.mean()),
        "latency_images": len(arr),
    }


def _vm_hwm_mb() -> float | None:
    """Peak resident memory of this process's own address space (Linux ``VmHWM``), in MiB.

    Unlike ``ru_maxrss``, which a process started by fork + exec inherits from its parent, ``VmHWM``
    starts afresh at exec, so a worker's figure is its own.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process, and the largest of its waited-for children, in MiB."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # ru_maxrss: KiB on Linux, bytes on macOS
    own = _vm_hwm_mb()
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(children, 1)}


def gpu_peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1)
