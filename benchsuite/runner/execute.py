"""Start a worker process for a job and supervise it: time limit, memory limit, log capture."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

import benchsuite

POLL_S = 0.2


@dataclass
class WorkerExit:
    returncode: int | None
    reason: str | None  # "timeout", "memory" or None
    seconds: float
    peak_tree_rss_mb: float


def package_root() -> Path:
    """The folder that holds ``benchsuite/`` (and, in a checkout, ``pipelines/``)."""
    return Path(benchsuite.__file__).resolve().parent.parent


def worker_env(num_threads: int) -> dict[str, str]:
    env = os.environ.copy()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(num_threads)
    paths = [str(package_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCHSUITE_WORKER"] = "1"
    return env


def _tree_rss_mb(proc: psutil.Process) -> float:
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def _kill_tree(popen: subprocess.Popen[bytes]) -> None:
    try:
        children = psutil.Process(popen.pid).children(recursive=True)
    except psutil.Error:
        children = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _pump(stream: int, log_path: Path, echo: bool) -> None:
    with open(log_path, "ab") as log:
        while True:
            chunk = os.read(stream, 65536)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            if echo:
                try:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                except (AttributeError, ValueError, OSError):
                    pass


def run_worker(job_file: Path, log_path: Path, num_threads: int, time_limit_s: float,
               memory_limit_mb: float | None, echo: bool = False) -> WorkerExit:
    """Run ``python -m benchsuite.runner.worker job_file`` until it exits or breaks a limit."""
    cmd = [sys.executable, "-m", "benchsuite.runner.worker", str(job_file)]
    start = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=worker_env(num_threads), start_new_session=True)
    assert popen.stdout is not None
    pump = threading.Thread(target=_pump, args=(popen.stdout.fileno(), log_path, echo), daemon=True)
    pump.start()
    reason = None
    peak = 0.0
    try:
        proc = psutil.Process(popen.pid)
        while popen.poll() is None:
            elapsed = time.perf_counter() - start
            rss = _tree_rss_mb(proc)
            peak = max(peak, rss)
            if elapsed > time_limit_s:
                reason = "timeout"
            elif memory_limit_mb is not None and rss > memory_limit_mb:
                reason = "memory"
            if reason:
                _kill_tree(popen)
                popen.wait()
                break
            time.sleep(POLL_S)
    except BaseException:
        _kill_tree(popen)
        popen.wait()
        raise
    finally:
        pump.join(timeout=10)
        popen.stdout.close()
    return WorkerExit(popen.returncode, reason, time.perf_counter() - start, round(peak, 1))


def describe_exit(exit: WorkerExit, time_limit_s: float, memory_limit_mb: float | None) -> tuple[str, str]:
    """``(failure kind, message)`` for a worker that left no result."""
    if exit.reason == "timeout":
        return "timeout", f"timed out: still running after the {time_limit_s:.0f} s limit (killed)"
    if exit.reason == "memory":
        return "memory", (f"out of memory: resident memory reached {exit.peak_tree_rss_mb:.0f} MB, over the "
                          f"{memory_limit_mb:.0f} MB limit (killed)")
    code = exit.returncode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (the system's out-of-memory killer?)" if -code == signal.SIGKILL else ""
        return "crash", f"worker killed by signal {name}{hint}"
    return "crash", f"worker exited with status {code} without writing a result"
