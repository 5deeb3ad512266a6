"""Which job reads which other job's output, and the one order that runs producers before their consumers.

A pipeline declares the pipelines whose output it consumes (:attr:`benchsuite.api.Pipeline.consumes`: ``rcnn``
and ``ss-hog-svm`` read ``selective-search``'s proposals from the proposal cache). The planner turns that into:

- :func:`check_consumed`: every consumed id is a registered pipeline, and no chain of consumers loops back
  (a :class:`benchsuite.errors.ConfigError` naming the loop), before any job starts;
- :func:`producer_jobs`: for a job, the job of each pipeline it consumes on the same data set (the lowest
  seed's, when several), or None when the run has none: the consumer then computes what it needs itself;
- :func:`order_jobs`: the plan's jobs in their order, except that a producer comes before its consumers (a
  stable topological sort). Both executors use it and :func:`prerequisites`: the local one runs the jobs in this
  order and, with ``--jobs N``, starts a consumer only once its producers have finished; the Ray one submits a
  consumer once its producers are done.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from benchsuite.errors import ConfigError


class _Job(Protocol):
    job_id: str
    pipeline: str
    dataset: str
    seed: int
    consumes: dict[str, str | None]


J = TypeVar("J", bound=_Job)


def check_consumed(consumes: Mapping[str, Sequence[str]], registered: Collection[str]) -> None:
    """Refuse a run whose pipelines (``consumes``: pipeline id -> the ids it consumes) consume an unknown
    pipeline (not in ``registered``) or consume each other in a loop."""
    for pid, wanted in consumes.items():
        unknown = [c for c in wanted if c not in registered]
        if unknown:
            raise ConfigError(f"pipeline {pid} consumes the output of {', '.join(map(repr, unknown))}, which is "
                              f"not a registered pipeline (fix its class's `consumes`; `benchsuite list` shows "
                              f"the registered ones)")
    loop = find_cycle(consumes)
    if loop:
        raise ConfigError(f"pipelines consume each other's output in a loop ({' -> '.join(loop)}): no order "
                          f"runs each producer first; remove one of these `consumes` entries")


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A loop of ``edges`` (node -> the nodes it depends on) as ``[a, b, ..., a]``, or ``[]`` when there is
    none. Depth-first, in the mapping's order, so the loop named is the same every time."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def producer_jobs(consumer: Any, consumes: Sequence[str], jobs: Iterable[Any]) -> dict[str, str | None]:
    """``{consumed pipeline id: job id}``: for each pipeline ``consumer`` (a job) consumes, the job of that
    pipeline on the same data set with the lowest seed among ``jobs`` (the run's jobs), or None."""
    best: dict[str, Any] = {}
    for job in jobs:
        if job.pipeline in consumes and job.dataset == consumer.dataset:
            known = best.get(job.pipeline)
            if known is None or job.seed < known.seed:
                best[job.pipeline] = job
    return {pid: (best[pid].job_id if pid in best else None) for pid in consumes}


def prerequisites(jobs: Sequence[J]) -> dict[str, list[str]]:
    """``{job id: [producer job ids]}`` for the jobs of ``jobs`` that wait for another job of ``jobs`` (a
    producer outside ``jobs``, such as one recorded by an earlier session, is not waited for)."""
    ids = {j.job_id for j in jobs}
    out: dict[str, list[str]] = {}
    for job in jobs:
        wait = sorted({p for p in job.consumes.values() if p is not None and p in ids and p != job.job_id})
        if wait:
            out[job.job_id] = wait
    return out


def order_jobs(jobs: Sequence[J]) -> list[J]:
    """``jobs`` in their order, except that each job comes after the jobs it waits for (:func:`prerequisites`):
    Kahn's topological sort that always takes the earliest ready job. A loop (which :func:`check_consumed`
    refuses when planning) is a ConfigError."""
    after = prerequisites(jobs)
    index = {j.job_id: i for i, j in enumerate(jobs)}
    waiting = {job_id: len(producers) for job_id, producers in after.items()}
    consumers: dict[str, list[str]] = {}
    for job_id, producers in after.items():
        for p in producers:
            consumers.setdefault(p, []).append(job_id)
    ready = [i for i, j in enumerate(jobs) if j.job_id not in waiting]
    heapq.heapify(ready)
    ordered: list[J] = []
    while ready:
        job = jobs[heapq.heappop(ready)]
        ordered.append(job)
        for c in consumers.get(job.job_id, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, index[c])
    if len(ordered) != len(jobs):
        placed = {j.job_id for j in ordered}
        stuck = {j.job_id: after.get(j.job_id, []) for j in jobs if j.job_id not in placed}
        raise ConfigError(f"jobs wait for each other in a loop ({' -> '.join(find_cycle(stuck))})")
    return ordered
