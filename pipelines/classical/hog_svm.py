"""``hog-svm``: HOG descriptors and a linear SVM, the classical CIFAR-10 classifier."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Classifier, Context
from benchsuite.data.images import ImageSet
from benchsuite.ops.hog import hog_features
from benchsuite.ops.linear_svm import LinearSVM, fit_svms


class HogLinearSVM(Classifier):
    """HOG (several cell sizes, 2x2-cell L2-Hys blocks) + one-vs-rest linear SVM, C chosen on val.

    Parameters:
        cells: HOG cell sizes in pixels; the descriptors of each are concatenated (4 and 8 give a fine
            and a coarse grid on 32 x 32 images: 1,764 + 324 values).
        bins: unsigned orientation bins.
        sqrt_gamma: square-root gamma compression of the pixels before the gradients.
        c_values: candidate SVM C; the best val accuracy wins (the smaller C on a tie).
        max_iter: L-BFGS iterations per SVM fit.
        refit_on_trainval: after choosing C, fit once more on train + val.
    """

    id: ClassVar[str] = "hog-svm"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    predict_batch_size: ClassVar[int] = 4096
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"c_values": (0.1, 1.0)},
    }

    def __init__(self, cells: tuple[int, ...] = (4, 8), bins: int = 9, sqrt_gamma: bool = True,
                 c_values: tuple[float, ...] = (0.0003, 0.001, 0.003, 0.01), max_iter: int = 120,
                 refit_on_trainval: bool = True):
        self.cells = cells
        self.bins = bins
        self.sqrt_gamma = sqrt_gamma
        self.c_values = c_values
        self.max_iter = max_iter
        self.refit_on_trainval = refit_on_trainval

    def _describe(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([hog_features(images, cell=int(c), bins=self.bins, sqrt_gamma=self.sqrt_gamma)
                               for c in self.cells], axis=1)

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> HogLinearSVM:
        f_train = self._describe(train.images)
        f_val = self._describe(val.images)
        self.mean_ = f_train.mean(axis=0)
        self.scale_ = f_train.std(axis=0) + 1e-6
        x_train = (f_train - self.mean_) / self.scale_
        x_val = (f_val - self.mean_) / self.scale_
        c_values = sorted(float(c) for c in self.c_values)
        if not c_values:
            raise ValueError("hog-svm: c_values is empty")
        # every C in one shared L-BFGS run (benchsuite.ops.linear_svm.fit_svms): one pass over the data per
        # iteration for the whole grid
        svms = fit_svms(x_train, train.labels, c_values, max_iter=self.max_iter)
        by_c = dict(zip(c_values, svms))
        choice = ctx.select([{"C": c} for c in c_values],  # C ascending: on a tie the smaller C wins
                            lambda s: (float(np.mean(by_c[s["C"]].predict(x_val) == val.labels)), by_c[s["C"]]),
                            metric="val_accuracy")
        self.C_, self.svm_ = choice.settings["C"], choice.payload
        if self.refit_on_trainval:
            x_all = np.concatenate([x_train, x_val])
            self.svm_ = LinearSVM(C=self.C_, max_iter=self.max_iter).fit(
                x_all, np.concatenate([train.labels, val.labels]))
        ctx.record(C=self.C_, feature_dim=int(x_train.shape[1]),
                   trained_on="train+val" if self.refit_on_trainval else "train")
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        if not len(images):
            return np.zeros(0, np.int64)
        x = (self._describe(images) - self.mean_) / self.scale_
        return self.svm_.predict(x).astype(np.int64)
