"""A slow, literal port of the Pascal VOC devkit's detection evaluation (``VOCevaldet.m`` and ``VOCap.m``): the
independent oracle of the suite's matching (:func:`benchsuite.metrics.detection.match`) and VOC AP.

It works one detection and one object at a time on VOC's 1-based inclusive coordinates (``xmin = x1 + 1``,
``xmax = x2``) with the devkit's "+1" in widths, which gives the same IoU as the suite's ``x2 - x1`` widths.
Importable from every test (pytest puts the folder of ``tests/conftest.py`` on ``sys.path``).
"""

from __future__ import annotations

import math

import numpy as np

TO_VOC = np.array([1.0, 1.0, 0.0, 0.0])


def _overlap(bb: list[float], bbgt: list[float]) -> float:
    """VOCevaldet.m's overlap of two VOC boxes; -inf when they do not intersect."""
    bi = [max(bb[0], bbgt[0]), max(bb[1], bbgt[1]), min(bb[2], bbgt[2]), min(bb[3], bbgt[3])]
    iw = bi[2] - bi[0] + 1
    ih = bi[3] - bi[1] + 1
    if iw <= 0 or ih <= 0:
        return -math.inf
    ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1) - iw * ih
    return iw * ih / ua


def _class_detections(det_scores, det_labels, c: int) -> list[tuple[int, int]]:
    """``(image, row)`` of class ``c``'s detections in the devkit's order: descending score, stable (Python's sort
    is stable, like MATLAB's)."""
    dets = [(i, k, float(s)) for i, (scores, labels) in enumerate(zip(det_scores, det_labels))
            for k, (s, lab) in enumerate(zip(scores, labels)) if lab == c]
    return [(i, k) for i, k, _ in sorted(dets, key=lambda d: -d[2])]


def devkit_status(gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels, num_classes):
    """VOCevaldet.m's decision for every detection. Returns per image ``(status, matched)``: ``status (D_i,)`` 1
    true positive, 0 false positive, -1 ignored (its best object is difficult); ``matched (D_i,)`` the index in the
    image of the object with the highest overlap when that is ``>= 0.5`` (the first on equal overlap), else -1."""
    status = [np.zeros(len(s), np.int64) for s in det_scores]
    matched = [np.full(len(s), -1, np.int64) for s in det_scores]
    for c in range(num_classes):
        detected = [set() for _ in gt_boxes]
        for image, k in _class_detections(det_scores, det_labels, c):
            bb = list(np.asarray(det_boxes[image][k], float) + TO_VOC)
            ovmax, jmax = -math.inf, -1
            for j, (box, lab) in enumerate(zip(gt_boxes[image], gt_labels[image])):
                ov = _overlap(bb, list(np.asarray(box, float) + TO_VOC)) if lab == c else -math.inf
                if ov > ovmax:
                    ovmax, jmax = ov, j
            if ovmax < 0.5:
                continue  # a false positive
            matched[image][k] = jmax
            if gt_difficult[image][jmax]:
                status[image][k] = -1
            elif jmax not in detected[image]:
                status[image][k] = 1
                detected[image].add(jmax)
    return list(zip(status, matched))


def devkit_ap(gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels, num_classes):
    """Per class ``(all-point AP, 11-point AP)`` as VOCevaldet.m + VOCap.m give them, NaN without positives."""
    per_image = devkit_status(gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels, num_classes)
    out = []
    for c in range(num_classes):
        npos = sum(int(((np.asarray(lab) == c) & ~np.asarray(d, bool)).sum())
                   for lab, d in zip(gt_labels, gt_difficult))
        outcome = [per_image[i][0][k] for i, k in _class_detections(det_scores, det_labels, c)]
        tp = [int(s == 1) for s in outcome]
        fp = [int(s == 0) for s in outcome]
        if npos == 0:
            out.append((math.nan, math.nan))
            continue
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = [t / npos for t in ctp]
        prec = [t / (t + f) if t + f else math.nan for t, f in zip(ctp, cfp)]  # NaN before the first TP/FP
        # VOCap.m; MATLAB's max ignores NaN
        mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = mpre[i + 1] if math.isnan(mpre[i]) else max(mpre[i], mpre[i + 1])
        ap = sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])
        # 11-point at the exact tenths k/10; a level with no (non-NaN) precision scores 0
        ap07 = 0.0
        for k in range(11):
            vals = [p for r, p in zip(rec, prec) if r >= k / 10 and not math.isnan(p)]
            ap07 += (max(vals) if vals else 0.0) / 11
        out.append((ap, ap07))
    return out
