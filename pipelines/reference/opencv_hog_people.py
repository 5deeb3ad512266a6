"""``opencv-hog-people``: OpenCV's pretrained HOG people detector, a reference row for the ``person`` class.

OpenCV ships a linear SVM trained by Dalal & Triggs on INRIA pedestrians
(``cv2.HOGDescriptor_getDefaultPeopleDetector``, 64 x 128 windows). The suite does not train it; it runs
only for a class named ``person`` or ``pedestrian`` (any case) and finds nothing for the others.

Two details this wrapper takes care of:

- ``detectMultiScale`` aborts the whole process on an image smaller than its 64 x 128 window, so smaller
  images are padded (mirrored border) to that size first; boxes are clipped back to the image.
- the window holds a person plus a margin (INRIA windows: a person about 96 pixels tall in 128); the
  box reported is the window shrunk by ``context`` per side (:func:`benchsuite.ops.windows.object_boxes`),
  0 keeps the whole window. ``context`` and the hit threshold are chosen by AP50 on val.

Raw window hits (no OpenCV grouping) are suppressed with the suite's NMS; scores are OpenCV's returned
weights (SVM margins).
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.boxes import clip_boxes, nms
from benchsuite.ops.windows import object_boxes

PEOPLE_CLASSES = ("person", "pedestrian")
WINDOW = (128, 64)  # (height, width) of OpenCV's default people detector


def people_class(classes: tuple[str, ...]) -> int | None:
    """Index of the first class named ``person`` or ``pedestrian`` (case-insensitive), or None."""
    for i, name in enumerate(classes):
        if name.strip().lower() in PEOPLE_CLASSES:
            return i
    return None


class OpenCVHogPeople(Detector):
    """OpenCV ``HOGDescriptor`` with its default people detector, pretrained (not trained by the suite).

    Parameters:
        scale: pyramid step of ``detectMultiScale``.
        win_stride: window stride in pixels (a multiple of 8).
        padding: pixels of padding ``detectMultiScale`` adds around each level.
        contexts: candidate margins (fraction of the person's extent per side) between window and person
            box; chosen on val.
        hit_thresholds: candidate SVM margin thresholds for raw hits; chosen on val.
        nms_threshold: IoU threshold of the NMS over raw hits.
        max_detections: at most this many detections per image.
    """

    id: ClassVar[str] = "opencv-hog-people"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    pretrained_reference: ClassVar[bool] = True
    description: ClassVar[str] = "OpenCV HOGDescriptor default people detector (pretrained on INRIA)"

    def __init__(self, scale: float = 1.05, win_stride: int = 8, padding: int = 16,
                 contexts: tuple[float, ...] = (0.0, 1 / 6), hit_thresholds: tuple[float, ...] = (-0.5, 0.0),
                 nms_threshold: float = 0.45, max_detections: int = 100):
        self.scale = scale
        self.win_stride = win_stride
        self.padding = padding
        self.contexts = contexts
        self.hit_thresholds = hit_thresholds
        self.nms_threshold = nms_threshold
        self.max_detections = max_detections

    def _descriptor(self) -> cv2.HOGDescriptor:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        return hog

    def raw_windows(self, image: np.ndarray, hit_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """OpenCV's ungrouped window hits in ``image``: ``(boxes (N, 4) x1y1x2y2 float64, weights (N,))``.

        Images smaller than the 64 x 128 window are padded at the bottom and right (mirrored) first.
        """
        img = np.ascontiguousarray(image)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        h, w = img.shape[:2]
        grow_y, grow_x = max(0, WINDOW[0] - h), max(0, WINDOW[1] - w)
        if grow_y or grow_x:
            img = cv2.copyMakeBorder(img, 0, grow_y, 0, grow_x, cv2.BORDER_REFLECT)
        if not hasattr(self, "_hog"):
            self._hog = self._descriptor()
        rects, weights = self._hog.detectMultiScale(
            img, hitThreshold=float(hit_threshold), winStride=(self.win_stride, self.win_stride),
            padding=(self.padding, self.padding), scale=float(self.scale), groupThreshold=0)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        weights = np.asarray(weights, np.float64).reshape(-1)
        boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], axis=1)
        return boxes, weights

    def _finish(self, boxes: np.ndarray, weights: np.ndarray, width: int, height: int, context: float,
                hit_threshold: float) -> Detections:
        keep = weights > hit_threshold
        b = clip_boxes(object_boxes(boxes[keep], context), width, height)
        s = weights[keep]
        ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, s = b[ok], s[ok]
        idx = nms(b, s, self.nms_threshold)[: self.max_detections]
        return Detections(b[idx].astype(np.float32), s[idx].astype(np.float32),
                          np.full(len(idx), self.label_, np.int64))

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> OpenCVHogPeople:
        self.label_ = people_class(tuple(train.classes))
        self.context_ = float(self.contexts[0])
        self.hit_threshold_ = float(min(self.hit_thresholds))
        if self.label_ is None:
            ctx.record(note=f"no class named person or pedestrian in {list(train.classes)}: no detections")
            return self
        if len(val):
            low = float(min(self.hit_thresholds))
            raw = [self.raw_windows(val.load_image(i), low) for i in range(len(val))]
            person = val.classes[self.label_]

            def val_ap50(s: dict[str, Any]) -> float:
                dets = [self._finish(b, w, v.width, v.height, s["context"], s["hit_threshold"])
                        for (b, w), v in zip(raw, val)]
                return score_detections(val, dets, val.classes, ("voc",))["per_class"][person]["ap50"]

            # hit thresholds descending: on a tie the higher threshold wins
            best = ctx.select([{"context": float(context), "hit_threshold": float(hit)} for context in self.contexts
                               for hit in sorted(self.hit_thresholds, reverse=True)], val_ap50, metric="val_ap50")
            self.context_, self.hit_threshold_ = best.settings["context"], best.settings["hit_threshold"]
            ctx.record(val_ap50=round(best.score or 0.0, 4))
        ctx.record(person_class=train.classes[self.label_], context=self.context_, hit_threshold=self.hit_threshold_,
                   scale=self.scale, win_stride=self.win_stride, padding=self.padding,
                   note="pretrained reference (OpenCV default people detector), not trained on this data")
        return self

    def detect(self, image: np.ndarray) -> Detections:
        if self.label_ is None:
            return Detections.empty()
        boxes, weights = self.raw_windows(image, self.hit_threshold_)
        return self._finish(boxes, weights, image.shape[1], image.shape[0], self.context_, self.hit_threshold_)
