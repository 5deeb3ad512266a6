"""Under which conditions a timing was taken: the job's own CPU time and what the rest of the machine did.

A wall-clock figure means little without its conditions: on a 2-core machine with two other busy processes a
job's fit takes twice as long although it did the very same work. Around each timed phase (fit, predict) the
suite takes a :class:`Snapshot` at both ends and turns the pair into a :func:`phase_conditions` block:

``wall_s``
    seconds of wall clock between the snapshots.
``cpu_s``
    CPU seconds (user + system) of the job's process tree: the worker itself, its finished children and the
    children still alive (pool workers).
``threads``
    the CPU threads the job was given (``--jobs`` shares the cores between jobs).
``others_cpu_cores``
    the mean number of cores that every *other* process on the machine kept busy meanwhile: the machine's busy
    time from ``/proc/stat`` (all CPUs, user + nice + system + irq + softirq + steal) minus the job's own CPU
    time, divided by the wall time.
``load_start``, ``load_end``
    the 1-minute load average at both ends (it includes the job's own threads).
``run_delay_s``, ``wait_share``
    seconds the job's threads spent runnable but waiting for a CPU (the scheduler's run delay, summed over the
    threads of the job's process tree from ``/proc/PID/task/TID/schedstat``), and that delay as a share of
    the time the threads ran or waited to run: ``run_delay_s / (cpu_s + run_delay_s)``.
``contended``
    the documented rule :func:`is_contended`: the job's threads waited for a CPU for more than
    :data:`CONTENTION_WAIT_SHARE` of their runnable time while other processes kept more than
    :data:`CONTENTION_MARGIN_CORES` cores busy (a job that runs more threads than there are cores waits on
    itself, which is no contention). Other processes that only use cores the job leaves
    idle (a low-priority background task, the other job of ``--jobs 2`` on its own core) do not make a job
    contended; processes that take cores the job wants do. Where the scheduler statistics cannot be read, the
    rule falls back to the other processes' cores: contended when they kept busy more cores than the job left
    free, by more than :data:`CONTENTION_MARGIN_CORES`.

Where neither ``/proc/PID/task/*/schedstat`` nor ``/proc/stat`` can be read (not Linux), ``contended`` is None.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

#: share of the job's runnable time spent waiting for a CPU above which a phase is contended
CONTENTION_WAIT_SHARE = 0.10
#: fallback without scheduler statistics: cores of other work tolerated beyond the cores the job left free
CONTENTION_MARGIN_CORES = 0.25
#: phases shorter than this (seconds) are too short for /proc/stat's 10 ms ticks: never called contended
MIN_PHASE_S = 0.5
CONTENTION_RULE = (f"contended when the job's threads waited for a CPU (scheduler run delay) for more than "
                   f"{CONTENTION_WAIT_SHARE:.0%} of the time they ran or waited to run while other processes kept "
                   f"more than {CONTENTION_MARGIN_CORES} cores busy, over a phase of at least "
                   f"{MIN_PHASE_S} s; without scheduler statistics, when other processes kept busy more than "
                   f"(cores - threads) + {CONTENTION_MARGIN_CORES} cores")

_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def machine_busy_s() -> float | None:
    """CPU seconds all CPUs of the machine spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already counted in user)
    busy = sum(values[i] for i in (0, 1, 2, 5, 6, 7) if i < len(values))
    return busy * _TICK_S


def tree_cpu_s(process: psutil.Process | None = None) -> float:
    """CPU seconds (user + system) of this process, its waited-for children and its live descendants."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    proc = process or psutil.Process()
    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        children = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            c = child.cpu_times()
            total += c.user + c.system
    return total


def _task_run_delay_ns(pid: int) -> int | None:
    """Run delay (ns) summed over the threads of process ``pid`` (field 2 of each thread's schedstat)."""
    total, found = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
                found = True
        except (OSError, IndexError, ValueError):
            continue
    return total if found else None


def tree_run_delay_s(process: psutil.Process | None = None) -> float | None:
    """Seconds the live threads of this process and its descendants have waited, runnable, for a CPU (None where
    the scheduler statistics cannot be read). Threads that ended take their share with them."""
    proc = process or psutil.Process()
    pids = [proc.pid]
    with contextlib.suppress(psutil.Error):
        pids += [c.pid for c in proc.children(recursive=True)]
    values = [v for v in (_task_run_delay_ns(pid) for pid in pids) if v is not None]
    return sum(values) / 1e9 if values else None


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass(frozen=True)
class Snapshot:
    """The machine at one instant: wall clock, machine busy seconds, the job's CPU seconds, load."""

    wall: float
    busy_s: float | None
    own_cpu_s: float
    load: float | None
    run_delay_s: float | None = None

    @classmethod
    def take(cls) -> Snapshot:
        return cls(time.perf_counter(), machine_busy_s(), tree_cpu_s(), load_average(), tree_run_delay_s())


def is_contended(others_cpu_cores: float | None, threads: int, cores: int, wall_s: float,
                 wait_share: float | None = None) -> bool | None:
    """The rule of the module docstring: by the job's wait share when known, else by the other processes'
    cores; None when neither is known."""
    if wait_share is None and others_cpu_cores is None:
        return None
    if wall_s < MIN_PHASE_S:
        return False
    if wait_share is not None:
        # a job that runs more threads than cores waits on itself: contention needs other processes at work too
        others_busy = others_cpu_cores is None or others_cpu_cores > CONTENTION_MARGIN_CORES
        return wait_share > CONTENTION_WAIT_SHARE and others_busy
    return others_cpu_cores > max(0, cores - threads) + CONTENTION_MARGIN_CORES


def phase_conditions(start: Snapshot, end: Snapshot, threads: int, cores: int | None = None) -> dict[str, Any]:
    """The conditions block of one timed phase between two snapshots (keys in the module docstring)."""
    cores = cores or os.cpu_count() or 1
    wall = max(end.wall - start.wall, 1e-9)
    own = max(end.own_cpu_s - start.own_cpu_s, 0.0)
    others = None
    if start.busy_s is not None and end.busy_s is not None:
        others = max(0.0, (end.busy_s - start.busy_s) - own) / wall
    delay = share = None
    if start.run_delay_s is not None and end.run_delay_s is not None:
        delay = max(0.0, end.run_delay_s - start.run_delay_s)
        share = delay / (own + delay) if own + delay > 0 else 0.0
    return {
        "wall_s": round(wall, 4),
        "cpu_s": round(own, 3),
        "threads": int(threads),
        "cores": int(cores),
        "others_cpu_cores": None if others is None else round(others, 3),
        "run_delay_s": None if delay is None else round(delay, 3),
        "wait_share": None if share is None else round(share, 4),
        "load_start": start.load,
        "load_end": end.load,
        "contended": is_contended(others, threads, cores, wall, share),
    }


def machine_state(sample_s: float = 0.5) -> dict[str, Any]:
    """The machine's state now, for ``run.json``: load averages, busy cores over ``sample_s`` seconds,
    available memory, and the busiest other processes (name and CPU share)."""
    first = machine_busy_s()
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
            procs.append(p)
    time.sleep(sample_s)
    second = machine_busy_s()
    me = os.getpid()
    busiest = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            share = p.cpu_percent(None)
            if p.pid != me and share >= 5.0:
                busiest.append({"pid": p.pid, "name": p.info.get("name"), "cpu_percent": round(share, 1)})
    busiest.sort(key=lambda d: -d["cpu_percent"])
    try:
        loads = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        loads = None
    busy_cores = None if first is None or second is None else round((second - first) / sample_s, 3)
    return {
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": loads,
        "busy_cores": busy_cores,
        "cores": os.cpu_count(),
        "memory_available_gb": round(psutil.virtual_memory().available / 2**30, 2),
        "busiest_processes": busiest[:5],
        "contention_rule": CONTENTION_RULE,
    }


def busy_other_cores(sample_s: float = 0.25) -> float | None:
    """Cores the machine keeps busy over ``sample_s`` seconds, less this process's own CPU time (None off Linux).

    The runner calls it just before starting a job, when it is itself idle: the figure is the other processes'
    load (other jobs of ``--jobs N`` included)."""
    first, own_first = machine_busy_s(), tree_cpu_s()
    time.sleep(sample_s)
    second, own_second = machine_busy_s(), tree_cpu_s()
    if first is None or second is None:
        return None
    return max(0.0, (second - first) - (own_second - own_first)) / sample_s


def omp_wait_policy(threads: int, cores: int | None = None, others: float | None = None) -> str | None:
    """The OpenMP wait policy a job should start with: ``"PASSIVE"`` when other processes already keep busy more
    cores than the job leaves free (by the contention margin), else None (the library's default: spin, then sleep).

    Spinning threads are fastest on an idle machine (idle threads of a torch job waking up from sleep made its
    detector training steps about 45% slower, measured on 2 cores) but ruinous next to busy processes: spinning
    threads burn the time slices the working ones need (a step took over 15 times longer beside one busy process
    per core). The policy changes no result, only the speed, and the job's ``timing.method`` records it.
    """
    cores = cores or os.cpu_count() or 1
    if others is None:
        others = busy_other_cores()
    if others is None:
        return None
    return "PASSIVE" if others > max(0, cores - threads) + CONTENTION_MARGIN_CORES else None
