"""A linear SVM solved in the primal with full-batch L-BFGS (torch), one-vs-rest.

The objective is liblinear's default for ``LinearSVC`` (L2-regularised, squared hinge loss), per class k:

    0.5 * ||w_k||^2 + C * sum_i max(0, 1 - y_ik * (x_i . w_k + b_k))^2,   y_ik = +1 if label_i == k else -1

with the bias left unregularised. The classes share one L-BFGS run (the objective is a sum of
independent problems), so one pass costs two matrix products over the data: on 45,000 x 2,000
features it converges in seconds where liblinear's coordinate descent takes minutes. Used by every
HOG pipeline of the suite, classification and detection, including hard-negative mining.

:func:`fit_svms` extends the sharing to a grid of C values: the problems for every (C, class) pair are
columns of one weight matrix under one L-BFGS run. The products with the data are memory-bound, so a
run with 4 values of C x 10 classes costs little more than one with a single C (on CIFAR-10's 45,000 x
2,088 HOG features: one pass over the data either way), where fitting each C in turn pays it 4 times.
"""

from __future__ import annotations

import numpy as np
import torch


class LinearSVM:
    """scikit-learn-shaped linear SVM: ``fit(X, y)``, ``decision_function(X)``, ``predict(X)``.

    Parameters:
        C: inverse regularisation strength, as in liblinear.
        max_iter: L-BFGS iterations at most.
        tol: stop when the largest gradient entry of the normalised objective falls below this.
        class_weight: None or "balanced" (weights each sample by n / (2 * n_its_side) per class).
        device: torch device for the solve.
        dtype: ``"float32"`` or ``"float64"``: the precision of the solve, the weights and the margins (see
            :func:`fit_svms`).

    Attributes after fit:
        coef_: ``(K, D)`` of ``dtype`` (``(1, D)`` for two classes); intercept_: ``(K,)``; classes_.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 300, tol: float = 1e-6,
                 class_weight: str | None = None, device: str = "cpu", dtype: str = "float32"):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.device = device
        self.dtype = dtype

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearSVM:
        fitted = fit_svms(X, y, [self.C], max_iter=self.max_iter, tol=self.tol, class_weight=self.class_weight,
                          device=self.device, sample_weight=sample_weight, dtype=self.dtype)[0]
        self.classes_, self.n_iter_ = fitted.classes_, fitted.n_iter_
        self.coef_, self.intercept_ = fitted.coef_, fitted.intercept_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Margins ``(N, K)``, or ``(N,)`` for two classes (positive means ``classes_[1]``), in ``coef_``'s dtype."""
        scores = np.asarray(X, dtype=self.coef_.dtype) @ self.coef_.T + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(np.int64)]
        return self.classes_[np.argmax(scores, axis=1)]


def _targets_and_weights(y: np.ndarray, class_weight: str | None, sample_weight: np.ndarray | None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, Y (N, K) in {-1, +1}, per-entry weights (N, K))`` of the one-vs-rest problems."""
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {classes.tolist()}")
    targets = [classes[1]] if len(classes) == 2 else list(classes)
    Y = np.stack([np.where(y == t, 1.0, -1.0) for t in targets], axis=1).astype(np.float32)  # (N, K)
    n = len(y)
    weights = np.ones_like(Y)
    if class_weight == "balanced":
        pos = (Y > 0).sum(0)
        neg = n - pos
        weights = np.where(Y > 0, n / (2.0 * np.maximum(pos, 1)), n / (2.0 * np.maximum(neg, 1)))
    elif class_weight is not None:
        raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, np.float32)[:, None]
    return classes, Y, weights.astype(np.float32)


def fit_svms(X: np.ndarray, y: np.ndarray, c_values: list[float] | tuple[float, ...], max_iter: int = 300,
             tol: float = 1e-6, class_weight: str | None = None, device: str = "cpu",
             sample_weight: np.ndarray | None = None, dtype: str = "float32") -> list[LinearSVM]:
    """One fitted :class:`LinearSVM` per value of ``c_values`` (in that order), from one shared L-BFGS run.

    ``X``: ``(N, D)`` features; ``y``: ``(N,)`` labels. The problems are independent, so the joint minimiser
    is each one's own minimiser; ``max_iter`` bounds the shared run, so loosely converged grids can differ
    slightly from one-at-a-time fits.

    ``dtype`` is the precision of the whole solve. The products with the data and the L-BFGS reductions sum in
    an order that depends on the CPU's kernels (MKL's GEMM and dot pick their code path by instruction set, torch's
    reductions by vector width), so on another CPU type the iterates differ in the last bits; a run stopped at
    ``max_iter`` before convergence carries that into the weights. In float32 (the default: half the memory
    traffic) the weights then differ by about 1e-5 and a few test predictions near a tie flip; in float64 the
    differences are about 1e-13 and no prediction moves (measured by switching the kernels on one machine:
    ``MKL_ENABLE_INSTRUCTIONS``, ``ATEN_CPU_CAPABILITY``, thread counts).
    """
    c_values = [float(c) for c in c_values]
    if not c_values or min(c_values) <= 0:
        raise ValueError(f"c_values must be positive numbers, got {c_values!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    np_dtype, torch_dtype = (np.float32, torch.float32) if dtype == "float32" else (np.float64, torch.float64)
    X = np.asarray(X, dtype=np_dtype)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (N, D) with one label per row, got X {X.shape} and y {y.shape}")
    classes, Y, weights = _targets_and_weights(y, class_weight, sample_weight)
    n, k, m = len(X), Y.shape[1], len(c_values)
    dev = torch.device(device)
    Xt = torch.from_numpy(X).to(dev)
    Yt = torch.from_numpy(np.tile(Y, (1, m)).astype(np_dtype)).to(dev)  # column c * k + j: class j under C = c[c]
    Wt = torch.from_numpy(np.tile(weights, (1, m)).astype(np_dtype)).to(dev)
    # the objective of each problem divided by its C * n: the same minimiser, better scaled
    reg = torch.tensor(np.repeat([0.5 / (c * n) for c in c_values], k), dtype=torch_dtype, device=dev)
    W = torch.zeros(X.shape[1], k * m, device=dev, dtype=torch_dtype)
    b = torch.zeros(k * m, device=dev, dtype=torch_dtype)

    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        # analytic gradient: G = dLoss/dScores; grad_W = 2 reg W + X^T G computed as (G^T X)^T,
        # which reads X in its memory order (three times faster than autograd's X^T @ G here)
        with torch.no_grad():
            margin = torch.clamp(1 - Yt * (Xt @ W + b), min=0)
            loss = (reg * (W * W).sum(0)).sum() + (Wt * margin * margin).sum() / n
            G = (-2.0 / n) * Wt * margin * Yt
            W.grad = 2 * reg * W + (G.T @ Xt).T
            b.grad = G.sum(0)
        return loss

    opt.step(closure)
    n_iter = int(opt.state[opt._params[0]].get("n_iter", 0))
    coef = W.detach().T.cpu().numpy().astype(np_dtype)  # (k * m, D)
    intercept = b.detach().cpu().numpy().astype(np_dtype)
    models = [LinearSVM(C=c, max_iter=max_iter, tol=tol, class_weight=class_weight, device=device, dtype=dtype)
              for c in c_values]
    for i, svm in enumerate(models):
        svm.classes_ = classes
        svm.n_iter_ = n_iter
        svm.coef_ = np.ascontiguousarray(coef[i * k:(i + 1) * k])
        svm.intercept_ = np.ascontiguousarray(intercept[i * k:(i + 1) * k])
    return models
