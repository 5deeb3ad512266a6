"""``opencv-haar``: OpenCV's pretrained Haar cascades, a reference row beside the suite's ``viola-jones``.

OpenCV ships cascades trained on its own data (``cv2.data.haarcascades``); where one fits a class of the
data set (by class name: full body for people, frontal face for faces) it detects that class, and
classes without a fitting cascade get no detections (the record lists both). Nothing is trained.
Scores are the level weights of ``detectMultiScale3(..., outputRejectLevels=True)``: the final stage's
boosted sum of each grouped detection, so the detections can be ranked for AP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import ConfigError

#: class name (lower case) -> cascade file in cv2.data.haarcascades
DEFAULT_CASCADES: dict[str, str] = {
    "person": "haarcascade_fullbody.xml",
    "pedestrian": "haarcascade_fullbody.xml",
    "people": "haarcascade_fullbody.xml",
    "face": "haarcascade_frontalface_default.xml",
}


class OpenCVHaarCascade(Detector):
    """OpenCV's pretrained Haar cascades for the classes they fit (pretrained reference, not trained).

    Parameters:
        scale_factor: pyramid ratio of ``detectMultiScale`` (> 1).
        min_neighbors: grouped raw hits a detection needs (OpenCV's false-positive filter).
        cascades: class name -> cascade file name in ``cv2.data.haarcascades`` (or a path); None uses
            :data:`DEFAULT_CASCADES`.
    """

    id: ClassVar[str] = "opencv-haar"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    pretrained_reference: ClassVar[bool] = True
    description: ClassVar[str] = "OpenCV's pretrained Haar cascades (full body, frontal face), not trained"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 3, cascades: dict[str, str] | None = None):
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.cascades = cascades

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> OpenCVHaarCascade:
        if self.scale_factor <= 1:
            raise ConfigError(f"opencv-haar: scale_factor must be > 1, got {self.scale_factor}")
        table = DEFAULT_CASCADES if self.cascades is None else {k.lower(): v for k, v in self.cascades.items()}
        self.models_: list[tuple[int, Any, tuple[int, int]]] = []
        used, missing = {}, []
        for k, name in enumerate(train.classes):
            file = table.get(name.lower())
            if file is None:
                missing.append(name)
                continue
            path = Path(file) if Path(file).is_absolute() else Path(cv2.data.haarcascades) / file
            cascade = cv2.CascadeClassifier(str(path))
            if cascade.empty():
                raise ConfigError(f"opencv-haar: cannot load the cascade {path} for class {name!r}")
            w, h = cascade.getOriginalWindowSize()
            self.models_.append((k, cascade, (int(h), int(w))))
            used[name] = path.name
        self._stats: dict[str, Any] = {"images": 0, "detect_s": 0.0}
        ctx.record(cascades=used, classes_without_cascade=missing,
                   # updated by detect(): the record holds the totals over every image the job detected on
                   detect_stats=self._stats)
        return self

    def detect(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        a = np.asarray(image)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        grey = a if a.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(a[:, :, :3]), cv2.COLOR_RGB2GRAY)
        grey = np.ascontiguousarray(grey.astype(np.uint8, copy=False))
        boxes, scores, labels = [], [], []
        for k, cascade, (wh, ww) in self.models_:
            if grey.shape[0] < wh or grey.shape[1] < ww:
                continue  # smaller than the cascade's window: nothing to scan
            rects, _, weights = cascade.detectMultiScale3(grey, scaleFactor=self.scale_factor,
                                                          minNeighbors=self.min_neighbors,
                                                          outputRejectLevels=True)
            if len(rects) == 0:
                continue
            r = np.asarray(rects, np.float32).reshape(-1, 4)
            boxes.append(np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1))
            scores.append(np.asarray(weights, np.float32).reshape(-1))
            labels.append(np.full(len(r), k, np.int64))
        self._stats["images"] += 1
        self._stats["detect_s"] += time.perf_counter() - t0
        self._stats["seconds_per_image"] = self._stats["detect_s"] / self._stats["images"]
        if not boxes:
            return Detections.empty()
        return Detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels))
