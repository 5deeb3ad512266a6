"""Proposal metrics against hand-worked cases and a brute-force loop over objects and proposals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchsuite.metrics.proposals import best_overlaps, curve_budgets, evaluate_proposals


def brute_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def brute_force(gt_boxes, gt_labels, gt_difficult, proposals, num_classes, budgets):
    """Recall per (budget, threshold) and ABO per class, one object and one proposal at a time."""
    found = {(n, t): [] for n in budgets for t in (0.5, 0.7)}
    best_all = {c: [] for c in range(num_classes)}
    for boxes, labels, diff, props in zip(gt_boxes, gt_labels, gt_difficult, proposals):
        for box, label, d in zip(boxes, labels, diff):
            if d:
                continue
            ious = [brute_iou(box, p) for p in props]
            for n in budgets:
                best = max(ious[:n], default=0.0)
                for t in (0.5, 0.7):
                    found[n, t].append(best >= t)
            best_all[int(label)].append(max(ious, default=0.0))
    recall = {k: (sum(v) / len(v) if v else math.nan) for k, v in found.items()}
    abo = {c: (sum(v) / len(v) if v else math.nan) for c, v in best_all.items()}
    return recall, abo


def random_images(rng, n_images, num_classes=3, max_gt=5, max_props=300, p_difficult=0.2):
    gb, gl, gd, props = [], [], [], []
    for _ in range(n_images):
        m = int(rng.integers(0, max_gt + 1))
        xy = rng.uniform(0, 200, (m, 2))
        g = np.concatenate([xy, xy + rng.uniform(5, 100, (m, 2))], axis=1)
        p = int(rng.integers(0, max_props + 1))
        src = rng.integers(0, max(m, 1), p)
        boxes = np.concatenate([rng.uniform(0, 200, (p, 2)), np.zeros((p, 2))], axis=1)
        boxes[:, 2:] = boxes[:, :2] + rng.uniform(5, 100, (p, 2))
        if m:  # some proposals near objects, the rest anywhere
            near = rng.random(p) < 0.3
            boxes[near] = g[src[near]] + rng.normal(0, 6, (int(near.sum()), 4))
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        gb.append(g)
        gl.append(rng.integers(0, num_classes, m))
        gd.append(rng.random(m) < p_difficult)
        props.append(boxes)
    return gb, gl, gd, props


def hand_scene():
    a, b, diff = [0, 0, 10, 10], [50, 50, 70, 70], [0, 0, 5, 5]
    gt = [np.array([a, b, diff], float), np.array([[0, 0, 20, 20]], float)]
    labels = [np.array([0, 1, 0]), np.array([0])]
    difficult = [np.array([False, False, True]), np.array([False])]
    # image 0 ranked proposals: IoU with A 100/200 = 0.5; with B 320/400 = 0.8; exactly A. Image 1: none.
    proposals = [np.array([[0, 0, 10, 20], [50, 50, 70, 66], a], float), np.zeros((0, 4))]
    return gt, labels, difficult, proposals


def test_hand_worked():
    m = evaluate_proposals(*hand_scene(), ["cat", "dog", "bird"], budgets=(1, 2, 3, 5), curve_points=[1, 2, 3])
    # objects A (cat), B (dog), C (cat, image 1, no proposals); the difficult one is left out.
    # best overlap within 1: A 0.5, B 0, C 0 -> recall@0.5 1/3 (0.5 counts: >=), recall@0.7 0
    # within 2: A 0.5, B 0.8, C 0 -> 2/3, 1/3; within 3 (and 5: all 3 there are): A 1, B 0.8 -> 2/3, 2/3
    expected = {1: (1 / 3, 0.0), 2: (2 / 3, 1 / 3), 3: (2 / 3, 2 / 3), 5: (2 / 3, 2 / 3)}
    for n, (r50, r70) in expected.items():
        assert m[f"recall_at_{n}_iou50"] == pytest.approx(r50, abs=1e-12)
        assert m[f"recall_at_{n}_iou70"] == pytest.approx(r70, abs=1e-12)
    assert m["recall_curve"]["num_proposals"] == [1, 2, 3]
    np.testing.assert_allclose(m["recall_curve"]["recall_iou50"], [1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(m["recall_curve"]["recall_iou70"], [0, 1 / 3, 2 / 3])
    # ABO: cat (A 1.0 + C 0) / 2 = 0.5, dog 0.8, bird no objects: NaN; MABO (0.5 + 0.8) / 2
    assert m["abo_per_class"]["cat"] == pytest.approx(0.5, abs=1e-12)
    assert m["abo_per_class"]["dog"] == pytest.approx(0.8, abs=1e-12)
    assert math.isnan(m["abo_per_class"]["bird"])
    assert m["mabo"] == pytest.approx(0.65, abs=1e-12)
    assert m["proposals_per_image"] == 1.5
    assert (m["num_images"], m["num_gt"], m["num_difficult"]) == (2, 3, 1)


@pytest.mark.parametrize("seed", range(5))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    scene = random_images(rng, n_images=8)
    budgets = (1, 10, 100, 250, 1000)
    m = evaluate_proposals(*scene, ["a", "b", "c"], budgets=budgets)
    recall, abo = brute_force(*scene, 3, budgets)
    for n in budgets:
        assert m[f"recall_at_{n}_iou50"] == pytest.approx(recall[n, 0.5], abs=1e-12, nan_ok=True)
        assert m[f"recall_at_{n}_iou70"] == pytest.approx(recall[n, 0.7], abs=1e-12, nan_ok=True)
    for c, name in enumerate("abc"):
        assert m["abo_per_class"][name] == pytest.approx(abo[c], abs=1e-12, nan_ok=True)
    assert m["mabo"] == pytest.approx(np.nanmean(list(abo.values())), abs=1e-12)
    assert m["proposals_per_image"] == pytest.approx(np.mean([len(p) for p in scene[3]]))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_against_brute_force_small(seed, n_images, budgets):
    rng = np.random.default_rng(seed)
    scene = random_images(rng, n_images, max_gt=3, max_props=30)
    m = evaluate_proposals(*scene, ["a", "b", "c"], budgets=budgets, curve_points=5)
    recall, abo = brute_force(*scene, 3, budgets)
    for n in budgets:
        assert m[f"recall_at_{n}_iou50"] == pytest.approx(recall[n, 0.5], abs=1e-12, nan_ok=True)
        assert m[f"recall_at_{n}_iou70"] == pytest.approx(recall[n, 0.7], abs=1e-12, nan_ok=True)
    for c, name in enumerate("abc"):
        assert m["abo_per_class"][name] == pytest.approx(abo[c], abs=1e-12, nan_ok=True)
    curve = m["recall_curve"]
    if m["num_gt"]:  # more proposals never lose an object; a stricter IoU never finds more
        assert np.all(np.diff(curve["recall_iou50"]) >= 0) and np.all(np.diff(curve["recall_iou70"]) >= 0)
        assert np.all(np.array(curve["recall_iou70"]) <= np.array(curve["recall_iou50"]))
    # permuting images changes nothing
    perm = rng.permutation(n_images)
    shuffled = evaluate_proposals(*[[part[i] for i in perm] for part in scene], ["a", "b", "c"], budgets=budgets,
                                  curve_points=5)
    for key in [f"recall_at_{n}_iou50" for n in budgets] + ["mabo"]:
        assert shuffled[key] == pytest.approx(m[key], abs=1e-12, nan_ok=True)


def test_best_overlaps():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    props = np.array([[0, 0, 10, 20], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(best_overlaps(gt, props, [1, 2, 3, 10]), [[0.5, 0.5, 1, 1], [0, 1, 1, 1]])
    assert best_overlaps(gt, np.zeros((0, 4)), [1, 5]).tolist() == [[0, 0], [0, 0]]
    assert best_overlaps(np.zeros((0, 4)), props, [1]).shape == (0, 1)


def test_curve_budgets():
    b = curve_budgets(2000, 25)
    assert b[0] == 1 and b[-1] == 2000 and len(b) <= 25
    assert np.all(np.diff(b) > 0)
    ratios = np.array(b[1:]) / np.array(b[:-1])
    assert ratios[-1] == pytest.approx(2000 ** (1 / 24), rel=0.05)  # log-spaced at the top end
    assert curve_budgets(1) == [1]


def test_default_budgets_keys_and_empty():
    m = evaluate_proposals(*hand_scene(), ["cat", "dog", "bird"])
    for n in (100, 500, 1000, 2000):
        assert m[f"recall_at_{n}_iou50"] == pytest.approx(2 / 3)
    assert m["recall_curve"]["num_proposals"][-1] == 2000
    empty = evaluate_proposals([], [], [], [], ["cat"])
    assert math.isnan(empty["recall_at_100_iou50"]) and math.isnan(empty["mabo"])
    assert (empty["num_images"], empty["num_gt"]) == (0, 0)
    no_objects = evaluate_proposals([np.zeros((0, 4))], [np.zeros(0, int)], None, [np.ones((3, 4))], ["cat"])
    assert math.isnan(no_objects["recall_at_100_iou70"]) and no_objects["proposals_per_image"] == 3.0


def test_validation():
    gt, labels, difficult, props = hand_scene()
    with pytest.raises(ValueError):
        evaluate_proposals(gt, labels, difficult, props[:1], ["cat", "dog"])
    with pytest.raises(ValueError, match="labels"):
        evaluate_proposals(gt, labels, difficult, props, ["cat"])
    with pytest.raises(ValueError, match="budgets"):
        evaluate_proposals(gt, labels, difficult, props, ["cat", "dog"], budgets=(0, 10))
