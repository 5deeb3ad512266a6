"""Segmentation metrics against independent oracles: scikit-learn for the confusion-matrix metrics, brute force
(pixel loops, all-pairs distances, scikit-image's connected components) for boundaries and objects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from skimage.measure import label as connected_components
from sklearn.metrics import accuracy_score, jaccard_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from benchsuite.metrics import segmentation as seg

VOID = seg.VOID


def blocky(rng: np.random.Generator, h: int, w: int, block: int, hi: int) -> np.ndarray:
    """``(h, w)`` values in ``0 .. hi-1`` constant over ``block x block`` tiles."""
    coarse = rng.integers(0, hi, ((h + block - 1) // block, (w + block - 1) // block))
    return np.kron(coarse, np.ones((block, block), np.int64))[:h, :w]


def random_maps(seed: int, n_images: int, num_classes: int, void_p: float, size: tuple[int, int] = (14, 14)
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Blocky random truth, prediction and instance maps (a coarse grid upsampled, then pixel noise), with void."""
    rng = np.random.default_rng(seed)
    truths, preds, insts = [], [], []
    for _ in range(n_images):
        h, w = (int(rng.integers(1, size[0] + 1)), int(rng.integers(1, size[1] + 1)))
        block = int(rng.integers(1, 5))

        t = blocky(rng, h, w, block, num_classes)
        noise = rng.integers(0, num_classes, (h, w))
        p = np.where(rng.random((h, w)) < 0.2, noise, blocky(rng, h, w, block, num_classes))
        t = np.where(rng.random((h, w)) < void_p, VOID, t)
        inst = blocky(rng, h, w, block, 4)
        inst = np.where(rng.random((h, w)) < 0.05, VOID, inst)
        truths.append(t.astype(np.uint8))
        preds.append(p.astype(np.uint8))
        insts.append(inst.astype(np.uint8))
    return truths, preds, insts


def sklearn_scores(truths: list[np.ndarray], preds: list[np.ndarray], num_classes: int) -> dict[str, float]:
    t = np.concatenate([x.ravel() for x in truths]).astype(np.int64)
    p = np.concatenate([x.ravel() for x in preds]).astype(np.int64)
    keep = t != VOID
    t, p = t[keep], p[keep]
    labels = list(range(num_classes))
    if not len(t):
        return {}
    # scikit-learn scores an empty union (or support) 0; the metrics leave such classes out (NaN)
    iou = jaccard_score(t, p, labels=labels, average=None, zero_division=0).astype(np.float64)
    iou[~np.isin(labels, np.union1d(t, p))] = np.nan
    recall = recall_score(t, p, labels=labels, average=None, zero_division=0).astype(np.float64)
    recall[~np.isin(labels, t)] = np.nan
    support = np.bincount(t, minlength=num_classes)
    return {
        "confusion": sk_confusion(t, p, labels=labels),
        "iou": iou,
        "pixel_accuracy": accuracy_score(t, p),
        "mean_accuracy": float(np.nanmean(recall)),
        "mean_iou": float(np.nanmean(iou)),
        "fw_iou": float(np.nansum(support * np.nan_to_num(iou)) / support.sum()),
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_images=st.integers(1, 4), num_classes=st.integers(1, 5),
       void_p=st.sampled_from([0.0, 0.1, 0.5]))
def test_fcn_metrics_match_sklearn(seed, n_images, num_classes, void_p):
    truths, preds, insts = random_maps(seed, n_images, num_classes, void_p)
    names = [f"c{k}" for k in range(num_classes)]
    block, ev = seg.evaluate_segmentation(truths, preds, names, insts)
    oracle = sklearn_scores(truths, preds, num_classes)
    if not oracle:  # every pixel void: nothing to score
        assert np.isnan(block["pixel_accuracy"]) and np.isnan(block["mean_iou"])
        return
    np.testing.assert_array_equal(ev.confusion.sum(axis=0), oracle["confusion"])
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert block[key] == pytest.approx(oracle[key], abs=1e-9), key
    got_iou = np.array([block["per_class_iou"][n] for n in names], np.float64)
    np.testing.assert_array_equal(np.isnan(got_iou), np.isnan(oracle["iou"]))
    np.testing.assert_allclose(got_iou[~np.isnan(got_iou)], oracle["iou"][~np.isnan(oracle["iou"])], atol=1e-9)


# ---------------------------------------------------------------------------------------------- boundaries
def brute_boundary(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros_like(mask, bool)
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and not mask[yy, xx]:
                        out[y, x] = True
    return out


def brute_boundary_counts(t: np.ndarray, p: np.ndarray, num_classes: int, tol: float) -> np.ndarray:
    out = np.zeros((num_classes, 4), np.int64)
    for c in range(num_classes):
        bt, bp = brute_boundary(t == c), brute_boundary(p == c)
        pt_xy, pp_xy = np.argwhere(bt), np.argwhere(bp)
        pred_counted = np.array([t[y, x] != VOID for y, x in pp_xy], bool)
        if len(pt_xy) and len(pp_xy):
            d = cdist(pp_xy, pt_xy)
            pred_ok, true_ok = d.min(axis=1) <= tol, d.min(axis=0) <= tol
        else:
            pred_ok, true_ok = np.zeros(len(pp_xy), bool), np.zeros(len(pt_xy), bool)
        out[c] = ((pred_ok & pred_counted).sum(), pred_counted.sum(), true_ok.sum(), len(pt_xy))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num_classes=st.integers(1, 4), void_p=st.sampled_from([0.0, 0.15]),
       tol=st.sampled_from([1, 1.5, 2, 3]))
def test_boundary_counts_match_brute_force(seed, num_classes, void_p, tol):
    truths, preds, _ = random_maps(seed, 1, num_classes, void_p, size=(16, 16))
    got = seg.boundary_counts(truths[0], preds[0], num_classes, tolerance=tol)
    np.testing.assert_array_equal(got, brute_boundary_counts(truths[0].astype(int), preds[0].astype(int),
                                                             num_classes, tol))


def test_boundary_f1_of_a_shifted_square():
    """A square predicted one pixel to the right: within tolerance 1 every boundary pixel matches, at 0 only the
    overlapping parts of the edges do."""
    t = np.zeros((20, 20), np.uint8)
    t[5:15, 5:15] = 1
    p = np.roll(t, 1, axis=1)
    full = seg.boundary_f1_per_class(seg.boundary_counts(t, p, 2, tolerance=1))
    np.testing.assert_allclose(full, [1.0, 1.0])
    strict = seg.boundary_counts(t, p, 2, tolerance=0)
    # the square's boundary: 36 pixels; shifted by one, the top and bottom rows overlap in 9 pixels each minus
    # the corners that stop being boundary pixels: counted by the brute force instead of by hand
    np.testing.assert_array_equal(strict, brute_boundary_counts(t.astype(int), p.astype(int), 2, 0))
    assert 0 < seg.boundary_f1_per_class(strict)[1] < 1


def test_boundary_f1_rules_for_one_sided_and_absent_classes():
    counts = np.array([[0, 0, 0, 0], [0, 5, 0, 0], [0, 0, 0, 7], [3, 4, 2, 4]])
    f1 = seg.boundary_f1_per_class(counts)
    assert np.isnan(f1[0]) and f1[1] == 0 and f1[2] == 0
    assert f1[3] == pytest.approx(2 * 0.75 * 0.5 / 1.25)


# ----------------------------------------------------------------------------------------------- objects
def brute_instance_counts(t: np.ndarray, p: np.ndarray, inst: np.ndarray, num_classes: int) -> np.ndarray:
    rows, regions = [], []
    for j in range(1, VOID):
        pix = inst == j
        vals = t[pix]
        vals = vals[vals != VOID]
        if not len(vals):
            continue
        counts = [(vals == c).sum() for c in range(num_classes)]
        c = int(np.argmax(counts))
        region = pix & (t == c)
        tp = int((region & (p == c)).sum())
        rows.append([c, int(region.sum()), tp, int(region.sum()) - tp, 0])
        regions.append(region)
    for c in range(num_classes):
        comps = connected_components((p == c).astype(np.uint8), connectivity=2, background=0)
        members = [k for k, r in enumerate(rows) if r[0] == c]
        for y, x in np.argwhere((p == c) & (t != c) & (t != VOID)):
            comp = comps[y, x]
            touching = [k for k in members if (comps[regions[k]] == comp).any()]
            if not touching:
                continue
            best = min(touching, key=lambda k: (cdist([[y, x]], np.argwhere(regions[k])).min(), k))
            rows[best][4] += 1
    return np.array(rows, np.int64).reshape(-1, 5)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num_classes=st.integers(1, 4), void_p=st.sampled_from([0.0, 0.15]))
def test_instance_counts_match_brute_force(seed, num_classes, void_p):
    truths, preds, insts = random_maps(seed, 1, num_classes, void_p, size=(16, 16))
    t, p, inst = truths[0], preds[0], insts[0]
    got = seg.instance_counts(t, p, inst, num_classes)
    np.testing.assert_array_equal(got, brute_instance_counts(t.astype(int), p.astype(int), inst.astype(int),
                                                             num_classes))


def test_object_iou_by_size_buckets():
    """Two people: a small one (20x20) segmented exactly, a large one (100x100) half missed plus a 10-px fringe of
    over-extension; a false blob far from both is charged to neither."""
    t = np.zeros((160, 260), np.uint8)
    inst = np.zeros_like(t)
    t[10:30, 10:30], inst[10:30, 10:30] = 1, 1
    t[40:140, 100:200], inst[40:140, 100:200] = 1, 2
    p = np.zeros_like(t)
    p[10:30, 10:30] = 1
    p[40:140, 100:150] = 1  # the left half of the large one
    p[40:140, 90:100] = 1  # a 10-px fringe to its left
    p[150:155, 240:250] = 1  # a blob touching nothing
    block, ev = seg.evaluate_segmentation([t], [p], ["background", "person"], [inst])
    assert block["objects_by_size"] == {"small": 1, "medium": 0, "large": 1}
    assert block["iou_small"] == pytest.approx(1.0)
    assert np.isnan(block["iou_medium"])
    assert block["iou_large"] == pytest.approx(5000 / (10000 + 1000))
    np.testing.assert_array_equal(ev.instances[:, 4], [0, 1000])
    other = seg.segmentation_metrics(ev, ["background", "person"], area_thresholds=(300, 500))
    assert other["objects_by_size"] == {"small": 0, "medium": 1, "large": 1}
    assert other["iou_medium"] == pytest.approx(1.0) and np.isnan(other["iou_small"])


# ----------------------------------------------------------------------------------------------- bootstrap
def test_weighted_metrics_equal_a_materialised_resample():
    truths, preds, insts = random_maps(7, 6, 3, 0.1)
    _, ev = seg.evaluate_segmentation(truths, preds, ["a", "b", "c"], insts)
    weights = np.array([[2, 0, 1, 0, 3, 0], [0, 1, 1, 1, 1, 2]])
    got = seg.metrics_for_weights(ev, weights)
    for row, w in enumerate(weights):
        drawn = np.repeat(np.arange(6), w)
        block, _ = seg.evaluate_segmentation([truths[i] for i in drawn], [preds[i] for i in drawn], ["a", "b", "c"],
                                             [insts[i] for i in drawn])
        for key in seg.SCALAR_METRICS:
            want = block[key]
            assert (np.isnan(got[key][row]) and np.isnan(want)) or got[key][row] == pytest.approx(want, abs=1e-12), key


def test_intervals_contain_the_point_value_and_evidence_round_trips():
    truths, preds, insts = random_maps(3, 12, 3, 0.05)
    block, ev = seg.evaluate_segmentation(truths, preds, ["a", "b", "c"], insts)
    back = seg.SegmentationEvidence.from_arrays(dict(ev.to_arrays()))
    np.testing.assert_array_equal(back.confusion, ev.confusion)
    np.testing.assert_array_equal(back.instances, ev.instances)
    intervals = seg.segmentation_intervals(back, resamples=200)
    for key in ("pixel_accuracy", "mean_iou", "fw_iou", "boundary_f1"):
        lo, hi = intervals[key]
        assert lo <= block[key] <= hi and lo < hi, key
    again = seg.segmentation_intervals(ev, resamples=200)
    assert again == intervals  # the same seed draws the same images


def test_bad_inputs_name_the_value():
    t = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="prediction value 3"):
        seg.confusion_matrix(t, np.full((4, 4), 3), 3)
    with pytest.raises(ValueError, match="truth value 7"):
        seg.confusion_matrix(np.full((4, 4), 7), t, 3)
    with pytest.raises(ValueError, match="one shape"):
        seg.confusion_matrix(t, np.zeros((4, 5), np.uint8), 3)
    with pytest.raises(ValueError, match="prediction value"):
        seg.confusion_matrix(t, np.full((4, 4), VOID), 3)  # a prediction may not be void
