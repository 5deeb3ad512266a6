"""Region-proposal metrics: recall at a proposal budget and average best overlap (Uijlings et al. 2013).

Proposals are per image ``(P_i, 4)`` boxes ranked best first (:mod:`benchsuite.ops.boxes` convention);
the first ``N`` rows are the image's budget of ``N`` proposals, and an image with fewer uses all it has.
Only non-difficult objects are scored: difficult ones are left out of every number (as VOC does for
detection). An object's *best overlap within N* is the highest IoU between it and any of the first ``N``
proposals of its image (0 without proposals); labels of proposals play no part.

- ``recall_at_{N}_iou50`` / ``_iou70``: fraction of objects whose best overlap within ``N`` is ``>= 0.5``
  / ``>= 0.7``.
- ``recall_curve``: the same at log-spaced budgets from 1 to the largest budget.
- ``abo_per_class``: per class, the mean over its objects of the best overlap among all proposals (NaN for
  a class without objects); ``mabo``: the mean of those over classes with objects.

Per image the ``(objects x proposals)`` IoU is computed once; its running maximum along the proposal axis
answers every budget at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchsuite.ops.boxes import as_boxes, box_iou

RECALL_IOUS = {"iou50": 0.5, "iou70": 0.7}


def curve_budgets(max_budget: int, points: int = 25) -> list[int]:
    """Distinct integers log-spaced from 1 to ``max_budget`` (both included), at most ``points`` of them."""
    if max_budget < 1:
        return []
    values = np.round(np.logspace(0.0, np.log10(max_budget), max(points, 2)))
    return sorted({int(v) for v in values} | {1, int(max_budget)})


def best_overlaps(gt_boxes: np.ndarray, proposals: np.ndarray, budgets: Sequence[int]) -> np.ndarray:
    """``(M, len(budgets))`` best IoU of each object ``gt_boxes (M, 4)`` among the first ``N`` of the ranked
    ``proposals (P, 4)`` for each budget ``N`` (all ``P`` when ``N >= P``; 0 when ``P == 0``)."""
    g = as_boxes(gt_boxes, "gt_boxes")
    p = as_boxes(proposals, "proposals")
    out = np.zeros((len(g), len(budgets)))
    if len(g) == 0 or len(p) == 0:
        return out
    running = np.maximum.accumulate(box_iou(g, p), axis=1)  # (M, P): best within the first k + 1
    cols = np.minimum(np.asarray(budgets, np.int64), len(p)) - 1
    valid = cols >= 0
    out[:, valid] = running[:, cols[valid]]
    return out


def evaluate_proposals(
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray] | None,
    proposals: Sequence[np.ndarray],
    class_names: Sequence[str],
    budgets: Sequence[int] = (100, 500, 1000, 2000),
    curve_points: int | Sequence[int] = 25,
) -> dict[str, object]:
    """The record's metrics block for a proposal task (definitions in the module docstring).

    Args:
        gt_boxes: per image ``(M_i, 4)`` objects; gt_labels: per image ``(M_i,)`` class indices;
            gt_difficult: per image ``(M_i,)`` bool (None: none difficult).
        proposals: per image ``(P_i, 4)`` boxes, best first.
        class_names: class ``c`` names label ``c``.
        budgets: the proposal counts ``N`` reported as ``recall_at_{N}_iou50`` / ``_iou70``.
        curve_points: how many log-spaced budgets the recall curve has (or the budgets themselves).

    Returns:
        ``recall_at_{N}_iou50``, ``recall_at_{N}_iou70`` for each budget, ``recall_curve``
        ({``num_proposals``, ``recall_iou50``, ``recall_iou70``}), ``abo_per_class`` ({name: ABO}),
        ``mabo``, ``proposals_per_image``, ``num_images``, ``num_gt`` (non-difficult objects),
        ``num_difficult``. Recalls and overlaps are NaN without objects.
    """
    n_images = len(gt_boxes)
    if not n_images == len(gt_labels) == len(proposals) or (gt_difficult is not None and len(gt_difficult) != n_images):
        raise ValueError("evaluate_proposals: per-image lists of different lengths")
    budgets = [int(b) for b in budgets]
    if any(b < 1 for b in budgets):
        raise ValueError(f"budgets must be positive: {budgets}")
    max_budget = max(budgets, default=1)
    curve = (curve_budgets(max_budget, curve_points) if isinstance(curve_points, (int, np.integer))
             else sorted({int(v) for v in curve_points}))
    columns = sorted(set(budgets) | set(curve))
    num_classes = len(class_names)

    best_parts, label_parts, num_props, num_difficult = [], [], [], 0
    for i in range(n_images):
        g = as_boxes(gt_boxes[i], f"gt_boxes of image {i}")
        labels = np.asarray(gt_labels[i], np.int64).reshape(-1)
        diff = (np.zeros(len(g), bool) if gt_difficult is None else np.asarray(gt_difficult[i], bool).reshape(-1))
        if not len(g) == len(labels) == len(diff):
            raise ValueError(f"image {i}: {len(g)} boxes, {len(labels)} labels, {len(diff)} difficult flags")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"image {i}: labels must lie in [0, {num_classes})")
        p = as_boxes(proposals[i], f"proposals of image {i}")
        num_props.append(len(p))
        num_difficult += int(diff.sum())
        # the last column is "all proposals", for ABO
        best_parts.append(best_overlaps(g[~diff], p, [*columns, max(len(p), 1)]))
        label_parts.append(labels[~diff])
    best = np.concatenate(best_parts) if best_parts else np.zeros((0, len(columns) + 1))
    labels = np.concatenate(label_parts) if label_parts else np.zeros(0, np.int64)
    n_gt = len(labels)

    def recall(column: int, threshold: float) -> float:
        return float(np.mean(best[:, column] >= threshold)) if n_gt else float("nan")

    metrics: dict[str, object] = {}
    for n in budgets:
        for suffix, threshold in RECALL_IOUS.items():
            metrics[f"recall_at_{n}_{suffix}"] = recall(columns.index(n), threshold)
    metrics["recall_curve"] = {
        "num_proposals": curve,
        **{f"recall_{suffix}": [recall(columns.index(n), t) for n in curve] for suffix, t in RECALL_IOUS.items()},
    }
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.bincount(labels, weights=best[:, -1], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        abo = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    metrics["abo_per_class"] = {name: float(abo[c]) for c, name in enumerate(class_names)}
    metrics["mabo"] = float(np.nanmean(abo)) if (counts > 0).any() else float("nan")
    metrics["proposals_per_image"] = float(np.mean(num_props)) if num_props else float("nan")
    metrics["num_images"] = n_images
    metrics["num_gt"] = n_gt
    metrics["num_difficult"] = num_difficult
    return metrics
