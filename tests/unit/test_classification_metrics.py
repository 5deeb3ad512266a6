"""Classification metrics against scikit-learn, the independent oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from benchsuite.metrics.classification import (
    accuracy_interval,
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    macro_f1,
    per_class_accuracy,
)

label_arrays = st.integers(1, 200).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, 6), min_size=n, max_size=n),
                        st.lists(st.integers(0, 6), min_size=n, max_size=n)))


@settings(max_examples=80, deadline=None)
@given(label_arrays)
def test_against_sklearn(pair):
    y_true, y_pred = (np.asarray(v) for v in pair)
    cm = confusion_matrix(y_true, y_pred, 7)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(7)))
    assert macro_f1(cm) == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    recall = skm.recall_score(y_true, y_pred, labels=range(7), average=None, zero_division=0)
    present = np.bincount(y_true, minlength=7) > 0
    np.testing.assert_allclose(per_class_accuracy(cm)[present], recall[present])
    assert np.all(np.isnan(per_class_accuracy(cm)[~present]))
    metrics, _ = classification_metrics(y_true, y_pred, [str(i) for i in range(7)])
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    with warnings.catch_warnings():  # scikit-learn warns when a predicted class never occurs in y_true
        warnings.simplefilter("ignore")
        expected = skm.balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(cm) == pytest.approx(expected, abs=1e-12)
    assert metrics["balanced_accuracy"] == pytest.approx(expected, abs=1e-12)


def test_imbalanced_majority_guess():
    """The majority guess on a 90/10 set: accuracy 0.9, balanced accuracy 0.5, macro F1 about 0.47."""
    y_true = np.array([0] * 90 + [1] * 10)
    y_pred = np.zeros(100, np.int64)
    metrics, _ = classification_metrics(y_true, y_pred, ["a", "b"])
    assert metrics["accuracy"] == pytest.approx(0.9)
    assert metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_accuracy_interval_brackets_and_shrinks():
    lo, hi = accuracy_interval(700, 1000)
    assert lo < 0.7 < hi
    # the binomial standard error at n=1000, p=0.7 is 0.0145: the 95% interval is about +-0.028
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(0.7 * 0.3 / 1000), rel=0.1)
    lo2, hi2 = accuracy_interval(7000, 10000)
    assert hi2 - lo2 < (hi - lo) / 2.5


def test_interval_matches_explicit_resampling():
    """The binomial shortcut is the bootstrap: compare with resampling the images themselves."""
    rng = np.random.default_rng(5)
    correct = rng.random(400) < 0.62
    boots = [correct[rng.integers(0, 400, 400)].mean() for _ in range(4000)]
    explicit = np.quantile(boots, [0.025, 0.975])
    lo, hi = accuracy_interval(int(correct.sum()), 400)
    np.testing.assert_allclose([lo, hi], explicit, atol=0.01)
