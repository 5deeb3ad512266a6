"""What a worker process does before it runs its job: die with its runner, and set up libraries lazily.

A worker must never outlive the run that started it (:func:`die_with_parent`), and its start-up footprint
should be the job's own: torch alone is about 500 MB resident, so it is configured (threads, seed) when
something imports it (:func:`when_imported`), not imported to be configured.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import importlib.machinery
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
RUNNER_PID_ENV = "BENCHSUITE_RUNNER_PID"


def die_with_parent(expected_parent: int | None = None, poll_s: float = 1.0) -> str:
    """Make the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``), and start a
    watchdog thread that kills this process group when the parent pid changes (other systems, and the
    children of this process). Exits at once when the parent is already gone. Returns what was set up."""
    if expected_parent is None:
        env = os.environ.get(RUNNER_PID_ENV, "")
        expected_parent = int(env) if env.isdigit() else None
    how = []
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                how.append("pdeathsig")
        except (OSError, AttributeError):
            pass
    if expected_parent is not None:
        if os.getppid() != expected_parent:  # the runner died before the signal was armed
            os._exit(1)
        threading.Thread(target=_watch_parent, args=(expected_parent, poll_s), daemon=True,
                         name="parent-watchdog").start()
        how.append("watchdog")
    return "+".join(how) or "none"


def _watch_parent(parent: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    try:
        from benchsuite.runner import proctree

        proctree.kill_tree(os.getpid(), include_root=False)  # every descendant, in this group or not
        os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os._exit(1)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs callbacks right after a named top-level module finishes importing."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[[ModuleType], Any]]] = {}
        self._busy: set[str] = set()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.callbacks or name in self._busy:
            return None
        self._busy.add(name)
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            for finder in sys.meta_path:
                if spec is not None:
                    break
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
        finally:
            self._busy.discard(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        callbacks = self.callbacks.pop(name)

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                for callback in callbacks:
                    try:
                        callback(module)
                    except Exception:  # a set-up step must never break the import
                        log.debug("after-import set-up of %s failed", name, exc_info=True)

        spec.loader = _Loader()
        return spec


_HOOK = _AfterImport()


def when_imported(name: str, callback: Callable[[ModuleType], Any]) -> None:
    """Call ``callback(module)`` now if top-level module ``name`` is already imported, else right after
    it is first imported (without importing it here)."""
    module = sys.modules.get(name)
    if module is not None:
        try:
            callback(module)
        except Exception:
            log.debug("set-up of %s failed", name, exc_info=True)
        return
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
    _HOOK.callbacks.setdefault(name, []).append(callback)
