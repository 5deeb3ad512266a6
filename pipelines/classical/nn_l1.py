"""``nn-l1``: nearest neighbour with L1 distance on raw pixels, the textbook CIFAR-10 baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Classifier, ClassifierOutput, Context
from benchsuite.data.images import ImageSet
from benchsuite.ops.distances import l1_knn, vote


class NearestNeighbourL1(Classifier):
    """k-nearest neighbours under L1 on uint8 pixels; k chosen on val, k=1 always reported.

    Parameters:
        k_values: the candidate k; the one with the best val accuracy wins (the smaller on a tie).
        refit_on_trainval: after choosing k, use train + val as the reference set (the official
            50,000 training images on CIFAR-10), as a refit after model selection does.
    """

    id: ClassVar[str] = "nn-l1"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    predict_batch_size: ClassVar[int] = 10_000  # one batch on CIFAR-10: threads share its query blocks
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"k_values": (1, 3)},
    }

    def __init__(self, k_values: tuple[int, ...] = (1, 3, 5, 7, 10), refit_on_trainval: bool = True):
        self.k_values = k_values
        self.refit_on_trainval = refit_on_trainval

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> NearestNeighbourL1:
        ks = sorted({int(k) for k in self.k_values})
        if not ks or ks[0] < 1:
            raise ValueError(f"k_values must be positive integers, got {self.k_values!r}")
        self.device_ = ctx.device
        self.num_classes_ = train.num_classes
        self.threads_ = ctx.num_threads
        _, idx = l1_knn(val.images, train.images, max(ks), ctx.device, ctx.progress, self.threads_)
        neighbour_labels = train.labels[idx]
        val_acc = {k: float(np.mean(vote(neighbour_labels, k, self.num_classes_) == val.labels)) for k in ks}
        # ks ascending: on a tie the smaller k wins
        self.k_ = ctx.select([{"k": k} for k in ks], lambda s: val_acc[s["k"]], metric="val_accuracy").settings["k"]
        ctx.record(k=self.k_, reference_set="train+val" if self.refit_on_trainval else "train",
                   trained_on="train+val" if self.refit_on_trainval else "train")
        # the reference set as its parts, indexed as their concatenation (154 MB on CIFAR-10, never copied)
        if self.refit_on_trainval:
            self.ref_parts_ = (train.images, val.images)
            self.ref_labels_ = np.concatenate([train.labels, val.labels])
        else:
            self.ref_parts_, self.ref_labels_ = (train.images,), train.labels
        self.progress_ = ctx.progress
        return self

    def predict(self, images: np.ndarray) -> ClassifierOutput:
        k = max(self.k_, 1)
        progress = self.progress_ if len(images) > 1 else None
        _, idx = l1_knn(images, self.ref_parts_, k, self.device_, progress, self.threads_)
        neighbour_labels = self.ref_labels_[idx]
        return ClassifierOutput(labels=vote(neighbour_labels, self.k_, self.num_classes_),
                                variants={"k=1": neighbour_labels[:, 0].copy()})
