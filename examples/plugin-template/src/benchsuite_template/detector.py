"""``template-matcher``: one mean grey template per class, matched over an image pyramid.

Built on the suite's shared detector machinery (a stable API): :mod:`benchsuite.ops.windows` for the
training crops, the image pyramid and the window-to-image box mapping, :mod:`benchsuite.ops.boxes` for
non-maximum suppression. Normalised cross-correlation is OpenCV's ``matchTemplate`` (the suite's own
``opencv-contrib-python-headless``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Detections, DetectionSet, Detector
from benchsuite.ops.boxes import batched_nms, clip_boxes
from benchsuite.ops.windows import crop_windows, image_pyramid, positions_to_boxes


def grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 luminance of an ``(H, W, 3)`` uint8 RGB image."""
    return image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


class TemplateMatcher(Detector):
    """Per class, the mean of its training objects (grey, resized to one window, zero mean, unit norm),
    correlated with every level of an image pyramid; peaks above ``threshold`` become boxes, merged per
    class by NMS.

    Parameters:
        window_height: template height in pixels (the width follows the class's median aspect ratio).
        max_objects: at most this many training objects per class are averaged (the first ones).
        pyramid_step: ratio between pyramid levels (> 1).
        max_upscale: the first pyramid scale (> 1 finds objects smaller than the template).
        threshold: the least normalised correlation that is a detection.
        nms_iou: boxes of one class overlapping more than this are merged.
        max_detections: at most this many boxes per image, best first.
    """

    id: ClassVar[str] = "template-matcher"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "mean grey template per class over an image pyramid (plugin template)"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"window_height": 24, "max_objects": 50, "pyramid_step": 1.5},
        "quick": {"window_height": 32, "max_objects": 500, "pyramid_step": 1.25},
        "full": {"window_height": 40, "max_objects": 5000, "pyramid_step": 1.15},
    }

    def __init__(self, window_height: int = 32, max_objects: int = 500, pyramid_step: float = 1.25,
                 max_upscale: float = 1.0, threshold: float = 0.5, nms_iou: float = 0.3, max_detections: int = 50):
        self.window_height = window_height
        self.max_objects = max_objects
        self.pyramid_step = pyramid_step
        self.max_upscale = max_upscale
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_detections = max_detections

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> TemplateMatcher:
        h = int(self.window_height)
        if h < 4 or float(self.pyramid_step) <= 1:
            raise ValueError(f"template-matcher: window_height must be >= 4 and pyramid_step > 1, got {h}, "
                             f"{self.pyramid_step}")
        self.templates_: list[np.ndarray] = []
        self.windows_: list[tuple[int, int]] = []
        self.class_ids_: list[int] = []
        objects = {}
        for k in range(train.num_classes):
            boxes, where = train.boxes_of_class(k)
            if not len(boxes):
                continue
            aspect = float(np.median((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])))
            window = (h, max(4, round(h * aspect)))
            crops = []
            for i in np.unique(where[: int(self.max_objects)]):
                image = grey(train.load_image(int(i)))
                crops.append(crop_windows(image, boxes[: int(self.max_objects)][where[: int(self.max_objects)] == i],
                                          window))
            template = np.concatenate(crops).astype(np.float32).mean(axis=0)
            template -= template.mean()
            norm = float(np.linalg.norm(template))
            if norm == 0:
                continue
            self.templates_.append(template / norm)
            self.windows_.append(window)
            self.class_ids_.append(k)
            objects[train.classes[k]] = int(sum(len(c) for c in crops))
        ctx.record(objects_per_class=objects, windows={train.classes[k]: list(w) for k, w in
                                                        zip(self.class_ids_, self.windows_)})
        return self

    def detect(self, image: np.ndarray) -> Detections:
        picture = grey(image)
        boxes, scores, labels = [], [], []
        for template, window, k in zip(self.templates_, self.windows_, self.class_ids_):
            for level in image_pyramid(picture, window, float(self.pyramid_step), float(self.max_upscale)):
                response = cv2.matchTemplate(level.image.astype(np.float32), template, cv2.TM_CCOEFF_NORMED)
                response = np.nan_to_num(response, nan=0.0, posinf=0.0, neginf=0.0)
                rows, cols = np.nonzero(response >= float(self.threshold))
                if not len(rows):
                    continue
                positions = np.stack([rows, cols], axis=1)
                boxes.append(positions_to_boxes(positions, window, level.scale_y, level.scale_x))
                scores.append(response[rows, cols].astype(np.float64))
                labels.append(np.full(len(rows), k, np.int64))
        if not boxes:
            return Detections.empty()
        b, s, lab = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
        keep = batched_nms(b, s, lab, float(self.nms_iou))[: int(self.max_detections)]
        h, w = image.shape[:2]
        return Detections(clip_boxes(b[keep], w, h).astype(np.float32), s[keep].astype(np.float32), lab[keep])
