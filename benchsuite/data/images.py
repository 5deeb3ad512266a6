"""In-memory labelled image sets for classification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ImageSet:
    """Labelled images of one split.

    Attributes:
        images: ``(N, H, W, 3)`` uint8, RGB, HWC.
        labels: ``(N,)`` int64 class indices into ``classes``.
        classes: the class names, index order.
        name: ``"<dataset>/<split>"``, for messages.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"{self.name}: images must be (N, H, W, 3) uint8, got "
                             f"{self.images.shape} {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images")
        self.labels = self.labels.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.classes, self.name)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)
