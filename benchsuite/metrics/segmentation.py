"""Semantic segmentation metrics: pure functions, label maps in, numbers out.

Inputs are label maps ``(H, W)`` of integer class indices ``0 .. C-1``; in the truth, :data:`VOID` (255) marks
pixels that are never scored (neither as truth nor as prediction); a prediction must name a class at every pixel.

**The evidence** of one image (:func:`image_evidence`), from which every metric and every bootstrap interval
over images is computed (:class:`SegmentationEvidence`, one row per image):

- its confusion matrix ``n`` ``(C, C)``: ``n[i, j]`` = non-void pixels of true class ``i`` predicted ``j``;
- its boundary counts ``(C, 4)`` (below);
- where an instance map exists, one row per object: class, area, and its TP / FN / FP pixels (below).

**The four metrics of the FCN paper** (Long, Shelhamer & Darrell 2015, section 5), from the confusion matrix
summed over the images, with ``t_i = sum_j n[i, j]`` the pixels of class ``i`` and ``n_cl`` the number of classes
over which the mean is taken:

- pixel accuracy ``sum_i n[i, i] / sum_i t_i``;
- mean (class) accuracy ``(1 / n_cl) sum_i n[i, i] / t_i``, over the classes with ``t_i > 0``;
- mean IU ``(1 / n_cl) sum_i n[i, i] / (t_i + sum_j n[j, i] - n[i, i])``, over the classes whose union (the
  denominator) is not empty: a class predicted but absent from the truth counts with IU 0, a class neither
  present nor predicted is left out (the paper's reference code takes ``nanmean`` the same way);
- frequency-weighted IU ``(sum_k t_k)^-1 sum_i t_i n[i, i] / (t_i + sum_j n[j, i] - n[i, i])``.

Per-class IoU is the IU of each class (NaN where its union is empty); per-class accuracy is its recall.

**IoU by object size** (where instance masks exist). An object is the set of pixels of one instance number
(``1 .. 254``) of the instance map; its class ``c`` is the most frequent non-void truth class over those pixels
(ties: the smaller index), and its truth region ``T`` is its pixels of truth class ``c``; its area ``|T|``
places it in COCO's buckets: small ``|T| < 32^2``, medium ``32^2 <= |T| < 96^2``, large ``|T| >= 96^2``. Then

- ``TP = |T & pred == c|``, ``FN = |T| - TP``;
- ``FP`` = the false-positive pixels of class ``c`` (predicted ``c``, truth neither ``c`` nor void) that lie in
  a connected region (8-connectivity) of the predicted ``c`` mask that overlaps ``T``: the object's own
  over-extension. A region that overlaps several objects of class ``c`` gives each of its false-positive
  pixels to the object whose truth region is nearest (Euclidean distance; ties to the smaller instance
  number); a predicted region touching no object of ``c`` is charged to none (it still lowers the class IoU);
- the object's IoU is ``TP / (TP + FN + FP)``, and a bucket's IoU (``iou_small`` ...) is the mean over the
  objects in it (NaN when the bucket is empty).

**Boundary F1** (the boundary F-measure of BSDS / DAVIS, per class as Csurka et al. 2013), tolerance ``d``
(:data:`BOUNDARY_TOLERANCE` = 3 px). The boundary of a class mask is its pixels with a 4-neighbour inside the
image outside the mask (the image border is no boundary). For class ``c``: the truth boundary of ``truth == c``
(a void neighbour counts as outside, so an object edge met by a void band is an edge), the predicted boundary
of ``pred == c``. A predicted boundary pixel is *matched* when a truth boundary pixel lies within Euclidean
distance ``d``, and vice versa (distance matching, not one-to-one). Precision = matched / all predicted
boundary pixels, leaving out those on void truth pixels; recall = matched / all truth boundary pixels (matched
by any predicted boundary pixel, on void or not). Counts are summed over images before dividing (as BSDS
pools them); ``F = 2PR / (P + R)`` per class, 0 when the class has boundary pixels on one side only, left out
when it has none on either; ``boundary_f1`` is the mean over the classes not left out.

**Bootstrap intervals** over images (the conventions of :mod:`benchsuite.metrics.bootstrap`): a resample is a
vector of draw counts per image; every metric above is a function of count-weighted sums of the per-image
evidence, so no resampled set is materialised; percentile intervals at 95%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from benchsuite.metrics.bootstrap import LEVEL, percentile_interval, resample_weights
from benchsuite.metrics.classification import confusion_matrix as _label_confusion

VOID = 255
#: pixels: a boundary pixel within this Euclidean distance of one on the other side is matched
BOUNDARY_TOLERANCE = 3
#: COCO's object area thresholds (pixels): small below the first, large from the second
AREA_SMALL, AREA_LARGE = 32**2, 96**2
SIZE_BUCKETS = ("small", "medium", "large")
SEGMENTATION_RESAMPLES = 1000
#: columns of an instance row of :class:`SegmentationEvidence`
INSTANCE_COLUMNS = ("class", "area", "tp", "fn", "fp")
#: columns of a class row of the boundary counts
BOUNDARY_COLUMNS = ("pred_matched", "pred_total", "true_matched", "true_total")
#: the metrics :func:`metrics_for_weights` computes, in order
SCALAR_METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "boundary_f1",
                  "iou_small", "iou_medium", "iou_large")


# ---------------------------------------------------------------------------------------------- checks
def _check_pair(truth: np.ndarray, pred: np.ndarray, num_classes: int, void: int) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(truth), np.asarray(pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"truth {t.shape} and prediction {p.shape}: expected two (H, W) label maps of one shape")
    if t.size:
        bad_t = (t < 0) | ((t >= num_classes) & (t != void))
        if bad_t.any():
            raise ValueError(f"truth value {int(t[bad_t][0])} outside 0..{num_classes - 1} and not void ({void})")
        if p.min() < 0 or p.max() >= num_classes:
            raise ValueError(f"prediction value {int(p[(p < 0) | (p >= num_classes)][0])} outside "
                             f"0..{num_classes - 1}")
    return t.astype(np.int64, copy=False), p.astype(np.int64, copy=False)


# ------------------------------------------------------------------------------------------- confusion
def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int, void: int = VOID) -> np.ndarray:
    """``(C, C)`` int64 pixel counts of one image, rows true class, columns predicted; void truth left out."""
    t, p = _check_pair(truth, pred, num_classes, void)
    keep = t != void
    return _label_confusion(t[keep], p[keep], num_classes)


def _batch(cm: np.ndarray) -> np.ndarray:
    return np.asarray(cm, np.float64).reshape((-1, *np.shape(cm)[-2:]))


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """``(..., C)`` float64 IoU of every class from ``(..., C, C)`` confusion matrices; NaN where the union is empty."""
    c = np.asarray(cm, np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    union = c.sum(axis=-1) + c.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """``(..., C)`` float64 recall of every class; NaN for a class without true pixels."""
    c = np.asarray(cm, np.float64)
    support = c.sum(axis=-1)
    return np.where(support > 0, np.diagonal(c, axis1=-2, axis2=-1) / np.where(support > 0, support, 1), np.nan)


def _nanmean(x: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(x)
    return np.where(valid.any(axis=-1), np.nansum(x, axis=-1) / np.maximum(valid.sum(axis=-1), 1), np.nan)


def fcn_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU (the module docstring's definitions)
    of ``(..., C, C)`` confusion matrices: each ``(...)`` float64 (NaN when there is no non-void pixel)."""
    c = np.asarray(cm, np.float64)
    total = c.sum(axis=(-2, -1))
    support = c.sum(axis=-1)
    iou = per_class_iou(c)
    has = total > 0
    safe_total = np.where(has, total, 1)
    return {
        "pixel_accuracy": np.where(has, np.diagonal(c, axis1=-2, axis2=-1).sum(axis=-1) / safe_total, np.nan),
        "mean_accuracy": _nanmean(per_class_accuracy(c)),
        "mean_iou": _nanmean(iou),
        "fw_iou": np.where(has, np.nansum(support * np.nan_to_num(iou), axis=-1) / safe_total, np.nan),
    }


# -------------------------------------------------------------------------------------------- boundaries
def boundary_map(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the pixels of ``mask`` with a 4-neighbour inside the image that is outside ``mask``."""
    m = np.asarray(mask, bool)
    out = np.zeros_like(m)
    out[:, :-1] |= m[:, :-1] & ~m[:, 1:]
    out[:, 1:] |= m[:, 1:] & ~m[:, :-1]
    out[:-1, :] |= m[:-1, :] & ~m[1:, :]
    out[1:, :] |= m[1:, :] & ~m[:-1, :]
    return out


def _disk(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy * yy + xx * xx <= radius * radius).astype(np.uint8)


def _within(points: np.ndarray, radius: float) -> np.ndarray:
    """``(H, W)`` bool: pixels within Euclidean distance ``radius`` of a True pixel of ``points``."""
    if not points.any():
        return np.zeros_like(points)
    return cv2.dilate(points.astype(np.uint8), _disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def boundary_counts(truth: np.ndarray, pred: np.ndarray, num_classes: int, tolerance: float = BOUNDARY_TOLERANCE,
                    void: int = VOID) -> np.ndarray:
    """``(C, 4)`` int64 per class: predicted boundary pixels matched, predicted boundary pixels counted, truth
    boundary pixels matched, truth boundary pixels (:data:`BOUNDARY_COLUMNS`; the module docstring's rules)."""
    t, p = _check_pair(truth, pred, num_classes, void)
    out = np.zeros((num_classes, 4), np.int64)
    present = np.union1d(np.unique(t[t != void]), np.unique(p))
    scored = t != void
    for c in present.tolist():
        bt, bp = boundary_map(t == c), boundary_map(p == c)
        if not (bt.any() or bp.any()):
            continue
        rows, cols = np.nonzero(bt | bp)
        pad = int(np.ceil(tolerance)) + 1  # a crop around both boundaries keeps every distance up to the tolerance
        sl = (slice(max(rows.min() - pad, 0), rows.max() + pad + 1),
              slice(max(cols.min() - pad, 0), cols.max() + pad + 1))
        bt, bp, sc = bt[sl], bp[sl], scored[sl]
        near_t, near_p = _within(bt, tolerance), _within(bp, tolerance)
        counted = bp & sc
        out[c] = ((counted & near_t).sum(), counted.sum(), (bt & near_p).sum(), bt.sum())
    return out


def boundary_f1_per_class(counts: np.ndarray) -> np.ndarray:
    """``(..., C)`` float64 boundary F1 of every class from ``(..., C, 4)`` summed boundary counts."""
    c = np.asarray(counts, np.float64)
    pm, pt, tm, tt = (c[..., k] for k in range(4))
    precision = np.where(pt > 0, pm / np.where(pt > 0, pt, 1), 0.0)
    recall = np.where(tt > 0, tm / np.where(tt > 0, tt, 1), 0.0)
    total = precision + recall
    f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return np.where((pt > 0) | (tt > 0), f1, np.nan)


# --------------------------------------------------------------------------------------------- instances
def size_bucket(area: np.ndarray, thresholds: tuple[float, float] = (AREA_SMALL, AREA_LARGE)) -> np.ndarray:
    """Size bucket of object areas in pixels: 0 small (below ``thresholds[0]``), 1 medium, 2 large (from
    ``thresholds[1]``); COCO's 32^2 and 96^2 by default."""
    a = np.asarray(area)
    return (a >= thresholds[0]).astype(np.int64) + (a >= thresholds[1]).astype(np.int64)


def smallest_objects_thresholds(areas: np.ndarray, fraction: float = 1 / 3) -> tuple[float, float]:
    """Area bounds for :func:`size_bucket` whose small bucket holds the smallest ``fraction`` of the objects of
    ``areas`` (the ``ceil(K * fraction)`` smallest, and any object as small as the largest of them), the rest
    medium: ``(t, inf)``. Size buckets relative to the data, for a split whose objects are all large by COCO's bounds
    (Penn-Fudan's people); ``(0, inf)`` (no small object) without objects."""
    a = np.sort(np.asarray(areas, np.float64).reshape(-1))
    if not len(a) or not 0 < fraction <= 1:
        return 0.0, float("inf")
    k = int(np.ceil(len(a) * fraction))
    return float(a[k - 1]) + 1.0, float("inf")


_EIGHT = np.ones((3, 3), bool)


def instance_counts(truth: np.ndarray, pred: np.ndarray, instances: np.ndarray, num_classes: int,
                    void: int = VOID) -> np.ndarray:
    """``(K, 5)`` int64 one row per object of the instance map (ascending instance number): class, area, TP, FN,
    FP (:data:`INSTANCE_COLUMNS`; the module docstring's definitions). Instance values 0 and ``void`` are no object;
    an object without a non-void truth pixel is left out."""
    t, p = _check_pair(truth, pred, num_classes, void)
    inst = np.asarray(instances)
    if inst.shape != t.shape:
        raise ValueError(f"instance map {inst.shape} for label maps {t.shape}: expected one shape")
    inst = inst.astype(np.int64, copy=False)
    numbers = [int(v) for v in np.unique(inst) if v != 0 and v != void]
    rows: list[list[int]] = []
    regions: list[np.ndarray] = []
    for j in numbers:
        of_j = t[inst == j]
        of_j = of_j[of_j != void]
        if not len(of_j):
            continue
        c = int(np.argmax(np.bincount(of_j, minlength=num_classes)))
        region = (inst == j) & (t == c)
        tp = int((region & (p == c)).sum())
        area = int(region.sum())
        rows.append([c, area, tp, area - tp, 0])
        regions.append(region)
    for c in sorted({r[0] for r in rows}):
        members = [k for k, r in enumerate(rows) if r[0] == c]
        components, _ = ndimage.label(p == c, structure=_EIGHT)
        false_pos = (p == c) & (t != c) & (t != void)
        owners: dict[int, list[int]] = {}  # predicted component -> the objects of class c it overlaps
        for k in members:
            for comp in np.unique(components[regions[k]]).tolist():
                if comp:
                    owners.setdefault(comp, []).append(k)
        boxes = ndimage.find_objects(components)
        distances: dict[int, np.ndarray] = {}  # object -> distance of every pixel to its truth region
        for comp, ks in owners.items():
            sl = boxes[comp - 1]
            candidates = false_pos[sl] & (components[sl] == comp)
            if not candidates.any():
                continue
            if len(ks) == 1:
                rows[ks[0]][4] += int(candidates.sum())
                continue
            # several objects: nearest truth region wins (distances over the whole image, exact Euclidean)
            for k in ks:
                if k not in distances:
                    distances[k] = ndimage.distance_transform_edt(~regions[k])
            distance = np.stack([distances[k][sl][candidates] for k in ks])
            winner = np.argmin(distance, axis=0)  # first minimum: the smaller instance number (ks ascend)
            for idx, k in enumerate(ks):
                rows[k][4] += int((winner == idx).sum())
    return np.array(rows, np.int64).reshape(-1, 5)


# ---------------------------------------------------------------------------------------------- evidence
@dataclass
class ImageEvidence:
    """The evidence of one image (see the module docstring): ``confusion (C, C)``, ``boundary (C, 4)``,
    ``instances (K, 5)`` (None without an instance map)."""

    confusion: np.ndarray
    boundary: np.ndarray
    instances: np.ndarray | None = None


def image_evidence(truth: np.ndarray, pred: np.ndarray, num_classes: int, instances: np.ndarray | None = None,
                   tolerance: float = BOUNDARY_TOLERANCE, void: int = VOID) -> ImageEvidence:
    """Everything the metrics need from one image: truth and prediction ``(H, W)`` label maps (truth may hold
    ``void``), an optional ``(H, W)`` instance map."""
    return ImageEvidence(
        confusion_matrix(truth, pred, num_classes, void),
        boundary_counts(truth, pred, num_classes, tolerance, void),
        None if instances is None else instance_counts(truth, pred, instances, num_classes, void),
    )


@dataclass
class SegmentationEvidence:
    """The per-image evidence of a scored split, what the report's tables and intervals are computed from.

    Attributes:
        confusion: ``(n, C, C)`` int64 per-image confusion matrices.
        boundary: ``(n, C, 4)`` int64 per-image boundary counts (:data:`BOUNDARY_COLUMNS`).
        instance_image: ``(K,)`` int64 the image of each object.
        instances: ``(K, 5)`` int64 the objects (:data:`INSTANCE_COLUMNS`).
        tolerance: the boundary tolerance in pixels.
        has_instances: ``(n,)`` bool, images scored with an instance map (the size metrics use those only).
    """

    confusion: np.ndarray
    boundary: np.ndarray
    instance_image: np.ndarray
    instances: np.ndarray
    tolerance: float = BOUNDARY_TOLERANCE
    has_instances: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    FIELDS = ("confusion", "boundary", "instance_image", "instances", "has_instances")

    @property
    def num_images(self) -> int:
        return len(self.confusion)

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[-1])

    @classmethod
    def from_images(cls, images: Sequence[ImageEvidence], num_classes: int,
                    tolerance: float = BOUNDARY_TOLERANCE) -> SegmentationEvidence:
        n = len(images)
        confusion = np.zeros((n, num_classes, num_classes), np.int64)
        boundary = np.zeros((n, num_classes, 4), np.int64)
        rows, where = [], []
        for i, ev in enumerate(images):
            confusion[i], boundary[i] = ev.confusion, ev.boundary
            if ev.instances is not None:
                rows.append(np.asarray(ev.instances, np.int64).reshape(-1, 5))
                where.append(np.full(len(rows[-1]), i, np.int64))
        return cls(confusion, boundary, np.concatenate(where) if where else np.zeros(0, np.int64),
                   np.concatenate(rows) if rows else np.zeros((0, 5), np.int64), float(tolerance),
                   np.array([ev.instances is not None for ev in images], bool))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The evidence as named arrays (for an ``npz`` file); :meth:`from_arrays` reads them back."""
        return {"tolerance": np.asarray(self.tolerance, np.float64),
                **{name: np.asarray(getattr(self, name)) for name in self.FIELDS}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> SegmentationEvidence:
        return cls(*(np.asarray(arrays[name]) for name in cls.FIELDS[:4]), float(arrays["tolerance"]),
                   np.asarray(arrays["has_instances"], bool))


def _instance_iou(rows: np.ndarray) -> np.ndarray:
    tp, fn, fp = rows[:, 2], rows[:, 3], rows[:, 4]
    denom = tp + fn + fp
    return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def metrics_for_weights(ev: SegmentationEvidence, weights: np.ndarray,
                        area_thresholds: tuple[float, float] = (AREA_SMALL, AREA_LARGE)) -> dict[str, np.ndarray]:
    """Every scalar metric (:data:`SCALAR_METRICS`) for each row of image weights ``(B, n)`` (draw counts of a
    bootstrap resample; all ones for the split as scored): each a ``(B,)`` float64 array. ``area_thresholds``: the
    object size buckets' bounds in pixels (:func:`size_bucket`)."""
    w = np.atleast_2d(np.asarray(weights, np.float64))
    c = ev.num_classes
    out = fcn_scores((w @ ev.confusion.reshape(ev.num_images, c * c)).reshape(-1, c, c))
    out["boundary_f1"] = _nanmean(boundary_f1_per_class((w @ ev.boundary.reshape(ev.num_images, c * 4))
                                                        .reshape(-1, c, 4)))
    rows = ev.instances
    iou = _instance_iou(rows)
    bucket = size_bucket(rows[:, 1], area_thresholds)
    wk = w[:, ev.instance_image]  # (B, K): each object weighs what its image weighs
    for b, name in enumerate(SIZE_BUCKETS):
        sel = (bucket == b) & ~np.isnan(iou)
        mass = wk[:, sel].sum(axis=1)
        total = wk[:, sel] @ iou[sel]
        out[f"iou_{name}"] = np.where(mass > 0, total / np.where(mass > 0, mass, 1), np.nan)
    return out


def segmentation_metrics(ev: SegmentationEvidence, classes: Sequence[str],
                         area_thresholds: tuple[float, float] = (AREA_SMALL, AREA_LARGE)) -> dict[str, object]:
    """The record's metrics block: the scalar metrics, per-class IoU, accuracy and boundary F1 (by class name),
    object counts per size bucket (and the buckets' bounds), the boundary tolerance and the number of images."""
    if len(classes) != ev.num_classes:
        raise ValueError(f"{len(classes)} class names for {ev.num_classes} classes")
    ones = np.ones((1, ev.num_images))
    block: dict[str, object] = {k: float(v[0]) for k, v in metrics_for_weights(ev, ones, area_thresholds).items()}
    total = ev.confusion.sum(axis=0)
    block["per_class_iou"] = dict(zip(classes, per_class_iou(total).tolist()))
    block["per_class_accuracy"] = dict(zip(classes, per_class_accuracy(total).tolist()))
    block["per_class_boundary_f1"] = dict(zip(classes, boundary_f1_per_class(ev.boundary.sum(axis=0)).tolist()))
    counts = np.bincount(size_bucket(ev.instances[:, 1], area_thresholds), minlength=3)
    block["objects_by_size"] = {name: int(n) for name, n in zip(SIZE_BUCKETS, counts)}
    block["size_area_thresholds_px"] = [float(a) for a in area_thresholds]
    block["boundary_tolerance_px"] = float(ev.tolerance)
    block["num_images"] = ev.num_images
    return block


def segmentation_resamples(ev: SegmentationEvidence, resamples: int = SEGMENTATION_RESAMPLES, seed: int = 0,
                           area_thresholds: tuple[float, float] = (AREA_SMALL, AREA_LARGE)) -> dict[str, np.ndarray]:
    """``(resamples,)`` bootstrap values of every scalar metric, all from the same image draws."""
    if ev.num_images == 0:
        return {k: np.full(resamples, np.nan) for k in SCALAR_METRICS}
    blocks = [metrics_for_weights(ev, w, area_thresholds) for w in resample_weights(ev.num_images, resamples, seed)]
    return {k: np.concatenate([b[k] for b in blocks]) for k in SCALAR_METRICS}


def segmentation_intervals(ev: SegmentationEvidence, level: float = LEVEL, resamples: int = SEGMENTATION_RESAMPLES,
                           seed: int = 0, area_thresholds: tuple[float, float] = (AREA_SMALL, AREA_LARGE)
                           ) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap interval of every scalar metric (None where no resample gives a value)."""
    values = segmentation_resamples(ev, resamples, seed, area_thresholds)
    return {k: percentile_interval(v, level) for k, v in values.items()}


def evaluate_segmentation(truths: Sequence[np.ndarray], preds: Sequence[np.ndarray], classes: Sequence[str],
                          instances: Sequence[np.ndarray | None] | None = None,
                          tolerance: float = BOUNDARY_TOLERANCE, void: int = VOID
                          ) -> tuple[dict[str, object], SegmentationEvidence]:
    """Score a split: ``(metrics block, evidence)`` from per-image truth and predicted label maps (and instance
    maps, or None). For a split too large to hold, call :func:`image_evidence` per image and
    :meth:`SegmentationEvidence.from_images` instead."""
    if len(truths) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(truths)} images")
    inst = list(instances) if instances is not None else [None] * len(truths)
    if len(inst) != len(truths):
        raise ValueError(f"{len(inst)} instance maps for {len(truths)} images")
    per_image = [image_evidence(t, p, len(classes), m, tolerance, void) for t, p, m in zip(truths, preds, inst)]
    ev = SegmentationEvidence.from_images(per_image, len(classes), tolerance)
    return segmentation_metrics(ev, classes), ev
