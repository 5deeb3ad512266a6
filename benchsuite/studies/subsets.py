"""Nested, stratified subsets of a training split: every smaller subset inside every larger one, per seed.

One random order of the split serves every size: a subset of ``n`` images is the first ``n`` of the order. The
order interleaves the classes so that every prefix holds each class in proportion to its size, within one image:
each class's members are shuffled, member ``r`` of a class of ``c`` gets the key ``(r + u) / c`` (``u`` one
uniform offset per class, so that classes of equal size do not always come in the same order), and the split is
sorted by key. A prefix of ``n`` then takes ``floor`` or ``ceil`` of ``n * c / N`` from each class. Because every
size is a prefix of the one order, the subsets are nested, which a per-size stratified draw (largest-remainder
quotas redrawn for each size) does not guarantee.
"""

from __future__ import annotations

import numpy as np

#: mixed into the seed so that a study's subsets do not follow any other seeded choice of the suite
SUBSET_STREAM = 0x5EB5E7


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """``(N,)`` int64 positions of ``labels`` (one stratum label per image) in the nested order for ``seed``."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng([SUBSET_STREAM, int(seed)])
    classes, inverse = np.unique(labels, return_inverse=True)
    keys = np.empty(len(labels), np.float64)
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        shuffled = rng.permutation(members)
        keys[shuffled] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.argsort(keys, kind="stable").astype(np.int64)


def subset_size(total: int, value: float | int) -> int:
    """Images in a subset of a split of ``total``: a fraction in (0, 1] (rounded, at least 1) or a count (at most
    ``total``)."""
    if isinstance(value, float):
        return max(1, min(total, round(value * total)))
    return max(1, min(total, int(value)))


def nested_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of the first ``size`` images of :func:`nested_order` (a stratified subset of ``size``)."""
    return np.sort(nested_order(labels, seed)[: max(0, int(size))])
