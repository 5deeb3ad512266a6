"""``majority-class``: the segmentation floor that ignores the pixels: every pixel the most frequent class."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchsuite.api import Context
from benchsuite.data.voc_segmentation import SegmentationSet
from benchsuite.errors import EmptyModelError
from benchsuite.tasks.segmentation import Segmenter


class MajorityClassSegmenter(Segmenter):
    """Labels every pixel of every image with the class that covers most (non-void) training pixels: the floor
    under every segmentation table (on Penn-Fudan, all background)."""

    id: ClassVar[str] = "majority-class"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def fit(self, train: SegmentationSet, val: SegmentationSet, ctx: Context) -> MajorityClassSegmenter:
        counts = train.class_pixel_counts()
        if not counts.any():
            raise EmptyModelError(f"{self.id}: the {len(train)} training masks hold no labelled (non-void) pixel")
        self.label_ = int(np.argmax(counts))
        ctx.record(label=self.label_, class_name=train.classes[self.label_],
                   pixel_share=round(float(counts[self.label_] / counts.sum()), 4))
        return self

    def segment(self, image: np.ndarray) -> np.ndarray:
        return np.full(np.shape(image)[:2], self.label_, np.uint8)
