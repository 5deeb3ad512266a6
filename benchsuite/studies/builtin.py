"""The suite's own study axes: ``train-size``, ``resolution`` and ``corruption`` (registered in ``benchsuite.axes``
by its ``pyproject.toml``, as a third party registers one).

- ``train-size``: nested, stratified subsets of the training split (per seed; each smaller subset inside every
  larger one, :mod:`benchsuite.studies.subsets`), as fractions (``1%``, ``0.01``, ``1.0``) or counts (``500``);
  val and test unchanged. A detection split is subset by image. Work per point: the pipeline's own epochs, with a
  floor on the training done, epochs x images (:func:`benchsuite.studies.axes.scaled_epochs`), and no refit on
  train + val (``refit_on_trainval`` off, where a pipeline takes it): a point trains on its images only.
- ``resolution``: every image of every split resampled by a factor (``0.5``, ``x0.5``) or to a longest side in
  pixels (``16px``), anti-aliased (area averaging) when shrinking, bilinear when growing
  (:func:`benchsuite.ops.windows.resize_image`); boxes scaled with their image.
- ``corruption``: the test images corrupted (:mod:`benchsuite.studies.corruptions`: eight families at severities
  1 to 5), deterministic per seed; values ``3`` (every family at severity 3), ``gaussian-noise-3`` (one family at
  one severity) or ``gaussian-noise`` (one family at every severity). The models are trained once on clean
  images: one job per pipeline and seed scores the clean test split and every corrupted variant of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from benchsuite.data.datasets import BOXES, IMAGE_LABELS
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.images import ImageSet
from benchsuite.errors import ConfigError
from benchsuite.ops.windows import resize_image
from benchsuite.studies import corruptions as cr
from benchsuite.studies.axes import Axis, Point, number, scaled_epochs, split_values, unique_sorted
from benchsuite.studies.images import DerivedDetectionSet, strata, unsupported
from benchsuite.studies.subsets import nested_subset, subset_size

__all__ = ["Corruption", "Resolution", "TrainSize"]


def _fmt(x: float) -> str:
    """A number written short and exact enough for labels and slugs (``0.1``, ``2.5``, ``0.375``)."""
    return f"{x:.6g}"


# ------------------------------------------------------------------------------------------------ train-size


class TrainSize(Axis):
    """Training-set size: nested, stratified subsets of the training split, per seed."""

    name = "train-size"
    title = "training images (share of the training split)"
    description = ("nested, stratified subsets of the training split per seed (fractions such as 1%, 0.1, 1.0, or "
                   "counts such as 500); val and test unchanged")
    changes = ("train",)
    supports = frozenset({IMAGE_LABELS, BOXES})
    x_scale = "log"
    #: quick: a point every half decade from 0.1% to 100% (on CIFAR-10 cnn already leads hog-svm at 1%: the points
    #: below look for the crossover; on a set smaller than one batch every epoch is one step, so the floor costs them
    #: more steps than the full fit: cnn at 0.1% does 2,250 steps of 45 images, the full split 1,575 of 256)
    defaults: ClassVar[dict[str, str]] = {"smoke": "10%,30%,100%", "quick": "0.1%,0.3%,1%,3%,10%,30%,100%",
                                          "full": "0.1%,0.3%,1%,2%,5%,10%,20%,50%,100%"}
    SYNTAX = "fractions (1%, 0.01, 1.0) or counts of images (500), not both"

    def points(self, text: str) -> list[Point]:
        out = []
        for token in split_values(text, self.name):
            if token.endswith("%"):
                v = number(token[:-1], self.name, self.SYNTAX) / 100.0
                out.append(self._fraction(v, token))
            elif any(c in token for c in ".eE"):
                out.append(self._fraction(number(token, self.name, self.SYNTAX), token))
            else:
                n = number(token, self.name, self.SYNTAX)
                if n < 1 or n != int(n):
                    raise ConfigError(f"{self.name}: count {token!r} must be a whole number of images, at least 1 "
                                      f"(a fraction is written 0.5 or 50%)")
                n = int(n)
                out.append(Point(self.name, str(n), n, f"{n:,} images", f"n{n}", float(n)))
        if len({type(p.value) for p in out}) > 1:
            raise ConfigError(f"{self.name}: {text!r} mixes fractions and counts; expected {self.SYNTAX}")
        return unique_sorted(out)

    def _fraction(self, v: float, token: str) -> Point:
        if not 0 < v <= 1:
            raise ConfigError(f"{self.name}: fraction {token!r} outside (0, 1]; expected {self.SYNTAX}")
        pct = _fmt(v * 100)
        return Point(self.name, repr(float(v)), float(v), f"{pct}%", f"{pct}pct", float(v))

    def derive(self, data: Any, split: str, point: Point, seed: int) -> Any:
        if split == "trainval":
            raise ConfigError(f"{self.name}: the trainval split is not defined for a subset of train (train at "
                              f"{point.label} and val whole)")
        if split != "train":
            return data
        subset = getattr(data, "subset", None)
        if not callable(subset):
            raise unsupported(self.name, data)
        keep = nested_subset(strata(data), subset_size(len(data), point.value), seed)
        return subset(keep)

    def count(self, split: str, images: int, point: Point) -> int:
        return subset_size(images, point.value) if split == "train" else images

    def format_position(self, x: float, points: list[Point]) -> str:
        if points and isinstance(points[0].value, int):
            return f"{x:,.0f} images"
        return f"{x * 100:.2g}%" if x < 0.1 else f"{x * 100:.3g}%"

    def share(self, point: Point, train_images: int | None) -> float:
        """The point's share of the full training split (of ``train_images`` for a count)."""
        if isinstance(point.value, float):
            return point.value
        return min(1.0, point.value / train_images) if train_images else 1.0

    def work(self, params: dict[str, Any], point: Point, floor: float, train_images: int | None,
             constructor: Mapping[str, tuple[Any, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        params, changed = scaled_epochs(params, self.share(point, train_images), floor, constructor)
        if "refit_on_trainval" in constructor and params.get("refit_on_trainval", True) is not False:
            params = {**params, "refit_on_trainval": False}
            changed = {**(changed or {}), "refit_on_trainval": False}
        return params, changed


# ------------------------------------------------------------------------------------------------ resolution


def scaled_size(height: int, width: int, point: Point) -> tuple[int, int]:
    """``(h, w)`` of an image of ``height`` x ``width`` at ``point``: the factor, or the longest side in pixels."""
    if point.slug.endswith("px"):
        f = float(point.value) / max(height, width)
    else:
        f = float(point.value)
    return max(1, round(height * f)), max(1, round(width * f))


def scale_sample(s: DetectionSample, point: Point) -> DetectionSample:
    """A sample's annotation at ``point``: its size and boxes scaled by the same factors as its pixels, boxes
    clipped to the new size and those left without area dropped."""
    h, w = scaled_size(s.height, s.width, point)
    sx, sy = w / s.width, h / s.height
    boxes = np.asarray(s.boxes, np.float64) * np.array([sx, sy, sx, sy])
    boxes = np.clip(boxes, 0, [w, h, w, h])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return DetectionSample(s.image_id, s.path, w, h, boxes[keep].astype(np.float32), s.labels[keep],
                           s.difficult[keep], s.truncated[keep])


def _resample(image: np.ndarray, sample: DetectionSample) -> np.ndarray:
    return resize_image(image, (sample.height, sample.width))


class Resolution(Axis):
    """Input resolution: every image resampled by a factor (or to a longest side), boxes with it."""

    name = "resolution"
    title = "input resolution (scale factor)"
    description = ("every image of every split resampled by a factor (0.5) or to a longest side in pixels (16px), "
                   "anti-aliased; boxes scaled with the images")
    changes = ("train", "val", "test")
    changes_pixels = True
    supports = frozenset({IMAGE_LABELS, BOXES})
    seeded = False
    x_scale = "log"
    defaults: ClassVar[dict[str, str]] = {"smoke": "0.5,1", "quick": "0.25,0.5,0.75,1"}
    SYNTAX = "factors (0.5 or x0.5, above 0 and at most 4) or longest sides in pixels (16px), not both"

    def points(self, text: str) -> list[Point]:
        out = []
        for token in split_values(text, self.name):
            t = token.lower()
            if t.endswith("px"):
                px = number(t[:-2], self.name, self.SYNTAX)
                if px < 2 or px != int(px):
                    raise ConfigError(f"{self.name}: {token!r}: a longest side must be a whole number of pixels, "
                                      f"at least 2")
                out.append(Point(self.name, f"{int(px)}px", int(px), f"{int(px)} px", f"{int(px)}px", float(px)))
                continue
            f = number(t.strip("x"), self.name, self.SYNTAX)
            if not 0 < f <= 4:
                raise ConfigError(f"{self.name}: factor {token!r} outside (0, 4]; expected {self.SYNTAX}")
            out.append(Point(self.name, _fmt(f), float(f), f"x{_fmt(f)}", f"x{_fmt(f)}", float(f)))
        if len({p.slug.endswith("px") for p in out}) > 1:
            raise ConfigError(f"{self.name}: {text!r} mixes factors and pixel sizes; expected {self.SYNTAX}")
        return unique_sorted(out)

    def format_position(self, x: float, points: list[Point]) -> str:
        if points and points[0].slug.endswith("px"):
            return f"{x:.3g} px"
        return f"x{x:.2g}"

    def derive(self, data: Any, split: str, point: Point, seed: int) -> Any:
        if isinstance(data, ImageSet):
            if not len(data):
                return data
            h, w = scaled_size(data.images.shape[1], data.images.shape[2], point)
            images = np.stack([resize_image(im, (h, w)) for im in data.images])
            return ImageSet(np.ascontiguousarray(images), data.labels, data.classes, data.name)
        if isinstance(data, DetectionSet) and not isinstance(data, DerivedDetectionSet):
            return DerivedDetectionSet(data.samples, [scale_sample(s, point) for s in data.samples], data.classes,
                                       data.name, _resample)
        raise unsupported(self.name, data)


# ------------------------------------------------------------------------------------------------ corruption


class Corruption(Axis):
    """Common corruptions of the test images, at severities 1 to 5; models trained once, on clean images."""

    name = "corruption"
    title = "corruption severity (0: clean)"
    description = ("the test images corrupted by the common corruption families (noise, blur, JPEG, contrast, "
                   "brightness, pixelation) at severities 1 to 5, deterministic per seed; models trained once on "
                   "clean images")
    changes = ("test",)
    changes_pixels = True
    supports = frozenset({IMAGE_LABELS, BOXES})
    one_fit = True
    x_scale = "linear"
    curve_noun = "corruption"
    defaults: ClassVar[dict[str, str]] = {"smoke": "gaussian-noise-3,contrast-5,pixelate-5", "quick": "1,3,5",
                                          "full": "1,2,3,4,5"}
    SYNTAX = (f"severities (3: every family at severity 3), FAMILY-SEVERITY (gaussian-noise-3) or FAMILY (every "
              f"severity); families: {', '.join(cr.CORRUPTIONS)}; severities {cr.SEVERITIES[0]} to "
              f"{cr.SEVERITIES[-1]}")

    def points(self, text: str) -> list[Point]:
        out = []
        for token in split_values(text, self.name):
            t = token.lower()
            if t in cr.CORRUPTIONS:
                out += [self.point(t, s) for s in cr.SEVERITIES]
                continue
            family, _, severity = t.rpartition("-")
            if not severity.isdigit() or (family and family not in cr.CORRUPTIONS):
                raise ConfigError(f"{self.name}: value {token!r} is not understood; expected {self.SYNTAX}")
            s = int(severity)
            if s not in cr.SEVERITIES:
                raise ConfigError(f"{self.name}: severity {s} in {token!r} outside {cr.SEVERITIES[0]} to "
                                  f"{cr.SEVERITIES[-1]}")
            out += [self.point(f, s) for f in ([family] if family else list(cr.CORRUPTIONS))]
        order = list(cr.CORRUPTIONS)
        return sorted(unique_sorted(out), key=lambda p: (order.index(p.curve), p.position))

    def format_position(self, x: float, points: list[Point]) -> str:
        return f"severity {x:.2g}"

    def curve_title(self, curve: str) -> str:
        return cr.CORRUPTIONS[curve].title if curve in cr.CORRUPTIONS else curve

    def curve_order(self, curves: list[str]) -> list[str]:
        order = list(cr.CORRUPTIONS)
        return sorted(curves, key=lambda c: (order.index(c) if c in order else len(order), c))

    def point(self, family: str, severity: int) -> Point:
        """The point of ``family`` at ``severity``."""
        text = f"{family}-{severity}"
        return Point(self.name, text, text, f"{cr.CORRUPTIONS[family].title} {severity}", text, float(severity),
                     family)

    def derive(self, data: Any, split: str, point: Point, seed: int) -> Any:
        if split != "test":
            return data
        family, severity = point.curve, int(point.position)
        if isinstance(data, ImageSet):
            return ImageSet(cr.corrupt_batch(data.images, family, severity, seed), data.labels, data.classes,
                            f"{data.name}.{point.slug}")
        if isinstance(data, DetectionSet) and not isinstance(data, DerivedDetectionSet):
            return DerivedDetectionSet(data.samples, data.samples, data.classes, f"{data.name}.{point.slug}",
                                       lambda image, sample: cr.corrupt(image, family, severity, seed))
        raise unsupported(self.name, data)
