"""``colour-hist-knn``: k nearest neighbours on joint RGB colour histograms."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Classifier, ClassifierOutput, Context, ImageSet


def colour_histograms(images: np.ndarray, bins: int) -> np.ndarray:
    """``(N, bins**3)`` float32 joint RGB histograms of uint8 ``(N, H, W, 3)`` images, each summing to 1."""
    n = len(images)
    if n == 0:
        return np.zeros((0, bins**3), np.float32)
    q = (images.reshape(n, -1, 3).astype(np.int64) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    offsets = (np.arange(n, dtype=np.int64) * bins**3)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=n * bins**3).reshape(n, bins**3)
    return (counts / codes.shape[1]).astype(np.float32)


class ColourHistogramKNN(Classifier):
    """k nearest neighbours under L1 between joint RGB colour histograms; k chosen on val.

    Parameters:
        k_values: candidate numbers of neighbours; the best val accuracy wins (the smaller k on a tie).
        bins: histogram bins per colour channel (``bins**3`` values per image).
    """

    id: ClassVar[str] = "colour-hist-knn"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "k nearest neighbours on joint RGB colour histograms (plugin template)"
    predict_batch_size: ClassVar[int] = 512
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"k_values": (1, 5), "bins": 4},
        "quick": {"k_values": (1, 5, 15), "bins": 6},
        "full": {"k_values": (1, 5, 15, 31), "bins": 8},
    }

    def __init__(self, k_values: tuple[int, ...] = (1, 5, 15), bins: int = 6):
        self.k_values = k_values
        self.bins = bins

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> ColourHistogramKNN:
        ks = sorted({int(k) for k in self.k_values})
        if not ks or ks[0] < 1 or int(self.bins) < 1:
            raise ValueError(f"colour-hist-knn: k_values must be positive, bins at least 1; got {self.k_values!r}, "
                             f"{self.bins!r}")
        self.num_classes_ = train.num_classes
        self.reference_ = colour_histograms(train.images, int(self.bins))
        self.reference_labels_ = train.labels.copy()
        votes = self._neighbour_labels(colour_histograms(val.images, int(self.bins)), max(ks))

        def val_accuracy(settings: dict[str, Any]) -> float:
            return float(np.mean(self._vote(votes, settings["k"]) == val.labels)) if len(val) else 0.0

        # the suite's one rule (the best score; a tie goes to the first candidate, here the smaller k), recorded in
        # the shape every record uses (fit_info.selection)
        self.k_ = ctx.select([{"k": k} for k in ks], val_accuracy, metric="val_accuracy").settings["k"]
        ctx.record(k=self.k_, reference_images=len(train))
        return self

    def _neighbour_labels(self, features: np.ndarray, k: int) -> np.ndarray:
        """``(N, k)`` labels of each row's nearest references, nearest first (ties by index)."""
        k = min(k, len(self.reference_))
        out = np.zeros((len(features), k), np.int64)
        for start in range(0, len(features), 256):  # bounded memory: 256 x references distances at a time
            d = np.abs(features[start:start + 256, None, :] - self.reference_[None]).sum(-1)
            out[start:start + 256] = self.reference_labels_[np.argsort(d, axis=1, kind="stable")[:, :k]]
        return out

    def _vote(self, neighbour_labels: np.ndarray, k: int) -> np.ndarray:
        """The most common label among the first ``k`` neighbours (the nearest one's on a tie)."""
        counts = np.zeros((len(neighbour_labels), self.num_classes_), np.int64)
        rows = np.arange(len(neighbour_labels))
        for j in range(min(k, neighbour_labels.shape[1])):
            counts[rows, neighbour_labels[:, j]] += 1
        best = counts.max(axis=1, initial=0)
        first = neighbour_labels[:, 0] if neighbour_labels.shape[1] else np.zeros(len(rows), np.int64)
        tie_to_nearest = counts[rows, first] == best
        return np.where(tie_to_nearest, first, counts.argmax(axis=1)).astype(np.int64)

    def predict(self, images: np.ndarray) -> ClassifierOutput:
        features = colour_histograms(images, int(self.bins))
        votes = self._neighbour_labels(features, self.k_)
        return ClassifierOutput(labels=self._vote(votes, self.k_), variants={"k=1": votes[:, 0].copy()}
                                if votes.shape[1] else {})
