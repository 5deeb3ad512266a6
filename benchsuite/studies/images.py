"""Derived splits whose images differ from the base's: a detection-style split whose pixels (and geometry) are
transformed as they are decoded, and the helpers the axes share to change a split of any supported type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.images import ImageSet
from benchsuite.errors import ConfigError

#: ``transform(image, sample) -> image``: the derived pixels of a stored image, ``sample`` its derived annotation
#: (the size the result must have)
PixelTransform = Callable[[np.ndarray, DetectionSample], np.ndarray]


class DerivedDetectionSet(DetectionSet):
    """A :class:`DetectionSet` whose images are the base set's, transformed when decoded.

    ``base`` holds the samples as stored (their files and sizes); ``samples`` the derived ones (the same images,
    possibly resampled: their size and boxes as the transform leaves them). Everything that reads pixels through
    :meth:`load_image` (the tasks, the pipelines, the report's gallery evidence) sees the derived images; the
    sample's ``path`` is still the stored file, so a pipeline that reads files itself would see the stored pixels
    (the axes that change pixels refuse such pipelines, ``Pipeline.consumes``).
    """

    def __init__(self, base: Sequence[DetectionSample], samples: Sequence[DetectionSample], classes: Sequence[str],
                 name: str, transform: PixelTransform):
        super().__init__(samples, classes, name)
        if len(base) != len(self.samples):
            raise ValueError(f"{name}: {len(base)} stored samples for {len(self.samples)} derived ones")
        self.base = list(base)
        self._source = DetectionSet(self.base, classes, name)
        self._transform = transform

    def load_image(self, i: int) -> np.ndarray:
        s = self.samples[i]
        image = self._transform(self._source.load_image(i), s)
        if image.shape[:2] != (s.height, s.width):
            raise ValueError(f"{self.name}: derived image {s.image_id} is {image.shape[1]}x{image.shape[0]} pixels, "
                             f"its sample says {s.width}x{s.height}")
        return image

    def subset(self, indices: Sequence[int] | np.ndarray) -> DerivedDetectionSet:
        keep = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        return DerivedDetectionSet([self.base[i] for i in keep], [self.samples[i] for i in keep], self.classes,
                                   self.name, self._transform)


def strata(data: Any) -> np.ndarray:
    """One stratum label per image of a split, for stratified subsets: an ImageSet's labels, a per-image set's
    ``stratification_labels()`` (each image's rarest class, object-free images apart)."""
    if isinstance(data, ImageSet):
        return data.labels
    labels = getattr(data, "stratification_labels", None)
    if callable(labels):
        return np.asarray(labels())
    raise ConfigError(f"{getattr(data, 'name', type(data).__name__)}: a {type(data).__name__} split has no stratum "
                      f"labels (an ImageSet's labels or stratification_labels()); this axis cannot subset it")


def unsupported(axis: str, data: Any) -> ConfigError:
    """The error for a split of a type ``axis`` cannot derive."""
    return ConfigError(f"the {axis} axis derives ImageSet and DetectionSet splits; "
                       f"{getattr(data, 'name', '')} is a {type(data).__name__}")
