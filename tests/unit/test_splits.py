"""The shared split: stratified, stable across calls, disjoint, and fingerprinted."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchsuite.data.splits import make_train_val_split, stratified_choice


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_cifar_sized_split_is_exactly_stratified():
    labels = np.random.default_rng(3).permutation(_labels([5000] * 10))
    m = make_train_val_split("cifar10", "fp", labels, 5000, 10000)
    assert len(m.train) == 45000 and len(m.val) == 5000
    np.testing.assert_array_equal(np.bincount(labels[m.val]), [500] * 10)
    assert np.intersect1d(m.train, m.val).size == 0
    np.testing.assert_array_equal(np.union1d(m.train, m.val), np.arange(50000))


def test_split_is_stable_and_fingerprint_tracks_membership():
    labels = _labels([30, 50, 20])
    a = make_train_val_split("d", "fp", labels, 10, 5)
    b = make_train_val_split("d", "fp", labels, 10, 5)
    np.testing.assert_array_equal(a.val, b.val)
    assert a.fingerprint == b.fingerprint
    c = make_train_val_split("d", "fp", labels, 10, 5, seed=a.seed + 1)
    assert not np.array_equal(a.val, c.val)
    assert c.fingerprints["val"] != a.fingerprints["val"]
    assert c.fingerprints["test"] == a.fingerprints["test"]  # the test split did not change
    d = make_train_val_split("d", "other-data", labels, 10, 5)
    assert d.fingerprints["test"] != a.fingerprints["test"]  # different data, different fingerprint


def test_manifest_round_trips(tmp_path):
    labels = _labels([7, 9, 4])
    m = make_train_val_split("d", "fp", labels, 5, 3)
    m.write(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["val"] == m.val.tolist() and data["train"] == m.train.tolist()
    assert data["fingerprint"] == m.fingerprint
    assert data["counts"] == {"train": 15, "val": 5, "test": 3}


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=1, max_size=8), frac=st.floats(0, 1), seed=st.integers(0, 99))
def test_stratified_choice_properties(counts, frac, seed):
    labels = np.random.default_rng(seed).permutation(_labels(counts))
    total = round(len(labels) * frac)
    chosen = stratified_choice(labels, total, seed)
    assert len(chosen) == total
    assert len(np.unique(chosen)) == total and np.all(np.diff(chosen) > 0)
    # each class gets its proportional share, rounded one way or the other
    got = np.bincount(labels[chosen], minlength=len(counts))
    expected = np.asarray(counts) * (total / max(1, len(labels)))
    assert np.all(np.abs(got - expected) < 1 + 1e-9)
    np.testing.assert_array_equal(chosen, stratified_choice(labels, total, seed))
