"""Boxes, IoU and NMS against brute-force loops and torchvision.ops, the independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from benchsuite.ops.boxes import (
    batched_nms,
    box_area,
    box_iou,
    check_boxes,
    check_detections,
    clip_boxes,
    merge_suppressed,
    nms,
    paired_box_iou,
    remove_small_boxes,
)


def brute_iou(a, b) -> float:
    """IoU of two boxes straight from the definition, one pair at a time."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def random_boxes(rng, n, extent=200.0, size=(1.0, 60.0)):
    xy = rng.uniform(0, extent, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(*size, (n, 2))], axis=1)


coords = st.floats(-50, 150, allow_nan=False, allow_infinity=False)


@st.composite
def box_arrays(draw, max_size=12):
    n = draw(st.integers(0, max_size))
    raw = draw(arrays(np.float64, (n, 4), elements=coords))
    # mostly proper boxes, sometimes degenerate (zero width/height) ones
    lo = np.minimum(raw[:, :2], raw[:, 2:])
    hi = np.maximum(raw[:, :2], raw[:, 2:])
    return np.concatenate([lo, hi], axis=1)


# ------------------------------------------------------------------------------------------------- IoU


def test_iou_hand_values():
    # one pixel (0, 0, 1, 1) against the two-pixel row (0, 0, 2, 1): 1 / 2
    assert box_iou([[0, 0, 1, 1]], [[0, 0, 2, 1]])[0, 0] == 0.5
    # 10x10 boxes shifted by 5 in x: inter 5*10 = 50, union 100 + 100 - 50 = 150
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    # touching boxes do not overlap; a zero-area box has IoU 0 even with itself
    assert box_iou([[0, 0, 10, 10]], [[10, 0, 20, 10]])[0, 0] == 0.0
    assert box_iou([[3, 3, 3, 8]], [[3, 3, 3, 8]])[0, 0] == 0.0
    np.testing.assert_array_equal(box_area([[0, 0, 1, 1], [2, 3, 12, 8], [5, 5, 4, 9]]), [1.0, 50.0, 0.0])


def test_iou_equals_voc_devkit_with_plus_one():
    """Our boxes come from VOC XML as x1 = xmin - 1, x2 = xmax; our IoU (no +1) equals the devkit's (+1)."""
    rng = np.random.default_rng(0)
    xml = rng.integers(1, 100, (300, 4))
    xml[:, 2:] = xml[:, :2] + rng.integers(0, 40, (300, 2))  # xmax >= xmin: at least one pixel wide
    ours = xml.astype(float) - np.array([1, 1, 0, 0])
    iou = box_iou(ours[:150], ours[150:])
    for i in range(0, 150, 7):
        for j in range(0, 150, 5):
            a, b = xml[i], xml[150 + j]
            iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
            ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
            if iw > 0 and ih > 0:
                ua = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - iw * ih
                expected = iw * ih / ua
            else:
                expected = 0.0
            assert iou[i, j] == expected


@settings(max_examples=60, deadline=None)
@given(box_arrays(), box_arrays())
def test_iou_against_brute_force_symmetric_and_bounded(a, b):
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    for i in range(len(a)):
        for j in range(len(b)):
            assert iou[i, j] == pytest.approx(brute_iou(a[i], b[j]), abs=1e-12)
    np.testing.assert_array_equal(iou, box_iou(b, a).T)
    assert np.all((iou >= 0) & (iou <= 1))
    if len(a):
        np.testing.assert_array_equal(paired_box_iou(a, a[::-1]), np.diag(box_iou(a, a[::-1])))


def test_iou_against_torchvision():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 40), random_boxes(rng, 70)
    expected = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=0, atol=1e-12)


def test_empty_and_malformed_inputs():
    assert box_iou(np.zeros((0, 4)), random_boxes(np.random.default_rng(0), 3)).shape == (0, 3)
    assert box_iou([], []).shape == (0, 0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_iou(np.zeros((3, 5)), np.zeros((1, 4)))
    with pytest.raises(ValueError):
        paired_box_iou(np.zeros((2, 4)), np.zeros((3, 4)))


def test_clip_and_remove_small():
    boxes = np.array([[-5.0, -1, 20, 30], [90, 40, 130, 70], [200, 10, 220, 20]])
    clipped = clip_boxes(boxes, width=100, height=50)
    np.testing.assert_array_equal(clipped, [[0, 0, 20, 30], [90, 40, 100, 50], [100, 10, 100, 20]])
    assert boxes[0, 0] == -5.0  # input untouched
    np.testing.assert_array_equal(remove_small_boxes(clipped, 10), [0, 1])
    np.testing.assert_array_equal(remove_small_boxes(clipped, 11), [0])


# ------------------------------------------------------------------------------------------------- NMS


def tv_nms(boxes, scores, thr):
    return torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).numpy()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 0.95])
def test_nms_matches_torchvision(seed, threshold):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # clustered boxes, so that suppression chains (A suppresses B, B would have suppressed C) happen
    centres = random_boxes(rng, max(1, n // 8), extent=150, size=(10, 60))
    boxes = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 4, (n, 4))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
    scores = rng.random(n)  # continuous: no ties, so torchvision's tie order does not matter
    keep = nms(boxes, scores, threshold)
    np.testing.assert_array_equal(keep, tv_nms(boxes, scores, threshold))
    assert keep.dtype == np.int64


def test_nms_many_boxes_matches_torchvision():
    """10k boxes, most kept: exercises the blocks against many kept boxes (and must stay quick)."""
    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 10_000, extent=2000, size=(10, 60))
    scores = rng.random(10_000)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), tv_nms(boxes, scores, 0.5))


def test_nms_hand_cases():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [50, 50, 60, 60]], float)
    # IoU(0,1) = 90/110 = 0.818, IoU(0,2) = 80/120 = 0.667, IoU(1,2) = 0.818
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [0, 2, 3])  # 2 survives: only 0.667 with box 0
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 3])
    np.testing.assert_array_equal(nms(boxes, scores, 0.9), [0, 1, 2, 3])
    # equal scores: the lower index wins, and the kept order keeps index order
    same = np.array([[0, 0, 10, 10]] * 3, float)
    np.testing.assert_array_equal(nms(same, np.array([0.5, 0.5, 0.5]), 0.5), [0])
    np.testing.assert_array_equal(nms(boxes[[3, 0]], np.array([0.5, 0.5]), 0.5), [0, 1])
    # suppression needs IoU strictly above the threshold: 0.5 exactly survives
    np.testing.assert_array_equal(nms(np.array([[0, 0, 2, 1], [0, 0, 1, 1]], float), np.array([1.0, 0.5]), 0.5),
                                  [0, 1])
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError):
        nms(boxes, scores[:2], 0.5)
    with pytest.raises(ValueError):
        nms(boxes, np.array([0.1, np.nan, 0.2, 0.3]), 0.5)


def brute_nms(boxes, scores, threshold):
    """Greedy NMS one box at a time; Python's sort is stable, so equal scores go in index order."""
    kept = []
    for i in sorted(range(len(boxes)), key=lambda k: -scores[k]):
        if all(brute_iou(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


def brute_merge(boxes, scores, threshold):
    """Greedy NMS one box at a time, each box joining the group of the kept box that suppressed it (the first
    kept box, in score order, that it overlaps by more than the threshold); the mean of every group."""
    groups: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda k: -scores[k]):
        owner = next((g for g in groups if brute_iou(boxes[i], boxes[g[0]]) > threshold), None)
        if owner is None:
            groups.append([i])
        else:
            owner.append(i)
    return ([g[0] for g in groups], np.array([boxes[g].mean(axis=0) for g in groups]).reshape(-1, 4),
            [len(g) for g in groups])


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.3), (1, 0.5), (2, 0.0), (3, 0.7)])
def test_merge_suppressed_against_brute_force(seed, threshold):
    rng = np.random.default_rng(400 + seed)
    boxes = random_boxes(rng, 150, extent=120, size=(10, 50))
    scores = rng.random(150)
    keep = nms(boxes, scores, threshold)
    kept, merged, sizes = brute_merge(boxes, scores, threshold)
    np.testing.assert_array_equal(keep, kept)
    got, counts = merge_suppressed(boxes, keep, threshold, return_counts=True)
    np.testing.assert_allclose(got, merged, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(counts, sizes)


def test_merge_suppressed_hand_case_and_prefix():
    # two shifted windows on one object, one far away: the pair becomes its mean, the lone box stays itself
    boxes = np.array([[0, 0, 10, 20], [2, 0, 12, 20], [100, 100, 110, 120]], float)
    scores = np.array([0.9, 0.8, 0.5])
    keep = nms(boxes, scores, 0.3)
    np.testing.assert_array_equal(keep, [0, 2])
    np.testing.assert_array_equal(merge_suppressed(boxes, keep, 0.3), [[1, 0, 11, 20], [100, 100, 110, 120]])
    # a prefix of keep (detections capped): the kept boxes' groups are unchanged
    np.testing.assert_array_equal(merge_suppressed(boxes, keep[:1], 0.3), [[1, 0, 11, 20]])
    assert merge_suppressed(boxes, np.zeros(0, np.int64), 0.3).shape == (0, 4)


@pytest.mark.parametrize("seed", range(3))
def test_nms_ties_against_brute_force(seed):
    # few distinct scores and duplicated boxes: the result depends on the tie order (stable, by index)
    rng = np.random.default_rng(300 + seed)
    base = random_boxes(rng, 60, extent=80, size=(10, 40))
    boxes = base[rng.integers(0, 60, 300)]
    scores = rng.integers(0, 3, 300) / 2
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), brute_nms(boxes, scores, 0.5))
    labels = rng.integers(0, 3, 300)
    expected = sorted((i for c in range(3) for i in np.flatnonzero(labels == c)[
        brute_nms(boxes[labels == c], scores[labels == c], 0.5)]), key=lambda i: (-scores[i], i))
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.5), expected)


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_matches_torchvision(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 1500))  # above and below torchvision's switch between its two strategies
    boxes = random_boxes(rng, n, extent=100, size=(5, 50))
    scores = rng.random(n)
    labels = rng.integers(0, 5, n) * 3 + 1  # sparse, non-zero-based labels
    expected = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                           torch.from_numpy(labels), 0.5).numpy()
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.5), expected)


def test_batched_nms_labels_do_not_interact():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.2, 0.9, 0.5])
    np.testing.assert_array_equal(batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5), [1, 2])
    np.testing.assert_array_equal(batched_nms(boxes, scores, np.array([0, 0, 0]), 0.5), [1])
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).shape == (0,)


@settings(max_examples=40, deadline=None)
@given(box_arrays(max_size=30), st.floats(0, 1), st.data())
def test_nms_properties(boxes, threshold, data):
    scores = np.asarray(data.draw(st.lists(st.floats(0, 1), min_size=len(boxes), max_size=len(boxes))), float)
    keep = nms(boxes, scores, threshold)
    assert len(set(keep.tolist())) == len(keep)
    assert np.all(np.diff(scores[keep]) <= 0)  # by descending score
    iou = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(iou, 0)
    assert np.all(iou <= threshold)  # no two kept boxes overlap above the threshold
    dropped = np.setdiff1d(np.arange(len(boxes)), keep)
    for d in dropped:  # every dropped box is explained by a kept box at least as good
        over = box_iou(boxes[[d]], boxes[keep])[0] > threshold
        assert over.any() and scores[keep][over].max() >= scores[d]


# ------------------------------------------------------------------------------------------ validation


def test_check_boxes():
    assert check_boxes(np.array([[0, 0, 1, 1], [2, 2, 5, 9]], float), 10, 10) == []
    assert check_boxes(np.zeros((0, 4))) == []
    assert check_boxes([]) == []
    assert "shape" in check_boxes(np.zeros((3, 5)))[0]
    assert "numeric" in check_boxes(np.array([["a", "b", "c", "d"]]))[0]
    problems = check_boxes(np.array([[0, 0, 1, 1], [5, 0, 5, 3], [0, 4, 2, 1], [np.nan, 0, 1, 1]]), what="det")
    assert len(problems) == 3
    assert any("1 of 4 boxes have x2 <= x1" in p and "row 1" in p for p in problems)
    assert any("y2 <= y1" in p and "row 2" in p for p in problems)
    assert any("non-finite" in p and "row 3" in p for p in problems)
    assert all(p.startswith("det:") for p in problems)
    outside = check_boxes(np.array([[0, 0, 11, 5]], float), width=10, height=10)
    assert len(outside) == 1 and "outside" in outside[0]
    assert check_boxes(np.array([[0, 0, 11, 5]], float)) == []  # without a size, no bounds check


def test_check_detections():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 5, 9]], float)
    assert check_detections(boxes, np.array([0.3, 0.2]), np.array([0, 2]), 3) == []
    assert check_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 3) == []
    assert any("scores" in p for p in check_detections(boxes, np.array([0.3]), np.array([0, 2]), 3))
    assert any("not finite" in p for p in check_detections(boxes, np.array([0.3, np.inf]), np.array([0, 2]), 3))
    assert any("outside [0, 3)" in p for p in check_detections(boxes, np.array([0.3, 0.2]), np.array([0, 3]), 3))
    assert any("integers" in p for p in check_detections(boxes, np.array([0.3, 0.2]), np.array([0, 0.5]), 3))
    assert any("shape" in p for p in check_detections(boxes, np.ones((2, 2)), np.array([0, 1]), 3))
    ragged = check_detections([[0, 0, 1], [0, 0, 1, 1]], np.array([0.3, 0.2]), np.array([0, 2]), 3)
    assert len(ragged) == 1 and "boxes" in ragged[0]
    bad_rows = check_detections(np.array([[0, 0, 1, 1], [3, 3, 2, 4]]), np.array([0.3]), np.array([0, 2]), 3)
    assert len(bad_rows) == 2  # the x2 <= x1 row and the missing score
