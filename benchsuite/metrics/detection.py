"""Detection metrics: one matching core (:func:`match`) and the numbers read from its evidence (:func:`summarize`):
Pascal VOC AP, COCO AP, the log-average miss rate and precision/recall curves, from plain per-image arrays.

Inputs are per-image lists (no data classes): ground-truth boxes ``(M_i, 4)``, integer labels ``(M_i,)``
and "difficult" flags ``(M_i,)``; detections as boxes ``(D_i, 4)``, scores ``(D_i,)`` and labels
``(D_i,)``. Boxes follow :mod:`benchsuite.ops.boxes` (``x1, y1, x2, y2`` pixels, area ``w * h``, no
"+1"). The order of the images matters only to break ties between equal scores: detections are taken in
descending score order, stably (equal scores keep image order, then the order within the image).

**Matching** (:func:`match`) gives every detection an outcome, TP (true positive), FP (false positive) or
IGNORED (neither), and the object it was assigned, at each IoU threshold ``t``. An object is *ignored* when it
is difficult or (with an ``area`` range) its area ``w * h`` lies outside the range. Two rules:

- ``rule="voc"``, the devkit's ``VOCevaldet.m`` (``t = 0.5`` by default): each detection is assigned the object
  of its class and image with the highest IoU among *all* of them (taken or not, ignored or not; on equal IoU
  the first object). If that IoU is ``>= t``: an ignored object makes the detection IGNORED; an object already
  taken by a higher-scoring detection makes it a FP (a duplicate: it does *not* move on to its next-best
  object); otherwise it is a TP and takes the object. An IoU below ``t`` (or no object) is a FP.
- ``rule="coco"``, pycocotools' ``COCOeval`` for ``iouType="bbox"``, ``maxDets=100`` (``t`` in
  ``0.50:0.05:0.95`` by default): per image and class only the 100 highest-scoring detections count (the rest
  are IGNORED). Each detection takes, among the objects of its class and image *not yet taken* at ``t`` with
  IoU ``>= t``, a regular one if there is one (else an ignored one), the one with the highest IoU (on equal IoU
  the later object, pycocotools' loop): unlike the devkit, a detection whose best object is taken falls to the
  next free one. Matched to a regular object: TP; to an ignored one: IGNORED; unmatched: FP, or IGNORED when the
  detection's own area is outside the range. pycocotools' ``iscrowd`` is never set: IoU stays standard.

COCO's area ranges are inclusive at both ends, as in pycocotools: small ``[0, 32^2]``, medium ``[32^2, 96^2]``,
large ``[96^2, 1e10]``, all ``[0, 1e10]``.

**Summaries** (:func:`summarize`) compute only the parts asked for (:data:`PARTS`):

- ``"voc"``: ``map50`` and ``map50_voc07``, per class ``ap50`` / ``ap50_voc07``, from the VOC matching at 0.5.
  Precision is ``TP / (TP + FP)`` over the non-ignored detections of a class (dropping ignored detections
  changes neither AP, as in the devkit where they repeat the previous point), recall ``TP / objects`` over the
  non-difficult objects. ``ap50`` is the area under the precision envelope (VOC2010+ "all points"),
  ``ap50_voc07`` the mean of the envelope at the 11 recall levels ``k / 10`` (exact tenths: a recall of exactly
  3/10 reaches the level 0.3, which the common Python port's ``np.arange(0, 1.1, 0.1)`` misses by one ulp).
- ``"coco"``: ``coco_ap``, ``ap50``, ``ap75`` and per class ``coco_ap`` (pycocotools' ``stats[0..2]``), from
  the COCO matching over all areas; ``"coco_sizes"``: ``ap_small``, ``ap_medium``, ``ap_large``
  (``stats[3..5]``), one COCO matching per range. Precision is made monotone and read at the 101 recall levels
  ``0:0.01:1`` (0 past the last recall); AP is the mean over thresholds and recall levels, then over the classes
  that have a non-ignored object.
- ``"lamr"`` (only with exactly one class): the log-average miss rate of Dollár et al.'s Caltech pedestrian
  benchmark (``bbGt.m compRoc`` + ``dbEval.m``) on the VOC matching at 0.5 (ignored detections dropped): FPPI
  is cumulative FP over the number of images, miss rate ``1 - recall``. At each of the 9 reference FPPI values
  ``10 ** linspace(-2, 0, 9)`` the miss rate is the one of the last operating point whose FPPI is ``<= ref``,
  or 1 when there is none; the curve is not extrapolated past the last detection. LAMR is
  ``exp(mean(log(max(mr, 1e-10))))``.
- ``"pr_curves"``: per class the raw VOC curve at 0.5, one point per non-ignored detection, at most 200.

Undefined values are NaN, never 0: a class without (non-difficult) ground truth has NaN AP and is left out of
the means; ``ap_small`` is NaN when no object is small; everything is NaN without ground truth.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from benchsuite.ops.boxes import as_boxes, box_area, paired_box_iou

Rule = Literal["voc", "coco"]
Area = Literal["all", "small", "medium", "large"]

VOC_IOU = 0.5
#: pycocotools' IoU and recall thresholds, built the same way so that comparisons agree bit for bit.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_LEVELS = np.linspace(0.0, 1.0, 101)
COCO_MAX_DETS = 100
COCO_AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
                    "large": (96.0**2, 1e5**2)}
LAMR_FPPI = 10.0 ** np.linspace(-2.0, 0.0, 9)
#: at most this many points per class in ``pr_curves``.
PR_CURVE_POINTS = 200
#: what :func:`summarize` can compute (see the module docstring); all of them make the record's metrics block.
PARTS = ("voc", "coco", "coco_sizes", "lamr", "pr_curves")

#: a detection's outcome in :attr:`Matches.status`
TP, FP, IGNORED = 1, 0, -1


# ----------------------------------------------------------------------------------------------- AP formulas


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2010+ all-point AP: area under the monotone envelope of precision.

    Args:
        recall: ``(N,)`` non-decreasing recall after each detection (in score order).
        precision: ``(N,)`` precision after each detection.
    """
    mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[step] - mrec[step - 1]) * mpre[step]))


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 11-point AP: mean over ``t = 0, 0.1, ..., 1`` of the best precision at recall ``>= t`` (0 if
    recall never reaches ``t``). Same arguments as :func:`voc_ap`."""
    rec = np.asarray(recall, np.float64)
    pre = np.asarray(precision, np.float64)
    if len(rec) == 0:
        return 0.0
    envelope = np.maximum.accumulate(pre[::-1])[::-1]
    first = np.searchsorted(rec, np.arange(11) / 10.0, side="left")
    values = np.where(first < len(rec), envelope[np.minimum(first, len(rec) - 1)], 0.0)
    return float(values.sum() / 11.0)


def log_average_miss_rate(fppi: np.ndarray, miss_rate: np.ndarray, refs: np.ndarray = LAMR_FPPI) -> float:
    """Log-average miss rate over the reference FPPI values ``refs`` (see the module docstring).

    Args:
        fppi: ``(N,)`` non-decreasing false positives per image after each detection in score order.
        miss_rate: ``(N,)`` miss rate after each detection.
    """
    xs = np.concatenate([[-np.inf], np.asarray(fppi, np.float64)])
    ys = np.concatenate([[1.0], np.asarray(miss_rate, np.float64)])
    at = ys[np.searchsorted(xs, refs, side="right") - 1]
    return float(np.exp(np.mean(np.log(np.maximum(at, 1e-10)))))


# ------------------------------------------------------------------------------------------------ inputs


def _flatten(boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], extra: Sequence[np.ndarray] | None,
             num_classes: int, what: str, extra_dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every image's arrays concatenated: ``(boxes (K, 4) float64, labels (K,) int64, extra (K,), offsets
    (N + 1,))`` where ``extra`` holds the difficult flags (bool) or the scores (float64) and image ``i`` owns
    rows ``offsets[i]:offsets[i + 1]``."""
    if len(labels) != len(boxes) or (extra is not None and len(extra) != len(boxes)):
        raise ValueError(f"{what}: lists of different lengths")
    b = [as_boxes(x, f"{what} boxes of image {i}") for i, x in enumerate(boxes)]
    lab = [np.asarray(x).reshape(-1) for x in labels]
    ext = [np.asarray(x, extra_dtype).reshape(-1) for x in extra] if extra is not None else [
        np.zeros(len(x), extra_dtype) for x in b]
    for i, (bi, li, ei) in enumerate(zip(b, lab, ext)):
        if not len(bi) == len(li) == len(ei):
            raise ValueError(f"{what} of image {i}: {len(bi)} boxes, {len(li)} labels, {len(ei)} flags/scores")
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in b], dtype=np.int64)]).astype(np.int64)
    flat_labels = np.concatenate(lab).astype(np.int64) if len(lab) else np.zeros(0, np.int64)
    if len(flat_labels) and (flat_labels.min() < 0 or flat_labels.max() >= num_classes):
        raise ValueError(f"{what}: labels must lie in [0, {num_classes})")
    flat_extra = np.concatenate(ext) if len(ext) else np.zeros(0, extra_dtype)
    if extra_dtype is np.float64 and not np.isfinite(flat_extra).all():
        raise ValueError(f"{what}: scores must be finite")
    return np.concatenate(b) if len(b) else np.zeros((0, 4)), flat_labels, flat_extra, offsets


def _run_starts(ids: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a non-empty array."""
    return np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))


def _same_group_pairs(det_key: np.ndarray, gt_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, ground truth) pairs with equal keys, grouped by detection (ascending), ground
    truth ascending within a detection. Vectorised: no loop over images or classes."""
    gt_order = np.argsort(gt_key, kind="stable")
    keys = gt_key[gt_order]
    lo = np.searchsorted(keys, det_key, side="left")
    counts = np.searchsorted(keys, det_key, side="right") - lo
    pair_det = np.repeat(np.arange(len(det_key), dtype=np.int64), counts)
    within = np.arange(len(pair_det)) - np.repeat(np.cumsum(counts) - counts, counts)
    return pair_det, gt_order[np.repeat(lo, counts) + within]


def _rank_in_group(key: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``(D,)`` rank of each detection by descending score (stable) among those with the same key."""
    order = np.lexsort((-scores, key))
    rank = np.empty(len(key), np.int64)
    if len(key):
        starts = _run_starts(key[order])
        sizes = np.diff(np.append(starts, len(key)))
        rank[order] = np.arange(len(key)) - np.repeat(starts, sizes)
    return rank


# ---------------------------------------------------------------------------------------------- the core


@dataclass(frozen=True, eq=False)
class Matches:
    """Every detection's outcome under one matching rule (see the module docstring), with the split it was
    matched on. Objects and detections are flattened image by image (image ``i`` owns detections
    ``det_offsets[i]:det_offsets[i + 1]`` and objects ``gt_offsets[i]:gt_offsets[i + 1]``, in their input
    order); ``T`` is the number of IoU thresholds, ``D`` of detections, ``M`` of objects, ``N`` of images.

    Attributes:
        rule: ``"voc"`` or ``"coco"``.
        iou_thresholds: ``(T,)`` float64.
        area: the COCO area range name whose outsiders are ignored, or None (every object counts).
        num_images, num_classes: ``N`` and the number of classes.
        gt_offsets, det_offsets: ``(N + 1,)`` int64 row offsets of each image.
        gt_label, gt_difficult, gt_area: ``(M,)`` int64 class, bool difficult flag, float64 area (pixels^2).
        det_image, det_label, det_score, det_area: ``(D,)`` int64 image index, int64 class, float64 score,
            float64 area.
        status: ``(T, D)`` int8 :data:`TP`, :data:`FP` or :data:`IGNORED` at each threshold.
        matched: ``(T, D)`` int64 flattened index of the object the detection was assigned (an index into the
            ``gt_*`` arrays; for ``"voc"`` also for duplicates and ignored detections), -1 for none.
    """

    rule: Rule
    iou_thresholds: np.ndarray
    area: Area | None
    num_images: int
    num_classes: int
    gt_offsets: np.ndarray
    gt_label: np.ndarray
    gt_difficult: np.ndarray
    gt_area: np.ndarray
    det_offsets: np.ndarray
    det_image: np.ndarray
    det_label: np.ndarray
    det_score: np.ndarray
    det_area: np.ndarray
    status: np.ndarray
    matched: np.ndarray
    #: every (detection, object) pair of the same image and class: ``(pair_det, pair_gt, pair_iou)``, grouped by
    #: detection; computed once by :func:`match` and shared by :meth:`rematch`
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)

    @property
    def gt_image(self) -> np.ndarray:
        """``(M,)`` int64 image index of each object."""
        return np.repeat(np.arange(self.num_images, dtype=np.int64), np.diff(self.gt_offsets))

    def rematch(self, rule: Rule, iou_thresholds: Sequence[float] | np.ndarray | None = None,
                area: Area | None = None) -> Matches:
        """The same split under another rule, thresholds or area range (the IoU pairs are reused)."""
        thresholds = np.asarray(_default_thresholds(rule) if iou_thresholds is None else iou_thresholds,
                                np.float64).reshape(-1)
        status, matched = _assign(self, rule, thresholds, area)
        return dataclasses.replace(self, rule=rule, iou_thresholds=thresholds, area=area, status=status,
                                   matched=matched)

    def devkit(self) -> Matches:
        """The devkit's matching of this split (rule ``"voc"``, IoU 0.5, no area range): itself when it is that."""
        if self.rule == "voc" and self.area is None and np.array_equal(self.iou_thresholds, [VOC_IOU]):
            return self
        return self.rematch("voc")

    def by_class(self) -> tuple[np.ndarray, np.ndarray]:
        """``(order (D,), bounds (C + 1,))``: detection indices sorted by class, each class in descending score
        order (stable); class ``c`` owns ``order[bounds[c]:bounds[c + 1]]``."""
        score_order = np.argsort(-self.det_score, kind="stable")
        order = score_order[np.argsort(self.det_label[score_order], kind="stable")]
        return order, np.searchsorted(self.det_label[order], np.arange(self.num_classes + 1))

    def per_image(self, values: np.ndarray) -> list[np.ndarray]:
        """``values (..., D)`` split along the last axis into one array per image (e.g. ``status[0]``)."""
        return np.split(values, self.det_offsets[1:-1], axis=-1)


def match(gt_boxes: Sequence[np.ndarray], gt_labels: Sequence[np.ndarray], gt_difficult: Sequence[np.ndarray] | None,
          det_boxes: Sequence[np.ndarray], det_scores: Sequence[np.ndarray], det_labels: Sequence[np.ndarray],
          num_classes: int, *, rule: Rule = "voc", iou_thresholds: Sequence[float] | np.ndarray | None = None,
          area: Area | None = None) -> Matches:
    """Match a split's detections to its objects (rules in the module docstring): the evidence every detection
    metric, bootstrap interval and gallery reads.

    Args:
        gt_boxes: per image ``(M_i, 4)`` float ground-truth boxes, ``x1, y1, x2, y2`` pixels.
        gt_labels: per image ``(M_i,)`` integer class indices in ``[0, num_classes)``.
        gt_difficult: per image ``(M_i,)`` bool "difficult" flags (None: none is difficult).
        det_boxes: per image ``(D_i, 4)`` float detections.
        det_scores: per image ``(D_i,)`` finite scores, higher is more confident.
        det_labels: per image ``(D_i,)`` integer class indices.
        num_classes: the number of classes.
        rule: ``"voc"`` (the devkit) or ``"coco"`` (pycocotools).
        iou_thresholds: the thresholds ``t`` (default: 0.5 for ``"voc"``, 0.50:0.05:0.95 for ``"coco"``).
        area: a COCO area range (:data:`COCO_AREA_RANGES`) whose outsiders are ignored; None: no range.

    Returns:
        :class:`Matches`; e.g. ``match(...).status[0]`` is the devkit's TP / FP / IGNORED of every detection.

    Raises:
        ValueError: lists of different lengths, boxes not ``(N, 4)``, labels out of range, scores not finite.
    """
    if len(det_boxes) != len(gt_boxes):
        raise ValueError(f"detections for {len(det_boxes)} images, ground truth for {len(gt_boxes)}")
    g_boxes, g_labels, g_difficult, g_offsets = _flatten(gt_boxes, gt_labels, gt_difficult, num_classes,
                                                         "ground truth", bool)
    d_boxes, d_labels, d_scores, d_offsets = _flatten(det_boxes, det_labels, det_scores, num_classes,
                                                      "detections", np.float64)
    n = len(gt_boxes)
    det_image = np.repeat(np.arange(n, dtype=np.int64), np.diff(d_offsets))
    gt_image = np.repeat(np.arange(n, dtype=np.int64), np.diff(g_offsets))
    pair_det, pair_gt = _same_group_pairs(det_image * num_classes + d_labels, gt_image * num_classes + g_labels)
    pairs = (pair_det, pair_gt, paired_box_iou(d_boxes[pair_det], g_boxes[pair_gt]))
    empty = np.zeros((0, 0))
    unmatched = Matches("voc", np.zeros(0), None, n, int(num_classes), g_offsets, g_labels, g_difficult.astype(bool),
                        box_area(g_boxes), d_offsets, det_image, d_labels, d_scores, box_area(d_boxes), empty,
                        empty, pairs)
    return unmatched.rematch(rule, iou_thresholds, area)


def _default_thresholds(rule: str) -> np.ndarray:
    if rule == "voc":
        return np.array([VOC_IOU])
    if rule == "coco":
        return COCO_IOU_THRESHOLDS
    raise ValueError(f"matching rule {rule!r}: expected 'voc' or 'coco'")


def _ignored_objects(m: Matches, area: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(objects (M,), detections (D,))`` bool: ignored objects (difficult or outside the area range) and
    detections outside the range (ignored when unmatched)."""
    if area is None:
        return m.gt_difficult, np.zeros(len(m.det_area), bool)
    if area not in COCO_AREA_RANGES:
        raise ValueError(f"area {area!r}: expected one of {sorted(COCO_AREA_RANGES)} or None")
    lo, hi = COCO_AREA_RANGES[area]
    return m.gt_difficult | (m.gt_area < lo) | (m.gt_area > hi), (m.det_area < lo) | (m.det_area > hi)


def _assign(m: Matches, rule: str, thresholds: np.ndarray, area: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(status, matched)``, each ``(T, D)``: the one place where a rule decides (see :class:`Matches`)."""
    _default_thresholds(rule)  # validates the rule
    gt_ignore, det_outside = _ignored_objects(m, area)
    n_det = len(m.det_score)
    score_order = np.argsort(-m.det_score, kind="stable")
    counted = np.ones(n_det, bool)
    if rule == "voc":
        matched, took = _best_object(m.pairs, gt_ignore, score_order, thresholds, n_det)
    else:
        rank = _rank_in_group(m.det_image * m.num_classes + m.det_label, m.det_score)
        counted = rank < COCO_MAX_DETS
        matched = _best_free_object(m.pairs, rank, gt_ignore, thresholds, n_det)
        took = matched >= 0
    status = np.full(matched.shape, FP, np.int8)
    status[(matched < 0) & det_outside] = IGNORED
    status[took] = TP
    status[(matched >= 0) & np.append(gt_ignore, False)[matched]] = IGNORED  # index -1 reads the False
    status[:, ~counted] = IGNORED
    return status, matched


def _best_object(pairs: tuple[np.ndarray, np.ndarray, np.ndarray], gt_ignore: np.ndarray, score_order: np.ndarray,
                 thresholds: np.ndarray, n_det: int) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's rule: ``(matched, took)`` ``(T, D)``: each detection's highest-IoU object (the first on equal
    IoU) where that IoU is ``>= t``, and whether it is the first detection in score order to claim that object
    (a regular one). A detection's choice never depends on the others', so all are decided at once."""
    pair_det, pair_gt, pair_iou = pairs
    matched = np.full((len(thresholds), n_det), -1, np.int64)
    took = np.zeros((len(thresholds), n_det), bool)
    if len(pair_det) == 0:
        return matched, took
    starts = _run_starts(pair_det)
    dets = pair_det[starts]
    best = np.maximum.reduceat(pair_iou, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(pair_det))))
    pos = np.where(pair_iou == best[seg], np.arange(len(pair_det)), len(pair_det))
    jmax = pair_gt[np.minimum.reduceat(pos, starts)]
    for t, threshold in enumerate(thresholds):
        hit = best >= threshold
        matched[t, dets[hit]] = jmax[hit]
        claim = np.where(np.append(gt_ignore, True)[matched[t]], -1, matched[t])  # regular objects only
        ranked = score_order[claim[score_order] >= 0]
        _, first = np.unique(claim[ranked], return_index=True)
        took[t, ranked[first]] = True
    return matched, took


def _best_free_object(pairs: tuple[np.ndarray, np.ndarray, np.ndarray], rank: np.ndarray, gt_ignore: np.ndarray,
                      thresholds: np.ndarray, n_det: int) -> np.ndarray:
    """pycocotools' rule: ``(T, D)`` the object each detection takes at each threshold, or -1.

    Only the counted detections (``rank < COCO_MAX_DETS``) and IoU ``>= min(thresholds)`` take part. Step ``s``
    matches the ``s``-th detection (by ``rank``, its place in score order within its image and class) of every
    (image, class) group at once: they never share an object."""
    pair_det, pair_gt, pair_iou = pairs
    use = (pair_iou >= thresholds.min(initial=np.inf)) & (rank[pair_det] < COCO_MAX_DETS)
    step_order = np.argsort(rank[pair_det[use]], kind="stable")
    pair_det, pair_gt, pair_iou = pair_det[use][step_order], pair_gt[use][step_order], pair_iou[use][step_order]
    thr = thresholds[:, None]
    det_gt = np.full((len(thresholds), n_det), -1, np.int64)
    taken = np.zeros((len(thresholds), len(gt_ignore)), bool)
    bounds = np.searchsorted(rank[pair_det], np.arange(COCO_MAX_DETS + 1))
    for lo, hi in itertools.pairwise(bounds):
        if lo == hi:
            continue
        pd, pg, piou = pair_det[lo:hi], pair_gt[lo:hi], pair_iou[lo:hi]
        starts = _run_starts(pd)
        seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(pd))))
        regular = ~gt_ignore[pg]
        free = ~taken[:, pg] & (piou[None, :] >= thr)  # (T, P)
        has_regular = np.logical_or.reduceat(free & regular, starts, axis=1)
        cand = free & (regular[None, :] == has_regular[:, seg])
        value = np.where(cand, piou[None, :], -1.0)
        best = np.maximum.reduceat(value, starts, axis=1)
        at_best = np.where(cand & (value == best[:, seg]), np.arange(len(pd))[None, :], -1)
        chosen = np.maximum.reduceat(at_best, starts, axis=1)  # (T, groups): last pair with the best IoU
        t_idx, g_idx = np.nonzero(chosen >= 0)
        gts = pg[chosen[t_idx, g_idx]]
        taken[t_idx, gts] = True
        det_gt[t_idx, pd[starts[g_idx]]] = gts
    return det_gt


# ---------------------------------------------------------------------------------------------- summaries


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    arr = np.asarray(values, np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else float("nan")


def _subsample(n: int, max_points: int = PR_CURVE_POINTS) -> np.ndarray:
    """At most ``max_points`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def _coco_precision(status: np.ndarray, n_pos: int) -> np.ndarray:
    """``(T, R)`` interpolated precision at the COCO recall levels for one class and area range, from its
    detections' ``status (T, n)`` in score order; NaN when ``n_pos == 0``. Ignored detections repeat the
    previous point, which changes no value read."""
    n_thr, n = status.shape
    if n_pos == 0:
        return np.full((n_thr, len(COCO_RECALL_LEVELS)), np.nan)
    out = np.zeros((n_thr, len(COCO_RECALL_LEVELS)))
    if n == 0:
        return out
    tp = np.cumsum(status == TP, axis=1).astype(float)
    fp = np.cumsum(status == FP, axis=1).astype(float)
    recall = tp / n_pos
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    for t in range(n_thr):
        at = np.searchsorted(recall[t], COCO_RECALL_LEVELS, side="left")
        out[t] = np.where(at < n, precision[t, np.minimum(at, n - 1)], 0.0)
    return out


def _coco_ap(m: Matches, by_class: list[np.ndarray], area: Area) -> np.ndarray:
    """``(C, T, R)`` interpolated precision of each class under the COCO rule for one area range."""
    coco = m.rematch("coco", COCO_IOU_THRESHOLDS, area)
    gt_ignore, _ = _ignored_objects(m, area)
    n_pos = np.bincount(m.gt_label[~gt_ignore], minlength=m.num_classes)
    per_class = [_coco_precision(coco.status[:, idx], int(n_pos[c])) for c, idx in enumerate(by_class)]
    return np.stack(per_class) if per_class else np.zeros((0, len(COCO_IOU_THRESHOLDS), len(COCO_RECALL_LEVELS)))


def summarize(matches: Matches, class_names: Sequence[str], parts: Collection[str] = PARTS) -> dict[str, Any]:
    """Detection metrics from a split's :class:`Matches`, computing only the ``parts`` asked for.

    Args:
        matches: :func:`match`'s evidence (any rule: each part matches again under its own rule where needed,
            reusing the IoU pairs; the devkit's matching is used as it is).
        class_names: the class names, index ``c`` names label ``c``.
        parts: a subset of :data:`PARTS` (default: all, the record's metrics block). A val loop that wants
            mAP50 asks for ``("voc",)``: no COCO matching is done.

    Returns:
        ``"voc"``: ``map50``, ``map50_voc07``; ``"coco"``: ``coco_ap``, ``ap50``, ``ap75``; ``"coco_sizes"``:
        ``ap_small``, ``ap_medium``, ``ap_large``; ``"lamr"``: ``lamr`` (one class only); ``"pr_curves"``:
        ``pr_curves`` ({name: {``recall``, ``precision``}} lists). Always ``per_class`` ({name: {``ap50``,
        ``ap50_voc07`` (with "voc"), ``coco_ap`` (with "coco"), ``num_gt``, ``num_difficult``, ``num_det``}}),
        ``num_images``, ``num_gt`` (non-difficult objects), ``num_difficult``, ``num_detections``. AP values are
        floats in ``[0, 1]`` or NaN.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"summarize: unknown parts {sorted(unknown)}; expected some of {list(PARTS)}")
    if len(class_names) != matches.num_classes:
        raise ValueError(f"summarize: {len(class_names)} class names for {matches.num_classes} classes")
    num_classes = matches.num_classes
    order, bounds = matches.by_class()
    by_class = [order[bounds[c]:bounds[c + 1]] for c in range(num_classes)]  # each in score order
    difficult = matches.gt_difficult
    num_pos = np.bincount(matches.gt_label[~difficult], minlength=num_classes)
    num_diff = np.bincount(matches.gt_label[difficult], minlength=num_classes)
    out: dict[str, Any] = {}
    voc, voc07 = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    curves: dict[str, dict[str, list[float]]] = {}
    if {"voc", "lamr", "pr_curves"} & set(parts):
        status = matches.devkit().status[0]
        tp_fp = []
        for c, name in enumerate(class_names):
            st = status[by_class[c]]
            st = st[st != IGNORED]
            tp, fp = np.cumsum(st == TP), np.cumsum(st == FP)
            tp_fp.append((tp, fp))
            if num_pos[c] == 0:
                curves[name] = {"recall": [], "precision": []}
                continue
            recall = tp / num_pos[c]
            precision = tp / np.maximum(tp + fp, 1)
            voc[c], voc07[c] = voc_ap(recall, precision), voc07_ap(recall, precision)
            keep = _subsample(len(st))
            curves[name] = {"recall": recall[keep].tolist(), "precision": precision[keep].tolist()}
    if "voc" in parts:
        out["map50"], out["map50_voc07"] = _nanmean(voc), _nanmean(voc07)
    coco_class_ap = np.full(num_classes, np.nan)
    if "coco" in parts:
        coco = _coco_ap(matches, by_class, "all")
        coco_class_ap = coco.mean(axis=(1, 2))  # NaN rows stay NaN
        out["coco_ap"] = _nanmean(coco_class_ap)
        out["ap50"] = _nanmean(coco[:, 0].mean(axis=1))
        out["ap75"] = _nanmean(coco[:, 5].mean(axis=1))
    if "coco_sizes" in parts:
        for area in ("small", "medium", "large"):
            out[f"ap_{area}"] = _nanmean(_coco_ap(matches, by_class, area).mean(axis=(1, 2)))
    if "lamr" in parts and num_classes == 1:
        tp, fp = tp_fp[0]
        n_images = matches.num_images
        out["lamr"] = (float("nan") if num_pos[0] == 0 or n_images == 0
                       else log_average_miss_rate(fp / n_images, 1.0 - tp / num_pos[0]))
    out["per_class"] = {
        name: {**({"ap50": float(voc[c]), "ap50_voc07": float(voc07[c])} if "voc" in parts else {}),
               **({"coco_ap": float(coco_class_ap[c])} if "coco" in parts else {}),
               "num_gt": int(num_pos[c]), "num_difficult": int(num_diff[c]), "num_det": len(by_class[c])}
        for c, name in enumerate(class_names)
    }
    if "pr_curves" in parts:
        out["pr_curves"] = curves
    out["num_images"] = matches.num_images
    out["num_gt"] = int(num_pos.sum())
    out["num_difficult"] = int(num_diff.sum())
    out["num_detections"] = len(matches.det_score)
    return out


# ------------------------------------------------------------------------------------- per-image objects


class ObjectsLike(Protocol):
    """One image's ground truth: a :class:`benchsuite.data.detection.DetectionSet`'s sample."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


class DetectionsLike(Protocol):
    """One image's detections: a :class:`benchsuite.api.Detections`."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def score_detections(objects: Sequence[ObjectsLike], detections: Sequence[DetectionsLike],
                     class_names: Sequence[str], parts: Collection[str]) -> dict[str, Any]:
    """:func:`summarize` of :func:`match` for per-image objects (a data set's samples) and detections (e.g. a
    val loop's): ``score_detections(val, dets, val.classes, ("voc",))["map50"]``."""
    return summarize(match([o.boxes for o in objects], [o.labels for o in objects], [o.difficult for o in objects],
                           [d.boxes for d in detections], [d.scores for d in detections],
                           [d.labels for d in detections], len(class_names)), class_names, parts)
