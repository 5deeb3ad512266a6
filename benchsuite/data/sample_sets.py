"""The sequence behaviour shared by the suite's per-image data sets (a list of samples with an id and a size,
and the class names): :class:`benchsuite.data.detection.DetectionSet` and
:class:`benchsuite.data.voc_segmentation.SegmentationSet` derive from it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np


class _Sample(Protocol):
    image_id: str
    width: int
    height: int


S = TypeVar("S", bound=_Sample)


class SampleSequence(Generic[S]):
    """``samples`` (one per image, in split order), ``classes`` (names) and ``name`` (``"<dataset>/<split>"``)."""

    def __init__(self, samples: Sequence[S], classes: Sequence[str], name: str = ""):
        self.samples: list[S] = list(samples)
        self.classes: tuple[str, ...] = tuple(classes)
        self.name = name

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> S:
        return self.samples[i]

    def __iter__(self) -> Iterator[S]:
        return iter(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_ids(self) -> list[str]:
        return [s.image_id for s in self.samples]

    @property
    def sizes(self) -> np.ndarray:
        """``(N, 2)`` int64 ``(height, width)`` of every image, in pixels."""
        return np.array([(s.height, s.width) for s in self.samples], dtype=np.int64).reshape(-1, 2)
