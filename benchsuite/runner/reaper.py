"""The run's reaper: a tiny process that ends the run's workers when the runner dies, however it dies.

Started by the runner as ``python -I reaper.py RUNNER_PID`` in its own session, with a pipe on stdin. The
runner writes ``+PGID`` when a worker starts (each worker leads its own process group) and ``-PGID`` when it
has ended. When the pipe reaches end of file (the runner exited or was killed, even by SIGKILL) or the
runner's pid is gone, the reaper ends every registered worker with its whole process tree, then every process
that still carries the runner's marker in its environment (``BENCHSUITE_RUNNER_PID``: a job's processes that a
dying worker left to ``init``), and exits. The workers also ask the kernel for a parent-death signal
(``PR_SET_PDEATHSIG``); the reaper covers their own children and the moments before a worker has set that up.

This file imports nothing from benchsuite (it loads :mod:`benchsuite.runner.proctree`, which imports only the
standard library, by path), so the reaper costs a few megabytes.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

POLL_S = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proctree():
    """benchsuite.runner.proctree, loaded from the file beside this one (``python -I`` puts no folder on sys.path)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_benchsuite_proctree", Path(__file__).with_name("proctree.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kill_groups(groups: set[int], runner_pid: int | None = None) -> None:
    try:
        tree = _proctree()
    except Exception:  # never fail to kill: the groups at least
        tree = None
    for pgid in groups:
        if tree is not None:
            owner = tree.environ_of(pgid).get(tree.RUNNER_ENV)
            if owner is not None and runner_pid is not None and owner != str(runner_pid):
                continue  # the pid was reused by a process of another run
            with contextlib.suppress(Exception):
                tree.kill_tree(pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if tree is not None and runner_pid is not None:
        with contextlib.suppress(Exception):
            tree.kill_marked(runner_pid)


def serve(runner_pid: int, stream: int = 0) -> None:
    """Track process groups announced on ``stream`` until the runner is gone, then kill them."""
    groups: set[int] = set()
    buffer = b""
    while True:
        ready, _, _ = select.select([stream], [], [], POLL_S)
        if ready:
            chunk = os.read(stream, 4096)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode("ascii", "replace").strip()
                if text[:1] in "+-" and text[1:].isdigit():
                    (groups.add if text[0] == "+" else groups.discard)(int(text[1:]))
        elif not _alive(runner_pid) or os.getppid() != runner_pid:
            break
    _kill_groups(groups, runner_pid)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the runner, which tells us by closing
    serve(int(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
