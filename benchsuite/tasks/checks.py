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
of two fits field by field (:func:`output_difference`). The semantic checks (boxes that look normalised or
``x, y, w, h``, scores that are all equal or NaN, the same output for every image) read each image's raw output
through :meth:`CheckAdapter.parts` (:class:`OutputParts`), before validation, so that they can name the likely
cause of an output the validation refuses.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchsuite.errors import OutputValidationError

__all__ = ["ArrayBatchChecks", "CheckAdapter", "OutputParts", "PerImageChecks", "detection_parts", "output_difference"]


@dataclasses.dataclass(frozen=True)
class OutputParts:
    """What the semantic checks read from one image's raw output (before validation).

    Attributes:
        boxes: ``(N, 4)`` float64 boxes as returned, or None (the task's outputs hold none, or they cannot be read).
        scores: the scores as returned, flattened float64 (a detection's ``(N,)``, a classifier's ``(C,)`` row), or
            None.
        digest: a digest of everything the image's output holds, for the "same output for every image" check;
            None where an equal output for different images is no sign of a mistake (bare class labels, an
            empty output).
    """

    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    digest: str | None = None


def _loose_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array (numpy or torch alike), or None when it is none."""
    if value is None:
        return None
    try:
        return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64)
    except Exception:
        return None


def _digest(*arrays: np.ndarray | None) -> str:
    h = hashlib.sha1()
    for a in arrays:
        if a is not None:
            h.update(repr(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def detection_parts(out: Any) -> tuple[Any, Any]:
    """``(boxes, scores)`` of one raw detector output: a :class:`~benchsuite.api.Detections`, a dict with ``boxes``
    and ``scores`` or a ``(boxes, scores, labels)`` tuple (anything else: ``(None, None)``)."""
    if hasattr(out, "boxes"):
        return out.boxes, getattr(out, "scores", None)
    if isinstance(out, Mapping):
        return out.get("boxes"), out.get("scores")
    if isinstance(out, (tuple, list)) and len(out) == 3:
        return out[0], out[1]
    return None, None


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

    def call(self, pipeline: Any, images: Any) -> Any:
        """The raw output of the prediction method for ``images``, unvalidated (what :meth:`parts` reads)."""
        raise NotImplementedError

    def validate_all(self, raw: Any, images: Any, num_classes: int) -> list[Any]:
        """:meth:`predict`'s validated outputs from the raw output of :meth:`call`."""
        raise NotImplementedError

    def parts(self, raw: Any, images: Any) -> list[OutputParts]:
        """One :class:`OutputParts` per image of the raw output of :meth:`call` (default: nothing to judge)."""
        return [OutputParts() for _ in range(len(images))]


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

    def call(self, pipeline: Any, images: np.ndarray) -> Any:
        return getattr(pipeline, self.method)(images)

    def validate_all(self, raw: Any, images: np.ndarray, num_classes: int) -> list[Any]:
        return [self.validate(raw, len(images), num_classes)]

    def predict(self, pipeline: Any, images: np.ndarray, num_classes: int) -> list[Any]:
        return self.validate_all(self.call(pipeline, images), images, num_classes)

    def parts(self, raw: Any, images: np.ndarray) -> list[OutputParts]:
        """Per image: its row of the scores, if any (``labels`` and ``scores`` read from an object or a dict); an
        output of bare labels is not judged (a weak classifier may give every image one class)."""
        scores = raw.get("scores") if isinstance(raw, Mapping) else getattr(raw, "scores", None)
        labels = raw.get("labels") if isinstance(raw, Mapping) else getattr(raw, "labels", raw)
        scores, labels = _loose_array(scores), _loose_array(labels)
        n = len(images)
        if scores is None or scores.ndim != 2 or len(scores) != n:
            return [OutputParts() for _ in range(n)]
        rows = labels if labels is not None and labels.shape == (n,) else np.zeros(n)
        return [OutputParts(scores=scores[i], digest=_digest(rows[i:i + 1], scores[i])) for i in range(n)]

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
        boxes: ``boxes(raw_output) -> (boxes, scores)`` for a task whose outputs hold ``x1, y1, x2, y2`` pixel
            boxes (:func:`detection_parts`; a proposer's output is its boxes: ``lambda out: (out, None)``): the
            semantic checks then judge its boxes, scores and whether the output depends on the image. None: the
            outputs hold no boxes (not judged).
    """

    def __init__(self, method: str, validate: Callable[[Any, int, int, int, str], Any], noun: str = "results",
                 rtol: float = 1e-5, atol: float = 1e-4,
                 boxes: Callable[[Any], tuple[Any, Any]] | None = None):
        self.method, self.validate, self.noun, self.rtol, self.atol = method, validate, noun, rtol, atol
        self.boxes = boxes

    def inputs(self, test: Any) -> list[np.ndarray]:
        return [test.load_image(i) for i in range(len(test))]

    def _batch(self, pipeline: Any) -> Callable[[list[np.ndarray]], Any]:
        return getattr(pipeline, f"{self.method}_batch")

    def call(self, pipeline: Any, images: list[np.ndarray]) -> Any:
        return self._batch(pipeline)(list(images))

    def parts(self, raw: Any, images: list[np.ndarray]) -> list[OutputParts]:
        """Per image: its boxes and scores as returned, and a digest of both (None for an empty output)."""
        if self.boxes is None or not isinstance(raw, (list, tuple)) or len(raw) != len(images):
            return [OutputParts() for _ in images]
        out = []
        for one in raw:
            try:
                boxes, scores = self.boxes(one)
            except Exception:
                boxes, scores = None, None
            b, sc = _loose_array(boxes), _loose_array(scores)
            if b is not None and (b.ndim != 2 or b.shape[1] != 4):
                b = b.reshape(-1, 4) if b.size % 4 == 0 and b.ndim <= 2 else None
            sc = sc.reshape(-1) if sc is not None else None
            out.append(OutputParts(b, sc, _digest(b, sc) if b is not None and len(b) else None))
        return out

    def predict(self, pipeline: Any, images: list[np.ndarray], num_classes: int) -> list[Any]:
        return self.validate_all(self.call(pipeline, images), images, num_classes)

    def validate_all(self, outs: Any, images: list[np.ndarray], num_classes: int) -> list[Any]:
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
