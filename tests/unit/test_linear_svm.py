"""The primal L-BFGS linear SVM: one C alone, a grid of C in one shared run, and scikit-learn's LinearSVC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from benchsuite.ops.linear_svm import LinearSVM, fit_svms


def _blobs(n: int = 300, d: int = 12, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(0, 1.0, (n, d))).astype(np.float32), y


def _gradient(svm: LinearSVM, X: np.ndarray, y: np.ndarray, j: int) -> np.ndarray:
    """Gradient of 0.5 |w|^2 + C sum max(0, 1 - t (x.w + b))^2 for class column j, in float64 (an oracle
    written apart from the solver)."""
    t = np.where(y == svm.classes_[j if len(svm.classes_) > 2 else 1], 1.0, -1.0)
    w = svm.coef_[j].astype(np.float64)
    b = float(svm.intercept_[j])
    margin = np.maximum(0.0, 1 - t * (X.astype(np.float64) @ w + b))
    g_scores = -2.0 * svm.C * margin * t
    return np.concatenate([w + X.T.astype(np.float64) @ g_scores, [g_scores.sum()]])


@pytest.mark.parametrize("k", [2, 3])
def test_grid_in_one_run_matches_one_c_at_a_time(k):
    X, y = _blobs(k=k)
    cs = [0.01, 0.1, 1.0]
    joint = fit_svms(X, y, cs, max_iter=500, tol=1e-9)
    for c, svm in zip(cs, joint):
        alone = LinearSVM(C=c, max_iter=500, tol=1e-9).fit(X, y)
        assert c == svm.C
        np.testing.assert_allclose(svm.coef_, alone.coef_, rtol=1e-2, atol=2e-3)  # float32 solves
        np.testing.assert_allclose(svm.intercept_, alone.intercept_, rtol=1e-2, atol=2e-3)  # float32 solves
        for j in range(svm.coef_.shape[0]):  # stationary: the exact gradient of each problem is ~0
            grad = _gradient(svm, X, y, j)
            assert np.abs(grad).max() < 1e-3 * max(1.0, c * len(X))


def test_agrees_with_scikit_learn_linear_svc():
    X, y = _blobs(n=400, k=3, seed=1)
    ours = LinearSVM(C=0.1, max_iter=500, tol=1e-9).fit(X, y)
    # liblinear regularises the bias unless it is scaled up: a large intercept_scaling makes that negligible
    ref = LinearSVC(C=0.1, loss="squared_hinge", dual=False, tol=1e-8, max_iter=10000,
                    intercept_scaling=100.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=2e-2, atol=2e-3)
    assert np.mean(ours.predict(X) == ref.predict(X)) > 0.99


def test_bad_grids_and_inputs():
    X, y = _blobs()
    with pytest.raises(ValueError, match="c_values"):
        fit_svms(X, y, [])
    with pytest.raises(ValueError, match="c_values"):
        fit_svms(X, y, [0.1, 0.0])
    with pytest.raises(ValueError, match="two classes"):
        fit_svms(X, np.zeros(len(X), int), [1.0])
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fit_svms(X[:10], y, [1.0])
