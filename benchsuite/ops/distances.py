"""Exact L1 (sum of absolute differences) distances and k-nearest neighbours on uint8 vectors.

On the CPU the kernel is compiled by numba: uint8 ``max - min`` per byte accumulated in uint32, which
LLVM turns into ``psadbw``/``vpsadbw`` (sum of absolute differences of 8/64 bytes per instruction),
tiled so that a block of reference rows stays in L2 while a block of queries runs over it, and run in
parallel over query blocks. On a 2-core Zen 4 it does about 50e9 byte differences per second, so the
10,000 x 50,000 CIFAR-10 distance matrix (1.5e12 byte differences) takes about half a minute.

On CUDA the same distances come from ``torch.cdist(p=1)`` in float32, which is exact here because every
distance is an integer below 2**24 (at most 3072 * 255).

Neighbours are ordered by (distance, reference index), so ties resolve the same way on every device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numba import njit, prange

QUERY_CHUNK = 1024  # queries per distance matrix held in memory (x references x 4 bytes)
QUERY_BLOCK = 128  # queries per parallel task
REF_BLOCK = 256  # reference rows kept hot in cache (256 x 3072 bytes = 768 KiB)


@njit(parallel=True, cache=True, boundscheck=False, nogil=True)
def _l1_tiled(queries: np.ndarray, refs: np.ndarray, out: np.ndarray, qblock: int, rblock: int) -> None:
    nq, d = queries.shape
    nr = refs.shape[0]
    nblocks = (nq + qblock - 1) // qblock
    for qb in prange(nblocks):
        q0 = qb * qblock
        q1 = min(nq, q0 + qblock)
        for r0 in range(0, nr, rblock):
            r1 = min(nr, r0 + rblock)
            for i in range(q0, q1):
                a = queries[i]
                for j in range(r0, r1):
                    b = refs[j]
                    s = np.uint32(0)
                    for k in range(d):
                        x = a[k]
                        y = b[k]
                        s += np.uint32(np.uint8(max(x, y) - min(x, y)))
                    out[i, j] = s


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8, got {x.dtype}")
    return np.ascontiguousarray(x.reshape(len(x), -1))


def l1_distances(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """``(Q, R)`` uint32 L1 distances between uint8 rows (any trailing shape is flattened)."""
    q = _as_rows(queries, "queries")
    r = _as_rows(refs, "refs")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per row, refs {r.shape[1]}")
    out = np.empty((len(q), len(r)), np.uint32)
    if len(q) and len(r):
        _l1_tiled(q, r, out, QUERY_BLOCK, REF_BLOCK)
    return out


@njit(parallel=True, cache=True, boundscheck=False, nogil=True)
def _smallest_k_rows(dist: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    # one pass per row with a sorted buffer of k; scanning columns in order and inserting only before
    # strictly larger distances keeps equal distances in column order
    n, m = dist.shape
    for row in prange(n):
        bd = np.full(k, np.iinfo(np.int64).max, np.int64)
        bi = np.full(k, -1, np.int64)
        worst = bd[k - 1]
        for j in range(m):
            d = np.int64(dist[row, j])
            if d < worst:
                p = k - 1
                while p > 0 and bd[p - 1] > d:
                    bd[p] = bd[p - 1]
                    bi[p] = bi[p - 1]
                    p -= 1
                bd[p] = d
                bi[p] = j
                worst = bd[k - 1]
        out_d[row] = bd
        out_i[row] = bi


def _smallest_k(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest of each row by (distance, column), sorted ascending (k <= columns)."""
    out_d = np.empty((len(dist), k), np.int64)
    out_i = np.empty((len(dist), k), np.int64)
    _smallest_k_rows(dist, k, out_d, out_i)
    return out_d, out_i


def l1_knn(queries: np.ndarray, refs: np.ndarray, k: int, device: str = "cpu",
           progress: Callable[..., Iterable[Any]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest references of every query under L1.

    Returns ``(distances (Q, k) int64, indices (Q, k) int64)``, nearest first, ties by reference index.
    """
    q = _as_rows(queries, "queries")
    r = _as_rows(refs, "refs")
    k = min(k, len(r))
    if k < 1:
        raise ValueError("need at least one reference and k >= 1")
    dists = np.empty((len(q), k), np.int64)
    idx = np.empty((len(q), k), np.int64)
    starts = range(0, len(q), QUERY_CHUNK)
    wrap = progress or (lambda it, **_: it)
    if device.startswith("cuda"):
        return _knn_torch(q, r, k, device, wrap)
    for s in wrap(starts, desc="L1 neighbours", total=len(starts)):
        d, i = _smallest_k(l1_distances(q[s:s + QUERY_CHUNK], r), k)
        dists[s:s + QUERY_CHUNK], idx[s:s + QUERY_CHUNK] = d, i
    return dists, idx


def _knn_torch(q: np.ndarray, r: np.ndarray, k: int, device: str, wrap: Callable[..., Iterable[Any]]
               ) -> tuple[np.ndarray, np.ndarray]:
    import torch

    refs = torch.from_numpy(r).to(device).float()
    ref_index = torch.arange(len(r), device=device, dtype=torch.float64)
    out_d, out_i = [], []
    starts = range(0, len(q), QUERY_CHUNK)
    for s in wrap(starts, desc="L1 neighbours", total=len(starts)):
        qs = torch.from_numpy(q[s:s + QUERY_CHUNK]).to(device).float()
        d = torch.cdist(qs, refs, p=1).round().double()  # exact integers below 2**24
        key = d * len(r) + ref_index
        _, i = torch.topk(key, k, dim=1, largest=False, sorted=True)
        out_d.append(torch.gather(d, 1, i).long().cpu().numpy())
        out_i.append(i.cpu().numpy())
    return np.concatenate(out_d), np.concatenate(out_i)


def vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """Majority vote over the first ``k`` neighbours of each row (nearest first).

    A tie between classes goes to the tied class whose nearest member ranks first.
    """
    lab = neighbour_labels[:, :k]
    n = len(lab)
    counts = np.zeros((n, num_classes), np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), lab.shape[1]), lab.ravel()), 1)
    first = np.full((n, num_classes), k, np.int64)
    for rank in range(lab.shape[1] - 1, -1, -1):
        first[np.arange(n), lab[:, rank]] = rank
    return np.argmax(counts * (k + 1) - first, axis=1)
