"""``mean-box``: the trivial detector that ignores the pixels, a sanity floor for detection tables."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet


def normalised_boxes(data: DetectionSet, k: int) -> np.ndarray:
    """Non-difficult training boxes of class ``k`` as fractions of their image's width and height."""
    rows = []
    for s in data:
        keep = (s.labels == k) & ~s.difficult
        if keep.any():
            rows.append(s.boxes[keep] / np.array([s.width, s.height, s.width, s.height], np.float32))
    return np.concatenate(rows) if rows else np.zeros((0, 4), np.float32)


class MeanBoxDetector(Detector):
    """Predicts, for every class, the typical places its training boxes occupy, whatever the image shows.

    For each class the normalised training boxes are clustered (k-means, ``boxes_per_class`` centres);
    each centre becomes a box in every test image, scored by the share of training images that contain
    the class times the share of the class's boxes in that cluster.
    """

    id: ClassVar[str] = "mean-box"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init__(self, boxes_per_class: int = 5):
        self.boxes_per_class = boxes_per_class

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> MeanBoxDetector:
        centres, scores, labels = [], [], []
        for k in range(train.num_classes):
            boxes = normalised_boxes(train, k)
            if not len(boxes):
                continue
            share = np.mean([np.any((s.labels == k) & ~s.difficult) for s in train])
            n = min(int(self.boxes_per_class), len(np.unique(boxes, axis=0)))
            km = KMeans(n_clusters=n, n_init=4, random_state=ctx.seed).fit(boxes)
            weight = np.bincount(km.labels_, minlength=n) / len(boxes)
            centres.append(km.cluster_centers_.astype(np.float32))
            scores.append((share * weight).astype(np.float32))
            labels.append(np.full(n, k, np.int64))
        self.centres_ = np.concatenate(centres) if centres else np.zeros((0, 4), np.float32)
        self.scores_ = np.concatenate(scores) if scores else np.zeros(0, np.float32)
        self.labels_ = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        ctx.record(boxes=len(self.scores_))
        return self

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        boxes = self.centres_ * np.array([w, h, w, h], np.float32)
        return Detections(boxes, self.scores_.copy(), self.labels_.copy())
