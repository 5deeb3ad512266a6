"""Superpixels, region graph, region features, region labels and graph smoothing against brute force."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchsuite.ops import superpixels as sp


def scene(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    """A textured image with two flat-coloured blocks (so superpixels have edges to follow)."""
    rng = np.random.default_rng(seed)
    im = rng.integers(110, 130, (h, w, 3)).astype(np.uint8)
    im[10:40, 10:35] = (220, 40, 40)
    im[20:55, 45:75] = (30, 60, 200)
    return im


def random_labels(seed: int, h: int, w: int, r: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, r, ((h + 2) // 3, (w + 2) // 3))
    return sp.relabel(np.kron(coarse, np.ones((3, 3), np.int64))[:h, :w])[0]


@pytest.mark.parametrize("method", sp.SUPERPIXEL_METHODS)
def test_superpixels_are_contiguous_labels_that_follow_edges(method):
    im = scene()
    labels = sp.superpixels(im, method, n_segments=40, k=50)
    assert labels.shape == im.shape[:2] and labels.dtype == np.int64
    r = labels.max() + 1
    assert set(np.unique(labels).tolist()) == set(range(r)) and r > 3
    # no region straddles the red block's edge by much: each region is mostly inside or mostly outside it
    red = np.zeros(im.shape[:2], bool)
    red[10:40, 10:35] = True
    inside = np.bincount(labels.ravel(), weights=red.ravel(), minlength=r) / np.bincount(labels.ravel(), minlength=r)
    assert ((inside < 0.2) | (inside > 0.8)).mean() > 0.9
    with pytest.raises(ValueError, match="unknown superpixel method"):
        sp.superpixels(im, "watershed")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 14), w=st.integers(1, 14), r=st.integers(1, 6))
def test_region_graph_matches_brute_force(seed, h, w, r):
    labels = random_labels(seed, h, w, r)
    counts: dict[tuple[int, int], int] = {}
    for y, x in itertools.product(range(h), range(w)):
        for dy, dx in ((0, 1), (1, 0)):
            yy, xx = y + dy, x + dx
            if yy < h and xx < w and labels[y, x] != labels[yy, xx]:
                a, b = sorted((int(labels[y, x]), int(labels[yy, xx])))
                counts[(a, b)] = counts.get((a, b), 0) + 1
    g = sp.region_graph(labels)
    assert g.num_regions == labels.max() + 1
    assert [tuple(p) for p in g.pairs.tolist()] == sorted(counts)
    assert g.weights.tolist() == [counts[k] for k in sorted(counts)]


def test_region_features_against_per_region_brute_force():
    im = scene()
    labels = random_labels(3, *im.shape[:2], 12)
    graph = sp.region_graph(labels)
    rf = sp.region_features(im, labels, sp.FeatureConfig(), graph)
    r = labels.max() + 1
    x = rf.features
    assert x.shape[0] == r and x.dtype == np.float32 and np.isfinite(x).all()
    assert list(rf.groups) == list(sp.FEATURE_GROUPS)
    assert sum(s.stop - s.start for s in rf.groups.values()) == x.shape[1]
    lab = cv2.cvtColor(im, cv2.COLOR_RGB2Lab).astype(np.float64) / 255
    h, w = labels.shape
    for k in range(r):
        pix = labels == k
        ys, xs = np.nonzero(pix)
        want_lab = np.concatenate([lab[pix].mean(axis=0), lab[pix].std(axis=0)])
        np.testing.assert_allclose(x[k, rf.groups["lab"]], want_lab, atol=1e-5)
        want_pos = [xs.mean() / w, ys.mean() / h, xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h,
                    pix.mean(), np.sqrt(pix.mean())]
        np.testing.assert_allclose(x[k, rf.groups["position"]], want_pos, atol=1e-6)
        for name in ("lab_hist", "lbp", "gradient"):  # histograms normalised over the group
            assert x[k, rf.groups[name]].sum() == pytest.approx(1.0, abs=1e-5)
    own = np.concatenate([x[:, rf.groups[g]] for g in ("lab", "lab_hist", "lbp")], axis=1).astype(np.float64)
    for k in range(r):
        nbr = {int(b) if a == k else int(a): wt
               for (a, b), wt in zip(graph.pairs.tolist(), graph.weights) if k in (a, b)}
        if nbr:
            want = sum(wt * own[j] for j, wt in nbr.items()) / sum(nbr.values())
            np.testing.assert_allclose(x[k, rf.groups["context"]], want, atol=1e-5)
    only = sp.region_features(im, labels, sp.FeatureConfig(groups=("position", "lab")))
    assert list(only.groups) == ["position", "lab"] and only.features.shape[1] == 14
    with pytest.raises(ValueError, match="unknown feature groups"):
        sp.FeatureConfig(groups=("sift",))


def test_layout_features_are_the_centroid_cell_and_the_area_octave():
    im = scene()
    labels = random_labels(5, *im.shape[:2], 9)
    rf = sp.region_features(im, labels, sp.FeatureConfig(groups=("layout",), layout_grid=3))
    h, w = labels.shape
    x = rf.features
    assert x.shape == (labels.max() + 1, 9 + sp.LAYOUT_SIZE_BINS)
    for k in range(labels.max() + 1):
        ys, xs = np.nonzero(labels == k)
        cell = min(int(ys.mean() / h * 3), 2) * 3 + min(int(xs.mean() / w * 3), 2)
        octave = min(max(int(np.floor(np.log2(len(xs) / (h * w)))) + 14, 0), sp.LAYOUT_SIZE_BINS - 1)
        assert x[k].tolist() == [float(i in (cell, 9 + octave)) for i in range(x.shape[1])]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.integers(1, 4), void_p=st.sampled_from([0.0, 0.3, 1.0]))
def test_region_labels_are_void_aware_majorities(seed, c, void_p):
    rng = np.random.default_rng(seed)
    labels = random_labels(seed, 12, 12, 5)
    mask = np.where(rng.random((12, 12)) < void_p, sp.VOID, rng.integers(0, c, (12, 12)))
    classes, purity = sp.region_labels(labels, mask, c)
    for k in range(labels.max() + 1):
        vals = mask[(labels == k) & (mask != sp.VOID)]
        if not len(vals):
            assert classes[k] == -1 and purity[k] == 0
            continue
        counts = np.array([(vals == j).sum() for j in range(c)])
        assert classes[k] == int(np.flatnonzero(counts == counts.max())[0])
        assert purity[k] == pytest.approx(counts.max() / len(vals))
    painted = sp.paint(labels, np.maximum(classes, 0))
    assert painted.shape == labels.shape


def dense_smooth(scores, graph, alpha, iterations, factors=None):
    r = graph.num_regions
    length, w = np.zeros((r, r)), np.zeros((r, r))
    f = np.ones(len(graph.weights)) if factors is None else factors
    for (a, b), n, fk in zip(graph.pairs.tolist(), graph.weights, f):
        length[a, b] = length[b, a] = n
        w[a, b] = w[b, a] = n * fk
    total = length.sum(axis=1)
    p = w / np.where(total > 0, total, 1)[:, None]
    p[np.diag_indices(r)] = 1 - p.sum(axis=1)
    s = scores.copy()
    for _ in range(iterations):
        s = (1 - alpha) * scores + alpha * p @ s
    return s


def test_smoothing_matches_dense_iteration_and_removes_an_outlier():
    labels = np.repeat(np.arange(5)[None, :], 3, axis=0)  # a chain of 5 regions, 1 px wide each
    graph = sp.region_graph(labels)
    scores = np.array([[1.0, 0], [1, 0], [0, 0.6], [1, 0], [1, 0]])  # region 2 disagrees weakly
    smoothed = sp.smooth_scores(scores, graph, alpha=0.6, iterations=15)
    np.testing.assert_allclose(smoothed, dense_smooth(scores, graph, 0.6, 15))
    assert smoothed.argmax(axis=1).tolist() == [0, 0, 0, 0, 0]
    np.testing.assert_array_equal(sp.smooth_scores(scores, graph, alpha=0.0), scores)
    lab = np.array([[0.1, 0.5, 0.5], [0.1, 0.5, 0.5], [0.9, 0.5, 0.5], [0.1, 0.5, 0.5], [0.1, 0.5, 0.5]])
    contrast = sp.contrast_factors(graph, lab, sigma=0.05)
    assert contrast[1] < 1e-6 and contrast[0] == pytest.approx(1.0)  # an edge of strong colour contrast is cut
    kept = sp.smooth_scores(scores, graph, alpha=0.6, iterations=15, factors=contrast)
    np.testing.assert_allclose(kept, dense_smooth(scores, graph, 0.6, 15, contrast))
    assert kept.argmax(axis=1)[2] == 1  # across strong edges the outlier keeps its own label
    np.testing.assert_allclose(sp.smoothing_matrix(graph, contrast).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="edge factors"):
        sp.smooth_scores(scores, graph, factors=np.full(len(graph.weights), 2.0))
    with pytest.raises(ValueError, match="alpha"):
        sp.smooth_scores(scores, graph, alpha=1.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), beta=st.sampled_from([0.0, 0.05, 0.3, 2.0]), c=st.integers(2, 3))
def test_potts_icm_reaches_a_local_minimum(seed, beta, c):
    rng = np.random.default_rng(seed)
    labels = random_labels(seed, 10, 10, 6)
    graph = sp.region_graph(labels)
    costs = rng.random((graph.num_regions, c))
    y = sp.potts_icm(costs, graph, beta)
    start = np.argmin(costs, axis=1)
    e = sp.potts_energy(costs, graph, y, beta)
    assert e <= sp.potts_energy(costs, graph, start, beta) + 1e-12
    if beta == 0:
        np.testing.assert_array_equal(y, start)
    for r, k in itertools.product(range(graph.num_regions), range(c)):  # no single change lowers the energy
        other = y.copy()
        other[r] = k
        assert sp.potts_energy(costs, graph, other, beta) >= e - 1e-9


def test_featurise_one_call():
    out = sp.featurise(scene(), n_segments=30)
    assert out.num_regions == out.labels.max() + 1 == len(out.features.features)
    assert out.graph.num_regions == out.num_regions
