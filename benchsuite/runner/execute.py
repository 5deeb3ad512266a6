"""Start a worker process for a job and supervise it: time limit, memory limit, log capture, interrupts.

A run's workers never outlive it: each leads its own process group, asks the kernel to kill it when the
runner dies (``PR_SET_PDEATHSIG``, set at worker start-up) and is registered with the run's reaper
(:mod:`benchsuite.runner.reaper`), which kills the registered groups when the runner is gone. The first
SIGINT or SIGTERM stops launching jobs and ends the running workers' process trees; the second stops at once.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

import benchsuite
from benchsuite.measure.conditions import omp_wait_policy
from benchsuite.proposal_cache import THREADS_ENV

log = logging.getLogger(__name__)

POLL_S = 0.2
#: the smallest --memory-limit-mb accepted: a worker starts at about 40 MB (Python, numpy, psutil) and a
#: small classical job, its data set in memory, peaks at about 180 MB (torch adds about 500 MB when a
#: pipeline imports it), so a lower limit would fail well-behaved jobs
MEMORY_FLOOR_MB = 256.0
#: the exit status of a worker that could not write its result (a full or read-only disk)
WORKER_IO_EXIT = 74
#: the line a worker prints before exiting with WORKER_IO_EXIT
WORKER_IO_MARKER = "benchsuite-worker: io-error: "
TAIL_BYTES = 16384


class RunInterrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM; the message says what was kept and what --resume runs."""

    def __init__(self, message: str, not_run: Sequence[str]):
        super().__init__(message)
        self.not_run = list(not_run)


class DeferredInterrupt:
    """SIGINT/SIGTERM handling outside the jobs' execution (planning, opening data, the report).

    A first signal is noted and acted on at the next :meth:`check` (a KeyboardInterrupt raised in the
    middle of importing a native library such as torch aborts the interpreter); a second one raises
    KeyboardInterrupt at once. Use as a context manager in the main thread (elsewhere it does nothing).
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.warning("%s: stopping after the current step (press Ctrl-C again to stop at once)", self.signal_name)

    def check(self, when: str) -> None:
        """Raise :class:`RunInterrupted` if a signal came; ``when`` says where the run stood."""
        if self.signal_name is not None:
            raise RunInterrupted(f"interrupted ({self.signal_name}) {when}", [])


class Supervisor:
    """Signals, running workers and the reaper of one run's execution.

    Use as a context manager in the main thread: it installs SIGINT and SIGTERM handlers (restored on exit)
    and starts the reaper. The first signal sets :attr:`stop`: no job is launched after it and every running
    worker's process tree is killed within a poll interval. A second signal kills every worker at once and
    raises KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signal_name: str | None = None
        self._signals = 0
        self._previous: dict[int, Any] = {}
        self._popens: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._reaper: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Supervisor:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        self._start_reaper()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._reaper is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self._reaper.stdin is not None
                self._reaper.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(timeout=5)
            self._reaper = None

    def _start_reaper(self) -> None:
        script = Path(__file__).with_name("reaper.py")
        try:
            self._reaper = subprocess.Popen([sys.executable, "-I", str(script), str(os.getpid())],
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            log.warning("could not start the reaper (%s); workers rely on their parent-death signal", exc)

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is None or self._reaper.stdin is None:
            return
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._reaper.stdin.write(line.encode() + b"\n")
            self._reaper.stdin.flush()

    def register(self, popen: subprocess.Popen[bytes]) -> None:
        """Track a started worker (and tell the reaper its process group)."""
        with self._lock:
            self._popens[popen.pid] = popen
        self._tell_reaper(f"+{popen.pid}")
        if self._signals > 1:  # started in the instant of a second Ctrl-C
            _kill_tree(popen)

    def unregister(self, popen: subprocess.Popen[bytes]) -> None:
        """Forget a worker that has ended."""
        with self._lock:
            self._popens.pop(popen.pid, None)
        self._tell_reaper(f"-{popen.pid}")

    def kill_all(self) -> None:
        """SIGKILL every tracked worker's process tree now."""
        with self._lock:
            popens = list(self._popens.values())
        for popen in popens:
            _kill_tree(popen)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            self.signal_name = name
            self.stop.set()
            log.warning("%s: stopping: no new jobs; ending the running ones (press Ctrl-C again to stop at "
                        "once)", name)
            return
        self.kill_all()
        raise KeyboardInterrupt


def run_jobs(jobs: Sequence[Any], parallel: int, run_one: Callable[[Any], dict[str, Any]],
             finish: Callable[[Any, dict[str, Any]], None], supervisor: Supervisor,
             after: Mapping[str, Collection[str]] | None = None) -> list[Any]:
    """Run ``jobs`` in their order, at most ``parallel`` at a time, each through ``run_one(job) -> result`` in a
    thread; ``finish(job, result)`` is called in this (the main) thread, one job at a time, in completion order.

    ``after`` maps a job id to the ids of jobs it waits for (:func:`benchsuite.runner.dependencies.prerequisites`):
    such a job starts only when none of those is still to run or running (the first job in order that may start
    starts; the jobs must be in an order where waiting ends, :func:`benchsuite.runner.dependencies.order_jobs`).
    A result with ``failure == "interrupted"`` (a worker ended by the supervisor's stop, without a result)
    is not finished. Returns the jobs that were not finished: interrupted ones, then the ones never started.
    An exception in ``run_one`` stops launching, lets the running jobs end, and is raised.
    """
    pending = collections.deque(jobs)
    running: dict[int, Any] = {}
    done: queue.Queue[tuple[int, dict[str, Any] | None, BaseException | None]] = queue.Queue()
    not_run: list[Any] = []
    total = len(jobs)

    def work(key: int, job: Any) -> None:
        try:
            done.put((key, run_one(job), None))
        except BaseException as exc:  # handed to the main thread
            done.put((key, None, exc))

    try:
        _schedule(pending, running, done, not_run, parallel, total, work, finish, supervisor, after or {})
    except BaseException:  # a record that cannot be written, a second Ctrl-C: no worker outlives the run
        supervisor.stop.set()
        supervisor.kill_all()
        raise
    return [*not_run, *pending]


def _next_ready(pending: collections.deque[Any], running: dict[int, Any],
                after: Mapping[str, Collection[str]]) -> Any | None:
    """The first job of ``pending`` that waits for no job still pending or running (taken out), or None."""
    unfinished = {j.job_id for j in pending} | {j.job_id for j in running.values()}
    for i, job in enumerate(pending):
        if not unfinished.intersection(after.get(job.job_id, ())):
            del pending[i]
            return job
    return None


def _schedule(pending: collections.deque[Any], running: dict[int, Any], done: queue.Queue[Any],
              not_run: list[Any], parallel: int, total: int, work: Callable[[int, Any], None],
              finish: Callable[[Any, dict[str, Any]], None], supervisor: Supervisor,
              after: Mapping[str, Collection[str]]) -> None:
    """The loop of :func:`run_jobs`."""
    error: BaseException | None = None
    started = 0
    while pending or running:
        while pending and len(running) < parallel and not supervisor.stop.is_set() and error is None:
            job = _next_ready(pending, running, after) if after else pending.popleft()
            if job is None:  # every pending job waits for a running one
                break
            started += 1
            log.info("[%d/%d] %s: %s on %s (seed %d, %s)", started, total, job.task, job.pipeline, job.dataset,
                     job.seed, job.device)
            running[started] = job
            threading.Thread(target=work, args=(started, job), daemon=True, name=f"job-{started}").start()
        if not running:
            break
        try:
            key, result, exc = done.get(timeout=POLL_S)
        except queue.Empty:
            continue
        job = running.pop(key)
        if exc is not None:
            if error is None:
                error = exc
                supervisor.stop.set()
            not_run.append(job)
            continue
        assert result is not None
        if result.get("failure") == "interrupted":
            not_run.append(job)
            continue
        finish(job, result)
    if error is not None:
        raise error


@dataclass
class WorkerExit:
    returncode: int | None
    reason: str | None  # "timeout", "memory", "interrupted" (the runner's own kills) or None
    seconds: float
    peak_tree_rss_mb: float
    output_tail: str = ""  # the last bytes the worker printed, kept in memory (the log may be unwritable)


def package_root() -> Path:
    """The folder that holds ``benchsuite/`` (and, in a checkout, ``pipelines/``)."""
    return Path(benchsuite.__file__).resolve().parent.parent


def worker_env(num_threads: int) -> dict[str, str]:
    env = os.environ.copy()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", THREADS_ENV):
        env[var] = str(num_threads)  # THREADS_ENV: the default size of the proposal cache's process pool
    # OpenMP threads that wait spin by default (fastest on an idle machine); beside busy processes they sleep
    # instead, since spinning threads burn the time slices the working ones need (conditions.omp_wait_policy).
    # A policy the user set is kept. The choice changes no result, and the record's timing.method names it.
    if "OMP_WAIT_POLICY" not in env:
        policy = omp_wait_policy(num_threads)
        if policy:
            env["OMP_WAIT_POLICY"] = policy
    paths = [str(package_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCHSUITE_WORKER"] = "1"
    env["BENCHSUITE_RUNNER_PID"] = str(os.getpid())
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


def _pump(stream: int, log_path: Path, echo: bool, tail: collections.deque[bytes]) -> None:
    """Copy the worker's output to its log (and the terminal), keeping the last bytes in ``tail``.

    A log that cannot be written (full or read-only disk) does not stop the copying: the worker must never
    block on a full pipe, and ``tail`` still holds what it said last.
    """
    try:
        log_file: Any = open(log_path, "ab")  # noqa: SIM115 (closed below; may be dropped on a write error)
    except OSError:
        log_file = None
    try:
        while True:
            chunk = os.read(stream, 65536)
            if not chunk:
                break
            tail.append(chunk)
            while sum(map(len, tail)) > TAIL_BYTES and len(tail) > 1:
                tail.popleft()
            if log_file is not None:
                try:
                    log_file.write(chunk)
                    log_file.flush()
                except OSError:
                    with contextlib.suppress(OSError):
                        log_file.close()
                    log_file = None
            if echo:
                try:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                except (AttributeError, ValueError, OSError):
                    pass
    finally:
        if log_file is not None:
            with contextlib.suppress(OSError):
                log_file.close()


def run_worker(job_file: Path, log_path: Path, num_threads: int, time_limit_s: float,
               memory_limit_mb: float | None, echo: bool = False,
               supervisor: Supervisor | None = None) -> WorkerExit:
    """Run ``python -m benchsuite.runner.worker job_file`` until it exits, breaks a limit, or the
    ``supervisor`` stops the run (reason ``"interrupted"``)."""
    cmd = [sys.executable, "-m", "benchsuite.runner.worker", str(job_file)]
    start = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=worker_env(num_threads), start_new_session=True)
    if supervisor is not None:
        supervisor.register(popen)
    assert popen.stdout is not None
    tail: collections.deque[bytes] = collections.deque()
    pump = threading.Thread(target=_pump, args=(popen.stdout.fileno(), log_path, echo, tail), daemon=True)
    pump.start()
    reason = None
    peak = 0.0
    try:
        proc = psutil.Process(popen.pid)
        while popen.poll() is None:
            elapsed = time.perf_counter() - start
            rss = _tree_rss_mb(proc)
            peak = max(peak, rss)
            if supervisor is not None and supervisor.stop.is_set():
                reason = "interrupted"
            elif elapsed > time_limit_s:
                reason = "timeout"
            elif memory_limit_mb is not None and rss > memory_limit_mb:
                reason = "memory"
            if reason:
                _kill_tree(popen)
                popen.wait()
                break
            if supervisor is not None:
                supervisor.stop.wait(POLL_S)
            else:
                time.sleep(POLL_S)
    except BaseException:
        _kill_tree(popen)
        popen.wait()
        raise
    finally:
        if supervisor is not None:
            supervisor.unregister(popen)
        pump.join(timeout=10)
        popen.stdout.close()
    text = b"".join(tail).decode("utf-8", "replace")
    return WorkerExit(popen.returncode, reason, time.perf_counter() - start, round(peak, 1), text)


def describe_exit(exit: WorkerExit, time_limit_s: float, memory_limit_mb: float | None) -> tuple[str, str]:
    """``(failure kind, message)`` for a worker that left no result.

    Kinds: ``timeout`` and ``memory`` (the runner's limits), ``interrupted`` (the runner's own stop),
    ``killed`` (a signal the runner did not send: a user's kill, the system's out-of-memory killer),
    ``io`` (the worker could not write its files) and ``crash``. Plain ``--resume`` runs ``interrupted``
    and ``killed`` jobs again: they are not the pipeline's failure.
    """
    if exit.reason == "interrupted":
        return "interrupted", "ended by the run's interrupt before it finished"
    if exit.reason == "timeout":
        return "timeout", f"timed out: still running after the {time_limit_s:.0f} s limit (killed)"
    if exit.reason == "memory":
        return "memory", (f"out of memory: resident memory reached {exit.peak_tree_rss_mb:.0f} MB, over the "
                          f"{memory_limit_mb:.0f} MB limit (killed)")
    code = exit.returncode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (the system's out-of-memory killer?)" if -code == signal.SIGKILL else ""
        return "killed", (f"worker killed by signal {name}{hint}, not sent by the runner; "
                          f"--resume runs it again")
    if code == WORKER_IO_EXIT:
        said = [ln[len(WORKER_IO_MARKER):] for ln in exit.output_tail.splitlines() if ln.startswith(WORKER_IO_MARKER)]
        if said:
            return "io", f"worker could not write its files: {said[-1]}"
    return "crash", f"worker exited with status {code} without writing a result"


def run_job_dir(job: Any, echo: bool = False, supervisor: Supervisor | None = None) -> dict[str, Any]:
    """Run one job (a :class:`benchsuite.runner.jobs.JobSpec`) in its own worker process, in ``job.job_dir``,
    and return its result: the worker's ``result.json``, or, when the worker left none, a failed result that
    says why (:func:`describe_exit`). Every executor runs a job through this one function (the local one in the
    runner's process, the Ray one on a cluster node), so isolation and limits are the same everywhere.

    The job's files land in ``job.job_dir``: ``job.json``, ``log.txt`` (appended to), ``result.json`` and
    whatever the task saves (predictions). ``wall_s`` (seconds, the worker's whole life) and
    ``memory.peak_tree_rss_mb`` (MB, the worker's process tree) are added to the result.
    """
    from datetime import datetime, timezone

    job_dir = Path(job.job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    for stale in job_dir.glob("result.json"):
        stale.unlink()
    job.write()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    exit = run_worker(job.path, job_dir / "log.txt", job.num_threads, job.time_limit_s,
                      job.memory_limit_mb, echo=echo, supervisor=supervisor)
    result = read_result(job_dir / "result.json")
    if result is None:
        failure, error = describe_exit(exit, job.time_limit_s, job.memory_limit_mb)
        tail = log_tail(job_dir / "log.txt") or tail_lines(exit.output_tail)
        result = {"status": "failed", "failure": failure, "error": error, "log_tail": tail,
                  "started_at": started,
                  "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    result.setdefault("memory", {})["peak_tree_rss_mb"] = exit.peak_tree_rss_mb
    result["wall_s"] = round(exit.seconds, 3)
    return result


def read_result(path: Path) -> dict[str, Any] | None:
    """A worker's ``result.json``, or None when it is missing, unreadable or not a JSON object."""
    import json

    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def tail_lines(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-blank lines of ``text`` (carriage returns of progress bars as line ends)."""
    return "\n".join([ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()][-lines:])


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` non-blank lines of the file at ``path`` ("" when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return tail_lines(text, lines)


def local_executor_info() -> dict[str, Any]:
    """run.json's and each record's ``executor`` for the local executor: this machine (its CPU, cores and GPU
    are in run.json's ``machine``)."""
    import socket

    return {"name": "local", "node": socket.gethostname()}
