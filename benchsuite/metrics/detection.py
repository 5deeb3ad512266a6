"""Detection metrics: Pascal VOC AP, COCO AP and the log-average miss rate, from plain per-image arrays.

Inputs are per-image lists (no data classes): ground-truth boxes ``(M_i, 4)``, integer labels ``(M_i,)``
and "difficult" flags ``(M_i,)``; detections as boxes ``(D_i, 4)``, scores ``(D_i,)`` and labels
``(D_i,)``. Boxes follow :mod:`benchsuite.ops.boxes` (``x1, y1, x2, y2`` pixels, area ``w * h``, no
"+1"). The order of the images matters only to break ties between equal scores (see below).

Pascal VOC (``map50``, ``map50_voc07``, per-class ``ap50`` / ``ap50_voc07``, ``pr_curves``), as the
devkit's ``VOCevaldet.m``:

- a class's detections over all images are sorted by descending score, stably (equal scores keep image
  order, then the order within the image);
- each detection is assigned to the ground-truth box of its class and image with the highest IoU among
  *all* of them (matched or not, difficult or not; on equal IoU the first box wins);
- if that IoU is ``>= 0.5``: a difficult box makes the detection "ignored" (neither TP nor FP), a box
  already taken by a higher-scoring detection makes it a FP (duplicate), otherwise it is a TP and takes
  the box; an IoU below 0.5 (or no box) is a FP;
- difficult objects do not count as positives. Precision is ``TP / (TP + FP)`` over the non-ignored
  detections (dropping ignored detections changes neither AP, as in the devkit where they repeat the
  previous point).
- ``ap50`` is the area under the precision envelope (VOC2010+ "all points"), ``ap50_voc07`` the mean of
  the envelope at the 11 recall levels ``k / 10`` (exact tenths: a recall of exactly 3/10 reaches the
  level 0.3, which the common Python port's ``np.arange(0, 1.1, 0.1)`` misses by one ulp).

COCO (``coco_ap``, ``ap50``, ``ap75``, ``ap_small``, ``ap_medium``, ``ap_large``) replicates pycocotools'
``COCOeval`` for ``iouType="bbox"`` and ``maxDets=100`` (``stats[0..5]``):

- per image and class, only the 100 highest-scoring detections count (stable sort);
- at each IoU threshold ``t`` in ``0.50:0.05:0.95``, detections in score order take the unmatched
  ground truth with the highest IoU ``>= t``; regular (non-ignored) boxes are preferred to ignored ones;
  on equal IoU the later box wins (pycocotools' loop);
- a box is ignored when it is difficult (pycocotools' ``iscrowd`` is never set: IoU stays standard) or its
  area ``w * h`` is outside the range, both ends inclusive as in pycocotools: small ``[0, 32^2]``,
  medium ``[32^2, 96^2]``, large ``[96^2, 1e10]``; a detection matched to an ignored box is ignored, and
  so is an unmatched detection whose own area is outside the range;
- precision is made monotone and read at the 101 recall levels ``0:0.01:1`` (0 past the last recall);
  AP is the mean over thresholds and recall levels, then over the classes that have a non-ignored box.

Undefined values are NaN, never 0: a class without (non-difficult) ground truth has NaN AP and is left
out of the means; ``ap_small`` is NaN when no object is small; everything is NaN without ground truth.

Log-average miss rate (``lamr``, only when there is exactly one class), as Dollár et al.'s Caltech
pedestrian benchmark (``bbGt.m compRoc`` + ``dbEval.m``) but on the VOC matching above at IoU 0.5
(ignored detections dropped): FPPI is cumulative FP over the number of images, miss rate ``1 - recall``.
At each of the 9 reference FPPI values ``10 ** linspace(-2, 0, 9)`` the miss rate is the one of the last
operating point (detections taken in score order) whose FPPI is ``<= ref``, or 1 when there is none; the
curve is not extrapolated past the last detection. LAMR is ``exp(mean(log(max(mr, 1e-10))))``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchsuite.ops.boxes import as_boxes, box_area, paired_box_iou

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


@dataclass
class _Flat:
    """Every image's arrays concatenated, with the image index of each row."""

    boxes: np.ndarray  # (K, 4) float64
    labels: np.ndarray  # (K,) int64
    image: np.ndarray  # (K,) int64
    extra: np.ndarray  # (K,) difficult flags (bool) or scores (float64)


def _flatten(boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], extra: Sequence[np.ndarray] | None,
             num_classes: int, what: str, extra_dtype: type) -> _Flat:
    if len(labels) != len(boxes) or (extra is not None and len(extra) != len(boxes)):
        raise ValueError(f"{what}: lists of different lengths")
    b = [as_boxes(x, f"{what} boxes of image {i}") for i, x in enumerate(boxes)]
    lab = [np.asarray(x).reshape(-1) for x in labels]
    ext = [np.asarray(x, extra_dtype).reshape(-1) for x in extra] if extra is not None else [
        np.zeros(len(x), extra_dtype) for x in b]
    for i, (bi, li, ei) in enumerate(zip(b, lab, ext)):
        if not len(bi) == len(li) == len(ei):
            raise ValueError(f"{what} of image {i}: {len(bi)} boxes, {len(li)} labels, {len(ei)} flags/scores")
    counts = np.array([len(x) for x in b], np.int64)
    flat_labels = np.concatenate(lab).astype(np.int64) if len(lab) else np.zeros(0, np.int64)
    if len(flat_labels) and (flat_labels.min() < 0 or flat_labels.max() >= num_classes):
        raise ValueError(f"{what}: labels must lie in [0, {num_classes})")
    flat_extra = np.concatenate(ext) if len(ext) else np.zeros(0, extra_dtype)
    if extra_dtype is np.float64 and not np.isfinite(flat_extra).all():
        raise ValueError(f"{what}: scores must be finite")
    return _Flat(
        boxes=np.concatenate(b) if len(b) else np.zeros((0, 4)),
        labels=flat_labels,
        image=np.repeat(np.arange(len(b), dtype=np.int64), counts),
        extra=flat_extra,
    )


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


# -------------------------------------------------------------------------------------------- VOC matching

TP, FP, IGNORED = 1, 0, -1


def _voc_status(n_det: int, pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray,
                gt_difficult: np.ndarray, score_order: np.ndarray, threshold: float = VOC_IOU) -> np.ndarray:
    """``(D,)`` TP / FP / IGNORED for every detection, VOC devkit rules (see the module docstring)."""
    status = np.full(n_det, FP, np.int64)
    if len(pair_det) == 0:
        return status
    starts = _run_starts(pair_det)
    dets = pair_det[starts]
    best = np.maximum.reduceat(pair_iou, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(pair_det))))
    pos = np.where(pair_iou == best[seg], np.arange(len(pair_det)), len(pair_det))
    jmax = pair_gt[np.minimum.reduceat(pos, starts)]
    hit = best >= threshold
    status[dets[hit & gt_difficult[jmax]]] = IGNORED
    # the first detection in score order claiming a (non-difficult) box is the TP, later ones duplicates
    claim = np.full(n_det, -1, np.int64)
    ok = hit & ~gt_difficult[jmax]
    claim[dets[ok]] = jmax[ok]
    ranked = score_order[claim[score_order] >= 0]
    _, first = np.unique(claim[ranked], return_index=True)
    status[ranked[first]] = TP
    return status


# ------------------------------------------------------------------------------------------- COCO matching


def _coco_match(pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, pair_step: np.ndarray,
                gt_ignore: np.ndarray, n_det: int) -> np.ndarray:
    """``(T, D)`` index of the ground truth each detection takes at each COCO threshold, or -1.

    The pairs hold only the kept (top-100) detections and IoU ``>= 0.5``, sorted by ``pair_step`` (the
    detection's rank within its image and class), then detection, then ground truth. Step ``s`` matches
    the ``s``-th detection of every (image, class) group at once: they never share a ground truth.
    """
    thr = COCO_IOU_THRESHOLDS[:, None]
    n_thr = len(COCO_IOU_THRESHOLDS)
    det_gt = np.full((n_thr, n_det), -1, np.int64)
    taken = np.zeros((n_thr, len(gt_ignore)), bool)
    bounds = np.searchsorted(pair_step, np.arange(COCO_MAX_DETS + 1))
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


def _coco_precision(det_gt: np.ndarray, det_ignore: np.ndarray, n_pos: int) -> np.ndarray:
    """``(T, R)`` interpolated precision at the COCO recall levels for one class and area range, from its
    detections' matches ``(T, n)`` and ignore flags ``(T, n)`` in score order; NaN when ``n_pos == 0``."""
    n_thr, n = det_gt.shape
    if n_pos == 0:
        return np.full((n_thr, len(COCO_RECALL_LEVELS)), np.nan)
    out = np.zeros((n_thr, len(COCO_RECALL_LEVELS)))
    if n == 0:
        return out
    tp = np.cumsum((det_gt >= 0) & ~det_ignore, axis=1).astype(float)
    fp = np.cumsum((det_gt < 0) & ~det_ignore, axis=1).astype(float)
    recall = tp / n_pos
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    for t in range(n_thr):
        at = np.searchsorted(recall[t], COCO_RECALL_LEVELS, side="left")
        out[t] = np.where(at < n, precision[t, np.minimum(at, n - 1)], 0.0)
    return out


def _rank_in_group(key: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``(D,)`` rank of each detection by descending score (stable) among those with the same key."""
    order = np.lexsort((-scores, key))
    rank = np.empty(len(key), np.int64)
    if len(key):
        starts = _run_starts(key[order])
        sizes = np.diff(np.append(starts, len(key)))
        rank[order] = np.arange(len(key)) - np.repeat(starts, sizes)
    return rank


# -------------------------------------------------------------------------------------------------- helpers


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    arr = np.asarray(values, np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else float("nan")


def _subsample(n: int, max_points: int = PR_CURVE_POINTS) -> np.ndarray:
    """At most ``max_points`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


# --------------------------------------------------------------------------------------------------- entry


def evaluate_detections(
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray] | None,
    det_boxes: Sequence[np.ndarray],
    det_scores: Sequence[np.ndarray],
    det_labels: Sequence[np.ndarray],
    class_names: Sequence[str],
) -> dict[str, object]:
    """The record's metrics block for a detection task (conventions in the module docstring).

    Args:
        gt_boxes: per image ``(M_i, 4)`` ground-truth boxes.
        gt_labels: per image ``(M_i,)`` integer class indices in ``[0, len(class_names))``.
        gt_difficult: per image ``(M_i,)`` bool "difficult" flags (None: none is difficult).
        det_boxes: per image ``(D_i, 4)`` detections.
        det_scores: per image ``(D_i,)`` finite scores, higher is more confident.
        det_labels: per image ``(D_i,)`` integer class indices.
        class_names: the class names, index ``c`` names label ``c``.

    Returns:
        ``map50``, ``map50_voc07``, ``coco_ap``, ``ap50``, ``ap75``, ``ap_small``, ``ap_medium``,
        ``ap_large``, ``lamr`` (one class only), ``per_class`` ({name: {``ap50``, ``ap50_voc07``,
        ``coco_ap``, ``num_gt``, ``num_difficult``, ``num_det``}}), ``pr_curves`` ({name: {``recall``,
        ``precision``}}: the raw VOC curve at IoU 0.5, one point per non-ignored detection in score order,
        at most 200 points), ``num_images``, ``num_gt`` (non-difficult objects), ``num_difficult``,
        ``num_detections``. AP values are floats in ``[0, 1]`` or NaN.
    """
    num_classes = len(class_names)
    if len(det_boxes) != len(gt_boxes):
        raise ValueError(f"detections for {len(det_boxes)} images, ground truth for {len(gt_boxes)}")
    gt = _flatten(gt_boxes, gt_labels, gt_difficult, num_classes, "ground truth", bool)
    det = _flatten(det_boxes, det_labels, det_scores, num_classes, "detections", np.float64)
    difficult = gt.extra.astype(bool)
    scores = det.extra

    # every (detection, ground truth) pair of the same image and class, and its IoU: computed once
    det_key = det.image * num_classes + det.labels
    pair_det, pair_gt = _same_group_pairs(det_key, gt.image * num_classes + gt.labels)
    pair_iou = paired_box_iou(det.boxes[pair_det], gt.boxes[pair_gt])

    # detections by class, each class in descending score order (stable: image order, then row order)
    score_order = np.argsort(-scores, kind="stable")
    by_class = score_order[np.argsort(det.labels[score_order], kind="stable")]
    class_bounds = np.searchsorted(det.labels[by_class], np.arange(num_classes + 1))
    num_pos = np.bincount(gt.labels[~difficult], minlength=num_classes)
    num_diff = np.bincount(gt.labels[difficult], minlength=num_classes)

    # ---- VOC
    status = _voc_status(len(scores), pair_det, pair_gt, pair_iou, difficult, score_order)
    voc, voc07 = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    curves: dict[str, dict[str, list[float]]] = {}
    tp_fp_by_class = []
    for c, name in enumerate(class_names):
        st = status[by_class[class_bounds[c]:class_bounds[c + 1]]]
        st = st[st != IGNORED]
        tp, fp = np.cumsum(st == TP), np.cumsum(st == FP)
        tp_fp_by_class.append((tp, fp))
        if num_pos[c] == 0:
            curves[name] = {"recall": [], "precision": []}
            continue
        recall = tp / num_pos[c]
        precision = tp / np.maximum(tp + fp, 1)
        voc[c], voc07[c] = voc_ap(recall, precision), voc07_ap(recall, precision)
        keep = _subsample(len(st))
        curves[name] = {"recall": recall[keep].tolist(), "precision": precision[keep].tolist()}

    # ---- COCO: top 100 per image and class, pairs at IoU >= 0.5, matched per area range
    rank = _rank_in_group(det_key, scores)
    use = (pair_iou >= COCO_IOU_THRESHOLDS[0]) & (rank[pair_det] < COCO_MAX_DETS)
    step_order = np.argsort(rank[pair_det[use]], kind="stable")
    cp_det, cp_gt, cp_iou = pair_det[use][step_order], pair_gt[use][step_order], pair_iou[use][step_order]
    cp_step = rank[cp_det]
    gt_area, det_area = box_area(gt.boxes), box_area(det.boxes)
    coco = {}  # area name -> (C, T, R)
    for area_name, (lo, hi) in COCO_AREA_RANGES.items():
        gt_ignore = difficult | (gt_area < lo) | (gt_area > hi)
        det_gt = _coco_match(cp_det, cp_gt, cp_iou, cp_step, gt_ignore, len(scores))
        matched_ignore = np.append(gt_ignore, False)[det_gt]  # index -1 (unmatched) reads the False
        det_ignore = np.where(det_gt >= 0, matched_ignore, ((det_area < lo) | (det_area > hi))[None, :])
        n_pos = np.bincount(gt.labels[~gt_ignore], minlength=num_classes)
        per_class = []
        for c in range(num_classes):
            idx = by_class[class_bounds[c]:class_bounds[c + 1]]
            idx = idx[rank[idx] < COCO_MAX_DETS]
            per_class.append(_coco_precision(det_gt[:, idx], det_ignore[:, idx], int(n_pos[c])))
        coco[area_name] = np.stack(per_class) if per_class else np.zeros((0, len(COCO_IOU_THRESHOLDS), 101))

    coco_class_ap = coco["all"].mean(axis=(1, 2))  # NaN rows stay NaN
    metrics: dict[str, object] = {
        "map50": _nanmean(voc),
        "map50_voc07": _nanmean(voc07),
        "coco_ap": _nanmean(coco_class_ap),
        "ap50": _nanmean(coco["all"][:, 0].mean(axis=1)),
        "ap75": _nanmean(coco["all"][:, 5].mean(axis=1)),
        "ap_small": _nanmean(coco["small"].mean(axis=(1, 2))),
        "ap_medium": _nanmean(coco["medium"].mean(axis=(1, 2))),
        "ap_large": _nanmean(coco["large"].mean(axis=(1, 2))),
    }
    if num_classes == 1:
        tp, fp = tp_fp_by_class[0]
        if num_pos[0] == 0 or len(gt_boxes) == 0:
            metrics["lamr"] = float("nan")
        else:
            metrics["lamr"] = log_average_miss_rate(fp / len(gt_boxes), 1.0 - tp / num_pos[0])
    metrics["per_class"] = {
        name: {
            "ap50": float(voc[c]),
            "ap50_voc07": float(voc07[c]),
            "coco_ap": float(coco_class_ap[c]),
            "num_gt": int(num_pos[c]),
            "num_difficult": int(num_diff[c]),
            "num_det": int(class_bounds[c + 1] - class_bounds[c]),
        }
        for c, name in enumerate(class_names)
    }
    metrics["pr_curves"] = curves
    metrics["num_images"] = len(gt_boxes)
    metrics["num_gt"] = int(num_pos.sum())
    metrics["num_difficult"] = int(num_diff.sum())
    metrics["num_detections"] = len(scores)
    return metrics
