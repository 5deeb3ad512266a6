"""Fixed, seeded, stratified splits, written as manifests with a fingerprint.

A split is fixed by the data set's fingerprint and a seed that does not change between runs, so every
pipeline of every run tunes on the same validation images and is scored on the same test images. The
fingerprint of a split changes when, and only when, its member images change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchsuite.results.atomic import atomic_write_text

SPLIT_SEED = 20240607  # fixed for the life of the suite: changing it changes every split


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer per-class quotas proportional to ``counts`` that sum to ``total`` (largest remainder)."""
    if total > counts.sum():
        raise ValueError(f"cannot choose {total} items from {int(counts.sum())}")
    exact = counts * (total / counts.sum()) if counts.sum() else counts.astype(float)
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: total - quota.sum()]] += 1
    return np.minimum(quota, counts)


def stratified_choice(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted indices of ``count`` items chosen per class in proportion to the class sizes.

    Deterministic for a given ``labels``, ``count`` and ``seed``.
    """
    labels = np.asarray(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    quota = _allocate(counts, count)
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        chosen.append(rng.permutation(members)[: quota[k]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def fingerprint_indices(dataset_fingerprint: str, name: str, indices: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(dataset_fingerprint.encode())
    h.update(name.encode())
    h.update(np.asarray(indices, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class SplitManifest:
    """A train/val division of a data set's official training images.

    ``train`` and ``val`` are sorted indices into the official training set; the official test set
    is used whole. ``fingerprints`` maps each split name to its fingerprint.
    """

    dataset: str
    dataset_fingerprint: str
    seed: int
    train: np.ndarray
    val: np.ndarray
    test_count: int

    @property
    def fingerprints(self) -> dict[str, str]:
        return {
            "train": fingerprint_indices(self.dataset_fingerprint, "train", self.train),
            "val": fingerprint_indices(self.dataset_fingerprint, "val", self.val),
            "test": fingerprint_indices(self.dataset_fingerprint, "test", np.arange(self.test_count)),
        }

    @property
    def fingerprint(self) -> str:
        fp = self.fingerprints
        return hashlib.sha256("".join(fp[k] for k in sorted(fp)).encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(
            {
                "dataset": self.dataset,
                "dataset_fingerprint": self.dataset_fingerprint,
                "seed": self.seed,
                "counts": {"train": len(self.train), "val": len(self.val), "test": self.test_count},
                "fingerprint": self.fingerprint,
                "split_fingerprints": self.fingerprints,
                "train": self.train.tolist(),
                "val": self.val.tolist(),
            }
        )

    def write(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())


def make_train_val_split(
    dataset: str, dataset_fingerprint: str, labels: np.ndarray, val_count: int, test_count: int,
    seed: int = SPLIT_SEED,
) -> SplitManifest:
    """Choose ``val_count`` stratified validation images from the official training labels."""
    val = stratified_choice(labels, val_count, seed)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return SplitManifest(dataset, dataset_fingerprint, seed, train, val, test_count)
