"""Process trees, read from ``/proc``: the descendants of a process, ending a whole tree however it forked, and the
processes that carry a job's marker in their environment.

A job's processes must all end with the job, including children that started a session of their own (``setsid``)
and then lost their parent (a double fork). Three mechanisms, all here:

- the worker makes itself a *child subreaper* (:func:`become_subreaper`, Linux ``PR_SET_CHILD_SUBREAPER``): an
  orphan among its descendants is re-parented to the worker instead of to ``init``, so while the worker lives its
  tree holds every process the job started;
- :func:`kill_tree` ends a tree without races: it stops (``SIGSTOP``) the root and every descendant it finds,
  walking again until no new process appears (a stopped process cannot fork), then kills them all (``SIGKILL``);
- every process of a job inherits ``BENCHSUITE_JOB`` and ``BENCHSUITE_RUNNER_PID`` from its worker
  (:func:`marked`): when a worker dies before it could end its tree (a foreign SIGKILL), the runner, and the reaper
  when the runner itself dies, find the orphans by that marker and end them.

This module imports nothing but the standard library: the reaper loads it by path (it runs ``python -I``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
#: the environment variables that mark a job's processes: the job's id and the runner's pid
JOB_ENV = "BENCHSUITE_JOB"
RUNNER_ENV = "BENCHSUITE_RUNNER_PID"
_PROC = "/proc"


def become_subreaper(on: bool = True) -> bool:
    """Make this process a child subreaper (or stop being one); False where the system has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[int, str] | None:
    """``(parent pid, state letter)`` of ``pid`` from ``/proc/<pid>/stat``, or None when it is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # the command name may hold spaces and parentheses
    try:
        return int(fields[1]), fields[0].decode("ascii", "replace")
    except (IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return []


def children_map() -> dict[int, list[int]]:
    """Parent pid -> the pids of its children, for every process visible in ``/proc``."""
    out: dict[int, list[int]] = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None:
            out.setdefault(st[0], []).append(pid)
    return out


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every descendant of ``pid`` (children first, then theirs), from one reading of ``/proc``."""
    children = children_map() if children is None else children
    out: list[int] = []
    todo = list(children.get(pid, ()))
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen or p == pid:
            continue
        seen.add(p)
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def kill_tree(root: int, include_root: bool = True, extra: list[int] | None = None, rounds: int = 50) -> list[int]:
    """SIGKILL ``root`` (unless ``include_root`` is False) and every descendant, and the ``extra`` pids with
    theirs; returns the pids signalled.

    The tree is frozen first: every process found is sent SIGSTOP, and ``/proc`` is read again until no new
    descendant appears (at most ``rounds`` times), so a process that forks while it is being ended cannot leave a
    child behind. Stopped processes still die on SIGKILL. Also kills the process group ``root`` leads, if any.
    """
    me = os.getpid()
    frozen: set[int] = set()
    roots = ([root] if include_root else []) + list(extra or [])
    for pid in roots:
        if pid != me:
            _signal(pid, signal.SIGSTOP)
            frozen.add(pid)
    for _ in range(rounds):
        children = children_map()
        found = set(descendants(root, children))
        for pid in extra or []:
            found.update(descendants(pid, children))
        found.discard(me)
        new = found - frozen
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        frozen |= new
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    if include_root:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if os.getpgid(root) == root:
                os.killpg(root, signal.SIGKILL)
    return sorted(frozen)


def environ_of(pid: int) -> dict[str, str]:
    """The environment ``pid`` started with (``/proc/<pid>/environ``), empty when it cannot be read."""
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return {}
    out = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


def marked(runner_pid: int, job: str | None = None) -> list[int]:
    """The live processes whose environment names runner ``runner_pid`` (and job ``job``, when given): a run's
    job processes, wherever they were re-parented."""
    me = os.getpid()
    out = []
    for pid in _all_pids():
        if pid == me:
            continue
        env = environ_of(pid)
        if env.get(RUNNER_ENV) != str(runner_pid) or (job is not None and env.get(JOB_ENV) != job):
            continue
        if alive(pid):
            out.append(pid)
    return out


def kill_marked(runner_pid: int, job: str | None = None, keep: set[int] | None = None) -> list[int]:
    """End every process :func:`marked` finds (with its descendants), except those in ``keep`` (and their
    descendants' ancestors: a kept pid is never signalled); returns the pids signalled."""
    keep = keep or set()
    found = [p for p in marked(runner_pid, job) if p not in keep]
    if not found:
        return []
    children = children_map()
    skip = set(keep)
    for p in keep:
        skip.update(descendants(p, children))
    found = [p for p in found if p not in skip]
    if not found:
        return []
    return kill_tree(found[0], include_root=True, extra=found[1:])


def wait_gone(pids: list[int], timeout: float = 2.0) -> bool:
    """Wait until none of ``pids`` is alive (zombies count as gone); True when they are all gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return not any(alive(p) for p in pids)
