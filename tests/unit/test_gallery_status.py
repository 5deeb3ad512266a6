"""The gallery's status of each detection is the devkit's on crowded scenes, where a greedy match that lets a
duplicate fall to its next-best free object (the gallery's rule before issue 21) draws other colours."""

from __future__ import annotations

import numpy as np
from voc_devkit import devkit_status

from benchsuite.ops.boxes import box_iou
from benchsuite.report.gallery import _Split, _Truth, detection_status


def crowd(rng: np.random.Generator, n_images: int = 20):
    """Per image a row of overlapping pedestrians (some difficult) and detections jittered around them."""
    gb, gl, gd, db, ds, dl = [], [], [], [], [], []
    for _ in range(n_images):
        m = int(rng.integers(1, 6))
        x = np.cumsum(rng.uniform(8, 20, m))  # neighbours overlap: IoU around 0.3 .. 0.7
        g = np.round(np.stack([x, np.full(m, 10.0), x + 25, np.full(m, 80.0)], axis=1))
        src = rng.integers(0, m, 3 * m)
        d = np.round(g[src] + rng.normal(0, 4, (3 * m, 4)))
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        gb.append(g)
        gl.append(np.zeros(m, np.int64))
        gd.append(rng.random(m) < 0.15)
        db.append(d)
        ds.append(np.round(rng.random(3 * m), 1))  # ties between images and within them
        dl.append(np.zeros(3 * m, np.int64))
    return gb, gl, gd, db, ds, dl


def next_free_greedy(gt, difficult, boxes, scores) -> np.ndarray:
    """The other rule: in score order each detection takes the best object not yet taken."""
    status = np.zeros(len(boxes), np.int64)
    if not len(boxes) or not len(gt):
        return status
    iou, taken = box_iou(boxes, gt), np.zeros(len(gt), bool)
    for d in np.argsort(-scores, kind="stable"):
        cand = np.where(taken, -1.0, iou[d])
        j = int(np.argmax(cand))
        if cand[j] >= 0.5:
            status[d] = -1 if difficult[j] else 1
            taken[j] |= not difficult[j]
    return status


def test_gallery_status_is_the_devkits_where_the_rules_part():
    scene = crowd(np.random.default_rng(4))
    gb, gl, gd, db, ds, dl = scene
    split = _Split([_Truth(str(i), b, lab, d) for i, (b, lab, d) in enumerate(zip(gb, gl, gd))], 1, [], {})
    gallery = detection_status(split, db, ds, dl)
    parted = 0
    for i, ((status, matched), (want_status, want_matched)) in enumerate(zip(gallery, devkit_status(*scene, 1))):
        np.testing.assert_array_equal(status, want_status)
        np.testing.assert_array_equal(matched, want_matched)
        parted += int((next_free_greedy(gb[i], gd[i], db[i], ds[i]) != status).sum())
    assert parted > 0  # the scene does hold duplicates that a next-free greedy would call true positives
