"""Percentile-bootstrap confidence intervals over test images, for the report and for run comparisons.

The per-image evidence a bootstrap needs (:class:`DetectionEvidence`, :class:`ProposalEvidence`, per-image
correctness) is computed by the task when it scores a split and saved beside the predictions
(``jobs/<job>/evidence-<split>.npz``); the report resamples that evidence and never reopens a data set.

A resample draws ``n`` test images with replacement; it is represented by a ``(n,)`` vector of counts
(how often each image was drawn), and a block of resamples by a ``(B, n)`` count matrix. Every metric is
then a weighted sum over images, so no resampled data set is ever materialised:

- classification accuracy: ``w @ correct / n``;
- detection VOC mAP at IoU 0.5: every detection's TP / FP / ignored status is decided once on the full
  test set by :func:`benchsuite.metrics.detection.match` (a detection only ever competes with the
  objects of its own image, so a drawn copy of an image scores exactly as the original), then each
  resample's precision/recall curve is a cumulative sum of image weights in score order;
- proposal recall at a budget and MABO: per-image hit counts and overlap sums, weighted.

The same generator seed gives the same resamples for the same number of images, so two pipelines scored on
the same split are bootstrapped on the same image draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from benchsuite.metrics.detection import IGNORED, TP, Matches
from benchsuite.metrics.proposals import best_overlaps
from benchsuite.ops.boxes import as_boxes

LEVEL = 0.95
CLASSIFICATION_RESAMPLES = 1000
DETECTION_RESAMPLES = 200
CHUNK = 100  # resamples per weight block: bounds memory at CHUNK * n counts


def resample_weights(n: int, resamples: int, seed: int = 0, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Blocks of ``(b, n)`` int64 draw counts (rows sum to ``n``), ``resamples`` rows in all."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        done += b


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """``(lo, hi)`` percentile interval of the finite ``values``; None when there are none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------ classification


def accuracy_resamples(correct: np.ndarray, resamples: int = CLASSIFICATION_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(resamples,)`` bootstrap accuracies from ``correct`` ``(n,)`` bool, one per test image."""
    c = np.asarray(correct, np.float64).reshape(-1)
    if not len(c):
        return np.full(resamples, np.nan)
    return np.concatenate([w @ c / len(c) for w in resample_weights(len(c), resamples, seed)])


# ---------------------------------------------------------------------------------------------- detection


@dataclass
class DetectionEvidence:
    """What a VOC AP50 bootstrap needs, decided once on the full test set.

    Attributes:
        num_images: test images.
        positives: ``(num_images, C)`` non-difficult objects per image and class.
        det_image, det_label, det_tp: per non-ignored detection, sorted by class then descending score
            (stable): its image, class and whether it is a true positive (else a false positive).
        class_bounds: ``(C + 1,)`` start of each class's run in those arrays.
    """

    num_images: int
    positives: np.ndarray
    det_image: np.ndarray
    det_label: np.ndarray
    det_tp: np.ndarray
    class_bounds: np.ndarray

    FIELDS = ("positives", "det_image", "det_label", "det_tp", "class_bounds")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The evidence as named arrays (for an ``npz`` file); :meth:`from_arrays` reads them back."""
        return {"num_images": np.asarray(self.num_images, np.int64),
                **{name: np.asarray(getattr(self, name)) for name in self.FIELDS}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DetectionEvidence:
        return cls(int(arrays["num_images"]), *(np.asarray(arrays[name]) for name in cls.FIELDS))


def detection_evidence(matches: Matches) -> DetectionEvidence:
    """The per-detection outcomes of a split's devkit matching (:meth:`Matches.devkit`), ignored detections left
    out: what :func:`map50_resamples` resamples."""
    status = matches.devkit().status[0]
    order, _ = matches.by_class()
    order = order[status[order] != IGNORED]
    positives = np.zeros((matches.num_images, matches.num_classes), np.int64)
    regular = ~matches.gt_difficult
    np.add.at(positives, (matches.gt_image[regular], matches.gt_label[regular]), 1)
    labels = matches.det_label[order]
    return DetectionEvidence(matches.num_images, positives, matches.det_image[order], labels, status[order] == TP,
                             np.searchsorted(labels, np.arange(matches.num_classes + 1)))


def _weighted_voc_ap(w: np.ndarray, tp: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """``(B,)`` VOC all-point AP of one class for each row of detection weights ``w (B, D)`` in score order,
    ``tp (D,)`` bool, ``positives (B,)`` weighted object counts (NaN where 0)."""
    b = w.shape[0]
    out = np.full(b, np.nan)
    has = positives > 0
    if not w.shape[1]:
        out[has] = 0.0
        return out
    ctp = np.cumsum(w * tp, axis=1, dtype=np.float64)
    cfp = np.cumsum(w * ~tp, axis=1, dtype=np.float64)
    total = ctp + cfp
    precision = np.divide(ctp, total, out=np.zeros_like(ctp), where=total > 0)
    recall = ctp / np.where(has, positives, 1)[:, None]
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    step = np.diff(recall, axis=1, prepend=0.0)
    out[has] = (step * envelope).sum(axis=1)[has]
    return out


def map50_for_weights(ev: DetectionEvidence, weights: np.ndarray) -> np.ndarray:
    """``(B,)`` VOC mAP50 (mean over classes with objects in the resample) for image weights ``(B, n)``."""
    weights = np.atleast_2d(weights)
    num_classes = ev.positives.shape[1]
    aps = np.full((weights.shape[0], num_classes), np.nan)
    pos = weights @ ev.positives  # (B, C)
    for c in range(num_classes):
        lo, hi = ev.class_bounds[c], ev.class_bounds[c + 1]
        aps[:, c] = _weighted_voc_ap(weights[:, ev.det_image[lo:hi]], ev.det_tp[lo:hi], pos[:, c].astype(float))
    with np.errstate(all="ignore"):
        valid = ~np.isnan(aps)
        return np.where(valid.any(axis=1), np.nansum(aps, axis=1) / np.maximum(valid.sum(axis=1), 1), np.nan)


def map50_gain_resamples(ours: Matches, other: Matches, resamples: int = DETECTION_RESAMPLES, seed: int = 0
                         ) -> np.ndarray:
    """``(resamples,)`` bootstrap values of ``ours``' VOC mAP50 minus ``other``'s, both from the same image draws
    (paired): two matchings (:func:`benchsuite.metrics.detection.match`) of the same images and objects. Empty when
    there are no images."""
    if ours.num_images != other.num_images:
        raise ValueError(f"paired gain: {ours.num_images} images against {other.num_images}")
    if ours.num_images == 0:
        return np.zeros(0)
    ev_a, ev_b = detection_evidence(ours), detection_evidence(other)
    return np.concatenate([map50_for_weights(ev_a, w) - map50_for_weights(ev_b, w)
                           for w in resample_weights(ours.num_images, resamples, seed)])


def map50_resamples(ev: DetectionEvidence, resamples: int = DETECTION_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(resamples,)`` bootstrap VOC mAP50 values."""
    if ev.num_images == 0:
        return np.full(resamples, np.nan)
    # a block holds (resamples x detections of the largest class) weights: keep it near 4 million values
    largest = int(np.diff(ev.class_bounds).max(initial=0))
    chunk = int(np.clip(4_000_000 // max(largest, ev.num_images, 1), 1, CHUNK))
    return np.concatenate([map50_for_weights(ev, w)
                           for w in resample_weights(ev.num_images, resamples, seed, chunk)])


# ---------------------------------------------------------------------------------------------- proposals


@dataclass
class ProposalEvidence:
    """Per image: objects recalled at IoU 0.5 within the budget, objects, and per class best-overlap sums."""

    hits: np.ndarray  # (n,)
    objects: np.ndarray  # (n,)
    overlap_sums: np.ndarray  # (n, C)
    class_counts: np.ndarray  # (n, C)

    FIELDS = ("hits", "objects", "overlap_sums", "class_counts")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The evidence as named arrays (for an ``npz`` file); :meth:`from_arrays` reads them back."""
        return {name: np.asarray(getattr(self, name)) for name in self.FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ProposalEvidence:
        return cls(*(np.asarray(arrays[name]) for name in cls.FIELDS))


def proposal_evidence(gt_boxes: Sequence[np.ndarray], gt_labels: Sequence[np.ndarray],
                      gt_difficult: Sequence[np.ndarray] | None, proposals: Sequence[np.ndarray],
                      num_classes: int, budget: int = 1000, iou: float = 0.5) -> ProposalEvidence:
    """The per-image parts of ``recall_at_{budget}_iou50`` and ``mabo`` (:mod:`benchsuite.metrics.proposals`)."""
    n = len(gt_boxes)
    hits, objects = np.zeros(n), np.zeros(n)
    sums, counts = np.zeros((n, num_classes)), np.zeros((n, num_classes))
    for i in range(n):
        g = as_boxes(gt_boxes[i])
        keep = ~np.asarray(gt_difficult[i], bool).reshape(-1) if gt_difficult is not None else np.ones(len(g), bool)
        labels = np.asarray(gt_labels[i], np.int64).reshape(-1)[keep]
        p = as_boxes(proposals[i])
        best = best_overlaps(g[keep], p, [budget, max(len(p), 1)])
        hits[i] = np.sum(best[:, 0] >= iou)
        objects[i] = len(labels)
        np.add.at(sums[i], labels, best[:, 1])
        np.add.at(counts[i], labels, 1)
    return ProposalEvidence(hits, objects, sums, counts)


def proposal_resamples(ev: ProposalEvidence, resamples: int = DETECTION_RESAMPLES, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, mabo)`` bootstrap values, each ``(resamples,)``."""
    n = len(ev.hits)
    if n == 0:
        return np.full(resamples, np.nan), np.full(resamples, np.nan)
    recalls, mabos = [], []
    for w in resample_weights(n, resamples, seed):
        obj = w @ ev.objects
        recalls.append(np.where(obj > 0, (w @ ev.hits) / np.maximum(obj, 1), np.nan))
        cnt, sm = w @ ev.class_counts, w @ ev.overlap_sums
        abo = np.where(cnt > 0, sm / np.maximum(cnt, 1), np.nan)
        with np.errstate(all="ignore"):
            valid = cnt > 0
            mabos.append(np.where(valid.any(axis=1), np.nansum(abo, axis=1) / np.maximum(valid.sum(axis=1), 1),
                                  np.nan))
    return np.concatenate(recalls), np.concatenate(mabos)
