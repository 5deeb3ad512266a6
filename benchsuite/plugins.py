"""The one registry helper: a group of entry points (pipelines, tasks, data-set formats), read once per ``sys.path``.

Pipelines (``benchsuite.pipelines``), tasks (``benchsuite.tasks``) and data-set formats (``benchsuite.datasets``)
are found the same way: through an entry-point group that the suite's own ``pyproject.toml`` fills exactly as a
third-party distribution does. A :class:`PluginGroup` reads its group, loads each entry (``module:attr``) and asks
the group's ``check`` what the entry stands for; an entry that fails to import or to pass ``check`` is kept as a
broken :class:`Plugin` with its problem (listed by ``benchsuite list``, never fatal to the others). Lookups fail
with one line, worded the same for every group::

    unknown task 'segmentation'; known tasks: classification, detection, proposals
    pipeline 'test-broken' (plugin_pipelines:NotAPipeline, from benchsuite-test-plugins) cannot be used: ...

Names are restricted (:data:`NAME_PATTERN`: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or a
digit, at most 64 characters), since they become parts of job ids, file names and reports: an entry with another
name is listed as broken with that reason. A name registered by two distributions is never resolved silently:
the suite's own entry (distribution ``benchsuite``) keeps its name and a plugin's claim on it is refused (listed by
``benchsuite list``), unless the user asks for the plugin with ``BENCHSUITE_OVERRIDE=name`` (or ``name=DISTRIBUTION``
to choose between two plugins; several separated by commas); two plugins claiming one name are both refused without
it.

This module imports nothing of the suite but :mod:`benchsuite.errors`: every layer may build a group on it.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from benchsuite.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


#: what a plugin's name (a pipeline id, a task name, a data-set format's prefix) may be
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: the distribution of the suite's own (built-in) entries
BUILTIN_DISTRIBUTION = "benchsuite"
#: the environment variable that lets a plugin replace a built-in entry (or chooses between two plugins):
#: ``name`` or ``name=distribution``, several separated by commas
OVERRIDE_ENV = "BENCHSUITE_OVERRIDE"


def name_problem(name: object, noun: str = "plugin") -> str | None:
    """Why ``name`` cannot be a plugin's name (None when it can): see :data:`NAME_PATTERN`."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return None
    shown = repr(name[:60]) + ("..." if len(name) > 60 else "") if isinstance(name, str) else type(name).__name__
    return (f"{noun} name {shown} is not allowed: a name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            f"letter or a digit (it becomes part of job ids, file names and reports)")


def overrides_asked() -> dict[str, str]:
    """``BENCHSUITE_OVERRIDE`` as ``{name: distribution}`` (``""``: the one plugin that claims the name)."""
    out = {}
    for item in os.environ.get(OVERRIDE_ENV, "").split(","):
        name, _, dist = item.strip().partition("=")
        if name:
            out[name] = dist.strip()
    return out


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
        overrides: for a plugin that replaces a built-in entry on the user's request (``BENCHSUITE_OVERRIDE``), the
            built-in's ``ref``; "" otherwise.
    """

    name: str
    ref: str
    distribution: str
    obj: T | None = None
    error: str = ""
    overrides: str = ""

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
        self._refused: dict[tuple[str, ...], list[Plugin[T]]] = {}

    def __repr__(self) -> str:
        return f"PluginGroup({self.group!r})"

    def _entry(self, name: str, ref: str, distribution: str) -> Plugin[T]:
        problem = name_problem(name, self.noun)
        if problem:
            return Plugin(name, ref, distribution, error=problem)
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

        Read once per ``sys.path`` and ``BENCHSUITE_OVERRIDE`` (installing a distribution into the running process
        changes the path); ``refresh`` reads the group again. A name registered by two distributions follows the
        module docstring's rule (:meth:`refused` lists the claims that lost); one distribution that registers a
        name twice (stale metadata) keeps its first entry, with a warning.
        """
        key = (*sys.path, "\0override", os.environ.get(OVERRIDE_ENV, ""))
        if not refresh and key in self._cache:
            return self._cache[key]
        claims: dict[str, list[tuple[str, str]]] = {}
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "?"
            mine = claims.setdefault(ep.name, [])
            same_dist = [ref for ref, d in mine if d == dist]
            if same_dist:
                if ep.value not in same_dist:
                    log.warning("%s %r is registered twice in %s by %s (%s and %s); keeping the first", self.noun,
                                ep.name, self.group, dist, same_dist[0], ep.value)
                continue
            mine.append((ep.value, dist))
        found: dict[str, Plugin[T]] = {}
        refused: list[Plugin[T]] = []
        asked = overrides_asked()
        for name, entries in claims.items():
            chosen, lost, problem = self._choose(name, entries, asked)
            if problem:
                found[name] = Plugin(name, entries[0][0], entries[0][1], error=problem)
            else:
                ref, dist = chosen
                builtin = next((r for r, d in entries if d == BUILTIN_DISTRIBUTION and r != ref), "")
                entry = self._entry(name, ref, dist)
                found[name] = Plugin(entry.name, entry.ref, entry.distribution, entry.obj, entry.error, builtin)
            refused += lost
        order = self._order or (lambda p: p.name)
        working = sorted((p for p in found.values() if p.ok), key=order)
        broken = sorted((p for p in found.values() if not p.ok), key=lambda p: p.name)
        out = {p.name: p for p in [*working, *broken]}
        self._cache[key] = out
        self._refused[key] = refused
        for p in refused:
            log.warning("%s", p.error)
        return out

    def entry(self, name: str) -> Plugin[T] | None:
        """The entry registered under ``name`` (None when there is none), loading that entry only when one
        distribution registers it: the quick way to one plugin (``benchsuite check ID``) without importing every
        other one. A name claimed more than once is resolved as :meth:`discover` resolves it (built-in first,
        ``BENCHSUITE_OVERRIDE``)."""
        key = (*sys.path, "\0override", os.environ.get(OVERRIDE_ENV, ""))
        if key in self._cache:
            return self._cache[key].get(name)
        claims = [ep for ep in entry_points(group=self.group, name=name)]
        if len({(ep.value, ep.dist.name if ep.dist is not None else "?") for ep in claims}) > 1:
            return self.discover().get(name)
        for ep in claims:
            entry = self._entry(ep.name, ep.value, ep.dist.name if ep.dist is not None else "?")
            return entry
        return None

    def registered_names(self) -> list[str]:
        """The names registered in the group, in order, without loading any entry."""
        return sorted({ep.name for ep in entry_points(group=self.group)})

    def _choose(self, name: str, entries: list[tuple[str, str]], asked: dict[str, str]
                ) -> tuple[tuple[str, str], list[Plugin[T]], str]:
        """Which of the ``(ref, distribution)`` entries registered under ``name`` stands for it: ``(chosen, the
        refused claims, "")``, or ``(_, [], problem)`` when none may (two plugins and no choice)."""
        if len(entries) == 1:
            return entries[0], [], ""
        listed = ", ".join(f"{ref} from {dist}" for ref, dist in entries)
        builtin = [e for e in entries if e[1] == BUILTIN_DISTRIBUTION]
        plugins = [e for e in entries if e[1] != BUILTIN_DISTRIBUTION]
        if name in asked:
            wanted = asked[name]
            picked = [e for e in plugins if not wanted or e[1] == wanted]
            if len(picked) == 1:
                lost = [Plugin(name, ref, dist, error=f"{self.noun} {name!r} ({ref}, from {dist}) is not used: "
                               f"{OVERRIDE_ENV} chose {picked[0][0]} from {picked[0][1]}")
                        for ref, dist in entries if (ref, dist) != picked[0]]
                return picked[0], lost, ""
            return entries[0], [], (f"{self.noun} {name!r} is registered by {listed}; {OVERRIDE_ENV}={name}"
                                    f"{'=' + wanted if wanted else ''} matches {len(picked)} of them: name one "
                                    f"distribution ({OVERRIDE_ENV}={name}=DISTRIBUTION)")
        if builtin:
            lost = [Plugin(name, ref, dist, error=f"{self.noun} {name!r} ({ref}, from {dist}) claims the built-in "
                           f"{self.noun} {name!r} ({builtin[0][0]}) and is refused; the built-in is used. To run the "
                           f"plugin instead, ask for it: {OVERRIDE_ENV}={name}")
                    for ref, dist in plugins]
            return builtin[0], lost, ""
        return entries[0], [], (f"{self.noun} {name!r} is registered by {listed}: ambiguous, neither is used; "
                                f"uninstall one or choose with {OVERRIDE_ENV}={name}=DISTRIBUTION")

    def refused(self) -> list[Plugin[T]]:
        """The entries whose claim on a name lost (a plugin claiming a built-in's name, unasked), with why."""
        self.discover()
        key = (*sys.path, "\0override", os.environ.get(OVERRIDE_ENV, ""))
        return list(self._refused.get(key, []))

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
