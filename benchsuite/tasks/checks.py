"""Check adapters: how the conformance checks (:mod:`benchsuite.testing`) call a task's pipelines and validate what
they return.

A task declares one as :attr:`benchsuite.tasks.base.Task.checks`. The two shapes the suite's tasks take:

:class:`ArrayBatchChecks`
    the prediction method takes all images at once, an ``(N, H, W, 3)`` array, and returns one result for the
    batch (``Classifier.predict``).
:class:`PerImageChecks`
    the prediction method takes one ``(H, W, 3)`` image and its ``<method>_batch`` twin a list of them, one
    result per image (``Detector.detect``, ``Proposer.propose``, a plugin task's ``count``).

Each validates through a function of the task (the same one its :meth:`~benchsuite.tasks.base.Task.predict_split`
uses), so a pipeline passes the checks exactly when the runner would accept its outputs, and compares the outputs
of two fits field by field (:func:`output_difference`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchsuite.errors import OutputValidationError

__all__ = ["ArrayBatchChecks", "CheckAdapter", "PerImageChecks", "output_difference"]


def output_difference(a: Any, b: Any, rtol: float, atol: float, what: str = "output") -> str:
    """'' when two validated outputs agree, else what differs first.

    Dataclasses and mappings are compared field by field, integer, boolean and string arrays exactly, float
    arrays within ``rtol``/``atol`` (``numpy.allclose``).
    """
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        for f in dataclasses.fields(a):
            diff = output_difference(getattr(a, f.name), getattr(b, f.name), rtol, atol, f.name)
            if diff:
                return diff
        return ""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return f"{what}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        return next((d for k in a if (d := output_difference(a[k], b[k], rtol, atol, f"{what}[{k!r}]"))), "")
    if a is None or b is None:
        return "" if a is None and b is None else f"{what}: present in one output only"
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return f"{what}: shape {x.shape} vs {y.shape}"
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
            return f"{what}: values differ (largest difference {float(np.nanmax(np.abs(x - y))):.3g})"
        return ""
    unequal = int(np.count_nonzero(x != y))
    return f"{what}: {unequal} of {x.size} differ" if unequal else ""


class CheckAdapter:
    """How the checks call one task's pipelines. ``method`` names the prediction method (for messages)."""

    method: str = ""

    def inputs(self, test: Any) -> Any:
        """The images of the check data's test split as the task's pipelines take them."""
        raise NotImplementedError

    def predict(self, pipeline: Any, images: Any, num_classes: int) -> list[Any]:
        """The validated outputs for ``images`` (one per image, or one for the whole batch); an invalid output
        raises :class:`~benchsuite.errors.OutputValidationError`."""
        raise NotImplementedError

    def single(self, pipeline: Any, image: Any, num_classes: int) -> Any | None:
        """The validated output of the single-image method (the one the runner times for latency) on ``image``;
        None when the task has no such method."""
        return None

    def empty(self, pipeline: Any, images: Any, num_classes: int) -> None:
        """Predict on no images (shaped like ``images``); raises OutputValidationError unless the result is empty."""
        raise NotImplementedError

    def compare(self, a: Any, b: Any) -> str:
        """'' when two validated outputs agree, else what differs."""
        raise NotImplementedError


class ArrayBatchChecks(CheckAdapter):
    """The prediction method takes an ``(N, H, W, 3)`` array and returns one result for the batch.

    Args:
        method: the prediction method (``"predict"``).
        validate: ``validate(output, n_images, num_classes) -> validated``; raises OutputValidationError.
        rtol, atol: the tolerance on float arrays when two fits are compared.
    """

    def __init__(self, method: str, validate: Callable[[Any, int, int], Any], rtol: float = 1e-5,
                 atol: float = 1e-6):
        self.method, self.validate, self.rtol, self.atol = method, validate, rtol, atol

    def inputs(self, test: Any) -> np.ndarray:
        return np.asarray(test.images)

    def predict(self, pipeline: Any, images: np.ndarray, num_classes: int) -> list[Any]:
        return [self.validate(getattr(pipeline, self.method)(images), len(images), num_classes)]

    def empty(self, pipeline: Any, images: np.ndarray, num_classes: int) -> None:
        none = np.zeros((0, *np.asarray(images).shape[1:]), np.uint8)
        self.validate(getattr(pipeline, self.method)(none), 0, num_classes)

    def compare(self, a: Any, b: Any) -> str:
        return output_difference(a, b, self.rtol, self.atol)


class PerImageChecks(CheckAdapter):
    """The prediction method takes one ``(H, W, 3)`` image, ``<method>_batch`` a list of them (one result each).

    Args:
        method: the single-image method (``"detect"``); the checks call ``<method>_batch`` as the runner does.
        validate: ``validate(output, width, height, num_classes, where) -> validated``, for one image's output;
            raises OutputValidationError naming ``where``.
        noun: what one output holds, for messages (``"detections"``).
        rtol, atol: the tolerance on float arrays when two fits are compared.
    """

    def __init__(self, method: str, validate: Callable[[Any, int, int, int, str], Any], noun: str = "results",
                 rtol: float = 1e-5, atol: float = 1e-4):
        self.method, self.validate, self.noun, self.rtol, self.atol = method, validate, noun, rtol, atol

    def inputs(self, test: Any) -> list[np.ndarray]:
        return [test.load_image(i) for i in range(len(test))]

    def _batch(self, pipeline: Any) -> Callable[[list[np.ndarray]], Any]:
        return getattr(pipeline, f"{self.method}_batch")

    def predict(self, pipeline: Any, images: list[np.ndarray], num_classes: int) -> list[Any]:
        outs = self._batch(pipeline)(list(images))
        if not isinstance(outs, (list, tuple)) or len(outs) != len(images):
            got = f"{len(outs)} results" if isinstance(outs, (list, tuple)) else type(outs).__name__
            raise OutputValidationError(f"{self.method}_batch() returned {got} for {len(images)} images; "
                                        f"expected a list with one result per image")
        return [self.validate(out, im.shape[1], im.shape[0], num_classes, f"{self.method}_batch() image {i}")
                for i, (out, im) in enumerate(zip(outs, images))]

    def single(self, pipeline: Any, image: np.ndarray, num_classes: int) -> Any:
        out = getattr(pipeline, self.method)(image)
        return self.validate(out, image.shape[1], image.shape[0], num_classes, f"{self.method}()")

    def empty(self, pipeline: Any, images: list[np.ndarray], num_classes: int) -> None:
        outs = self._batch(pipeline)([])
        if not isinstance(outs, (list, tuple)) or len(outs):
            raise OutputValidationError(f"{self.method}_batch([]) returned {outs!r:.80}; expected an empty list")

    def compare(self, a: Any, b: Any) -> str:
        if hasattr(a, "__len__") and hasattr(b, "__len__") and len(a) != len(b):
            return f"{len(a)} vs {len(b)} {self.noun}"
        return output_difference(a, b, self.rtol, self.atol, self.noun)
