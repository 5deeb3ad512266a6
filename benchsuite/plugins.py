"""The one registry helper: a group of entry points (pipelines, tasks, data-set formats), read once per ``sys.path``.

Pipelines (``benchsuite.pipelines``), tasks (``benchsuite.tasks``) and data-set formats (``benchsuite.datasets``)
are found the same way: through an entry-point group that the suite's own ``pyproject.toml`` fills exactly as a
third-party distribution does. A :class:`PluginGroup` reads its group, loads each entry (``module:attr``) and asks
the group's ``check`` what the entry stands for; an entry that fails to import or to pass ``check`` is kept as a
broken :class:`Plugin` with its problem (listed by ``benchsuite list``, never fatal to the others). Lookups fail
with one line, worded the same for every group::

    unknown task 'segmentation'; known tasks: classification, detection, proposals
    pipeline 'test-broken' (plugin_pipelines:NotAPipeline, from benchsuite-test-plugins) cannot be used: ...

This module imports nothing of the suite but :mod:`benchsuite.errors`: every layer may build a group on it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from benchsuite.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


class PluginProblem(Exception):
    """Raised by a group's ``check``: the entry does not stand for what the group holds (the message says why)."""


def load_ref(ref: str) -> Any:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object."""
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Plugin(Generic[T]):
    """One entry of a group: its name, where it lives, what ``check`` made of it (None when broken) or its problem.

    Attributes:
        name: the entry point's name (a pipeline's id, a task's name, a format's spec prefix).
        ref: ``"module:attr"``, importable in a worker process.
        distribution: the installed distribution that registered it.
        obj: what the group's ``check`` returned for the loaded object; None when the entry is broken.
        error: why the entry cannot be used ("" when it can).
    """

    name: str
    ref: str
    distribution: str
    obj: T | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class PluginGroup(Generic[T]):
    """The entries of one entry-point group.

    Args:
        group: the entry-point group (``"benchsuite.tasks"``).
        noun: what one entry is, for messages (``"task"``, ``"pipeline"``, ``"data set"``).
        check: ``check(name, loaded_object) -> T``: what the entry stands for; raises :class:`PluginProblem`
            (or any exception) naming what is wrong with it.
        order: sort key of the working entries (default: by name); broken entries come last.
    """

    def __init__(self, group: str, noun: str, check: Callable[[str, Any], T],
                 order: Callable[[Plugin[T]], Any] | None = None):
        self.group = group
        self.noun = noun
        self._check = check
        self._order = order
        self._cache: dict[tuple[str, ...], dict[str, Plugin[T]]] = {}

    def __repr__(self) -> str:
        return f"PluginGroup({self.group!r})"

    def _entry(self, name: str, ref: str, distribution: str) -> Plugin[T]:
        try:
            loaded = load_ref(ref)
        except Exception as exc:  # a broken plugin is reported, not fatal
            return Plugin(name, ref, distribution, error=f"cannot import {ref}: {type(exc).__name__}: {exc}")
        try:
            return Plugin(name, ref, distribution, self._check(name, loaded))
        except PluginProblem as exc:
            return Plugin(name, ref, distribution, error=str(exc))
        except Exception as exc:
            return Plugin(name, ref, distribution, error=f"cannot load {ref}: {type(exc).__name__}: {exc}")

    def discover(self, refresh: bool = False) -> dict[str, Plugin[T]]:
        """Every entry of the group by name, broken ones included (``error`` set), working ones first.

        Read once per ``sys.path`` (installing a distribution into the running process changes it); ``refresh``
        reads the group again. A name registered twice keeps its first entry, with a warning.
        """
        key = tuple(sys.path)
        if not refresh and key in self._cache:
            return self._cache[key]
        found: dict[str, Plugin[T]] = {}
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "?"
            if ep.name in found:
                if found[ep.name].ref != ep.value:
                    log.warning("%s %r is registered twice in %s (%s and %s); keeping the first", self.noun, ep.name,
                                self.group, found[ep.name].ref, ep.value)
                continue
            found[ep.name] = self._entry(ep.name, ep.value, dist)
        order = self._order or (lambda p: p.name)
        working = sorted((p for p in found.values() if p.ok), key=order)
        broken = sorted((p for p in found.values() if not p.ok), key=lambda p: p.name)
        out = {p.name: p for p in [*working, *broken]}
        self._cache[key] = out
        return out

    def entry(self, name: str) -> Plugin[T] | None:
        """The entry registered under ``name`` (None when there is none), loading that entry only: the quick way to
        one plugin (``benchsuite check ID``) without importing every other one. The first registration wins, as in
        :meth:`discover`."""
        key = tuple(sys.path)
        if key in self._cache:
            return self._cache[key].get(name)
        for ep in entry_points(group=self.group, name=name):
            return self._entry(ep.name, ep.value, ep.dist.name if ep.dist is not None else "?")
        return None

    def registered_names(self) -> list[str]:
        """The names registered in the group, in order, without loading any entry."""
        return sorted({ep.name for ep in entry_points(group=self.group)})

    def entries(self, include_broken: bool = False) -> list[Plugin[T]]:
        """The entries in order (working ones only unless ``include_broken``)."""
        return [p for p in self.discover().values() if include_broken or p.ok]

    def names(self) -> tuple[str, ...]:
        """The names of the working entries, in order."""
        return tuple(p.name for p in self.entries())

    def find(self, name: str) -> T | None:
        """What ``name`` stands for, or None (unknown or broken)."""
        entry = self.discover().get(name)
        return entry.obj if entry is not None and entry.ok else None

    def get(self, name: str) -> T:
        """What ``name`` stands for; an unknown or broken entry is a :class:`~benchsuite.errors.ConfigError`."""
        entry = self.discover().get(name)
        if entry is None:
            raise self.unknown(name)
        if not entry.ok:
            raise self.unusable(entry)
        return entry.obj  # type: ignore[return-value]

    def unknown(self, name: str, known: list[str] | None = None) -> ConfigError:
        """The error for a name the group does not hold: ``unknown task 'x'; known tasks: a, b``."""
        shown = ", ".join(known if known is not None else self.names())
        if not shown:  # not even the suite's own: metadata installed before the group existed
            return ConfigError(f"unknown {self.noun} {name!r}: no {self.noun} is registered in the entry-point group "
                               f"{self.group} (if benchsuite is installed in editable mode from an older version, "
                               f"install it again: pip install -e .)")
        return ConfigError(f"unknown {self.noun} {name!r}; known {self.noun}s: {shown}")

    def unusable(self, entry: Plugin[T]) -> ConfigError:
        """The error for a broken entry: ``task 'x' (mod:Cls, from dist) cannot be used: why``."""
        return ConfigError(f"{self.noun} {entry.name!r} ({entry.ref}, from {entry.distribution}) cannot be used: "
                           f"{entry.error}")


def near_miss_groups(group: str, threshold: float = 0.8) -> list[tuple[str, str, list[str]]]:
    """Entry-point groups of installed distributions whose name is close to ``group`` but not it (a typo such as
    ``benchsuite.pipeline`` or ``benchsuite_pipelines``): ``(group, distribution, ["name = module:attr", ...])``.

    Reads the installed metadata only; nothing is imported. Closeness is difflib's ratio of the names with
    everything but letters removed (``benchsuite.tasks`` is 0.65 from ``benchsuite.pipelines``, a dropped letter
    0.97).
    """
    import difflib
    import re
    from importlib.metadata import distributions

    def letters(name: str) -> str:
        return re.sub(r"[^a-z]", "", name.lower())

    target = letters(group)
    found: dict[tuple[str, str], list[str]] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group != group and difflib.SequenceMatcher(None, letters(ep.group), target).ratio() >= threshold:
                found.setdefault((ep.group, dist.metadata["Name"] or "?"), []).append(f"{ep.name} = {ep.value}")
    return [(g, d, sorted(set(names))) for (g, d), names in sorted(found.items())]
