"""What a job took from other pipelines' outputs in the shared cache, and what it computed itself.

A pipeline that consumes another one's output (:attr:`benchsuite.api.Pipeline.consumes`: ``rcnn`` and
``ss-hog-svm`` classify ``selective-search`` proposals) reads it through a cache that the producer's job fills
(:mod:`benchsuite.proposal_cache`). Whether an image's output was in the cache changes the consumer's fit and
detection seconds, so the cache tells this ledger, per producer pipeline id, which images it served and which
the job computed, and how long each took. The worker process runs one job, so the ledger is per process; the
worker copies :func:`snapshot` into the job's result, and the runner into the record's ``consumed`` block.

An output counts once (an image's, for one set of the producer's parameters): ``cached_images`` are the
distinct outputs served from the cache that this job did not compute itself (another job or an earlier run
did), ``computed_images`` those it computed. ``read_s`` is every
lookup (keys, reads, misses included) and ``compute_s`` the producing and storing of what was missing, in wall
seconds, wherever in the job they happened (``fit`` and detection alike).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Use:
    read: set[str] = field(default_factory=set)
    computed: set[str] = field(default_factory=set)
    read_s: float = 0.0
    compute_s: float = 0.0


_LEDGER: dict[str, _Use] = {}


def note_read(producer: str, keys: Iterable[str], seconds: float) -> None:
    """``producer``'s outputs ``keys`` (one per image and set of the producer's parameters) were served from
    the cache; the lookup of this batch (hits and misses) took ``seconds``."""
    use = _LEDGER.setdefault(producer, _Use())
    use.read.update(keys)
    use.read_s += float(seconds)


def note_computed(producer: str, keys: Iterable[str], seconds: float) -> None:
    """This process computed (and stored) ``producer``'s outputs ``keys`` in ``seconds``."""
    use = _LEDGER.setdefault(producer, _Use())
    use.computed.update(keys)
    use.compute_s += float(seconds)


def snapshot() -> dict[str, dict[str, Any]]:
    """``{producer id: {"cached_images", "computed_images", "read_s", "compute_s"}}`` so far (seconds rounded
    to 0.1 ms)."""
    return {producer: {"cached_images": len(use.read - use.computed), "computed_images": len(use.computed),
                       "read_s": round(use.read_s, 4), "compute_s": round(use.compute_s, 4)}
            for producer, use in sorted(_LEDGER.items())}


def reset() -> None:
    """Forget what was noted (a new job in this process)."""
    _LEDGER.clear()


@contextlib.contextmanager
def apart() -> Iterator[dict[str, dict[str, Any]]]:
    """Note what happens meanwhile in a ledger of its own, and leave the job's ledger as it was.

    Yields a dict that holds, on leaving, the :func:`snapshot` of what was noted meanwhile. For work a job
    does on behalf of others (a producer filling the cache for its consumers,
    :func:`benchsuite.proposal_cache.produce_for_consumers`), which is not what the job itself consumed.
    """
    saved = dict(_LEDGER)
    _LEDGER.clear()
    out: dict[str, dict[str, Any]] = {}
    try:
        yield out
    finally:
        out.update(snapshot())
        _LEDGER.clear()
        _LEDGER.update(saved)


def consumed_block(declared: dict[str, str | None], used: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A record's ``consumed`` block: for each producer the job's pipeline declares (``declared``: producer id ->
    the run's job of it on the same data set that finished first, None when the run had none) and each
    producer whose outputs it read undeclared, the ``used`` counts (zeros when it read none), ``producer_job``
    and ``declared``."""
    zero = {"cached_images": 0, "computed_images": 0, "read_s": 0.0, "compute_s": 0.0}
    out = {}
    for producer in sorted(set(declared) | set(used)):
        out[producer] = {**zero, **used.get(producer, {}), "producer_job": declared.get(producer),
                         "declared": producer in declared}
    return out
