"""A linear SVM solved in the primal with full-batch L-BFGS (torch), one-vs-rest.

The objective is liblinear's default for ``LinearSVC`` (L2-regularised, squared hinge loss), per class k:

    0.5 * ||w_k||^2 + C * sum_i max(0, 1 - y_ik * (x_i . w_k + b_k))^2,   y_ik = +1 if label_i == k else -1

with the bias left unregularised. The classes share one L-BFGS run (the objective is a sum of
independent problems), so one pass costs two matrix products over the data: on 45,000 x 2,000
features it converges in seconds where liblinear's coordinate descent takes minutes. Used by every
HOG pipeline of the suite, classification and detection, including hard-negative mining.
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

    Attributes after fit:
        coef_: ``(K, D)`` float32 (``(1, D)`` for two classes); intercept_: ``(K,)``; classes_.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 300, tol: float = 1e-6,
                 class_weight: str | None = None, device: str = "cpu"):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.device = device

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearSVM:
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes, got {self.classes_.tolist()}")
        binary = len(self.classes_) == 2
        targets = [self.classes_[1]] if binary else list(self.classes_)
        Y = np.stack([np.where(y == t, 1.0, -1.0) for t in targets], axis=1).astype(np.float32)  # (N, K)
        n = len(X)
        weights = np.ones_like(Y)
        if self.class_weight == "balanced":
            pos = (Y > 0).sum(0)
            neg = n - pos
            weights = np.where(Y > 0, n / (2.0 * np.maximum(pos, 1)), n / (2.0 * np.maximum(neg, 1)))
        elif self.class_weight is not None:
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        if sample_weight is not None:
            weights = weights * np.asarray(sample_weight, np.float32)[:, None]
        dev = torch.device(self.device)
        Xt = torch.from_numpy(X).to(dev)
        Yt = torch.from_numpy(Y).to(dev)
        Wt = torch.from_numpy(weights.astype(np.float32)).to(dev)
        k = Y.shape[1]
        W = torch.zeros(X.shape[1], k, device=dev)
        b = torch.zeros(k, device=dev)
        reg = 0.5 / (self.C * n)  # the objective divided by C * n: same minimiser, better scaled

        opt = torch.optim.LBFGS([W, b], lr=1, max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            # analytic gradient: G = dLoss/dScores; grad_W = 2 reg W + X^T G computed as (G^T X)^T,
            # which reads X in its memory order (three times faster than autograd's X^T @ G here)
            with torch.no_grad():
                margin = torch.clamp(1 - Yt * (Xt @ W + b), min=0)
                loss = reg * (W * W).sum() + (Wt * margin * margin).sum() / n
                G = (-2.0 / n) * Wt * margin * Yt
                W.grad = 2 * reg * W + (G.T @ Xt).T
                b.grad = G.sum(0)
            return loss

        opt.step(closure)
        state = opt.state[opt._params[0]]
        self.n_iter_ = int(state.get("n_iter", 0))
        self.coef_ = W.detach().T.cpu().numpy().astype(np.float32)
        self.intercept_ = b.detach().cpu().numpy().astype(np.float32)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Margins ``(N, K)``, or ``(N,)`` for two classes (positive means ``classes_[1]``)."""
        scores = np.asarray(X, dtype=np.float32) @ self.coef_.T + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(np.int64)]
        return self.classes_[np.argmax(scores, axis=1)]
