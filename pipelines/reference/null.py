"""The ``null-*`` references: pipelines that do no work, one per task.

They run through the very same harness as every other pipeline (worker process, data loading, output
validation, scoring, records), so their fit and predict figures are the harness's own cost per job: the
floor under every other pipeline's timings. The report shows them apart, never as a headline row.

- ``null-classifier`` predicts the most frequent training class for every image (its accuracy is the
  majority-class rate);
- ``null-detector`` returns no boxes (AP 0);
- ``null-proposer`` returns no proposals (recall 0).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchsuite.api import Classifier, Context, Detections, Detector, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.data.images import ImageSet


class NullClassifier(Classifier):
    """Predicts the most frequent training class for every image; the harness floor of classification."""

    id: ClassVar[str] = "null-classifier"
    task: ClassVar[str] = "classification"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    harness_floor: ClassVar[bool] = True
    predict_batch_size: ClassVar[int] = 4096

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> NullClassifier:
        counts = np.bincount(np.asarray(train.labels, np.int64), minlength=1)
        self.label_ = int(np.argmax(counts))
        ctx.record(constant_label=self.label_)
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.full(len(images), self.label_, np.int64)


class NullDetector(Detector):
    """Returns no boxes; the harness floor of detection."""

    id: ClassVar[str] = "null-detector"
    task: ClassVar[str] = "detection"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    harness_floor: ClassVar[bool] = True

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> NullDetector:
        return self

    def detect(self, image: np.ndarray) -> Detections:
        return Detections.empty()


class NullProposer(Proposer):
    """Returns no proposals; the harness floor of the proposals task."""

    id: ClassVar[str] = "null-proposer"
    task: ClassVar[str] = "proposals"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    harness_floor: ClassVar[bool] = True

    def propose(self, image: np.ndarray) -> np.ndarray:
        return np.zeros((0, 4), np.float32)
