"""Integral images against direct sums, Haar features against hand-computed values and direct slices."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.haar import (
    KIND_NAMES,
    HaarFeatures,
    count_haar_features,
    enumerate_haar_features,
    haar_feature_pool,
    haar_values,
    sample_haar_features,
)
from benchsuite.ops.integral import integral_image, window_integrals, window_mean_std, window_sums

# a small non-linear array: every feature value below is worked out by hand from it
A = np.array([[9, 0, 3, 1],
              [2, 7, 5, 8],
              [4, 4, 1, 6],
              [0, 3, 2, 5]], np.uint8)


def test_integral_image_matches_direct_sums():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 7, 11)).astype(np.uint8)
    ii = integral_image(a)
    ii2 = integral_image(a, squared=True)
    assert ii.shape == (3, 8, 12) and ii.dtype == np.float64
    assert not ii[:, 0, :].any() and not ii[:, :, 0].any()
    for y in range(8):
        for x in range(12):
            np.testing.assert_array_equal(ii[:, y, x], a[:, :y, :x].sum(axis=(1, 2)))
            np.testing.assert_array_equal(ii2[:, y, x], (a[:, :y, :x].astype(np.int64) ** 2).sum(axis=(1, 2)))


def test_window_sums_mean_std_and_window_integrals():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 30)).astype(np.float64)
    ii, ii2 = integral_image(a), integral_image(a, squared=True)
    h, w = 5, 7
    y, x = np.meshgrid(np.arange(0, 16), np.arange(0, 24), indexing="ij")
    y, x = y.ravel(), x.ravel()
    direct = np.array([a[r : r + h, c : c + w].sum() for r, c in zip(y, x)])
    np.testing.assert_allclose(window_sums(ii, y, x, h, w), direct, rtol=0, atol=1e-9)
    mean, std = window_mean_std(ii, ii2, y, x, h, w)
    np.testing.assert_allclose(mean, [a[r : r + h, c : c + w].mean() for r, c in zip(y, x)], atol=1e-9)
    np.testing.assert_allclose(std, [a[r : r + h, c : c + w].std() for r, c in zip(y, x)], atol=1e-6)
    blocks = window_integrals(ii, y[:40], x[:40], h, w)
    expect = np.stack([integral_image(a[r : r + h, c : c + w]).ravel() for r, c in zip(y[:40], x[:40])])
    np.testing.assert_allclose(blocks, expect, atol=1e-9)


def _one(kind: str, x: int, y: int, cw: int, ch: int) -> HaarFeatures:
    return HaarFeatures(4, 4, np.array([KIND_NAMES.index(kind)], np.int8), np.array([x], np.int32),
                        np.array([y], np.int32), np.array([cw], np.int32), np.array([ch], np.int32))


@pytest.mark.parametrize("kind, x, y, cw, ch, expected", [
    ("two_h", 0, 0, 1, 2, (9 + 2) - (0 + 7)),                              # 4
    ("two_v", 1, 1, 2, 1, (7 + 5) - (4 + 1)),                              # 7
    ("three_h", 1, 0, 1, 1, 0 - 2 * 3 + 1),                                # -5
    ("three_v", 3, 0, 1, 1, 1 - 2 * 8 + 6),                                # -9
    ("four", 0, 0, 2, 2, (9 + 0 + 2 + 7) - (3 + 1 + 5 + 8) - (4 + 4 + 0 + 3) + (1 + 6 + 2 + 5)),  # 4
])
def test_each_feature_kind_against_hand_computed_values(kind, x, y, cw, ch, expected):
    feature = _one(kind, x, y, cw, ch)
    ii = integral_image(A).reshape(1, -1)
    value = haar_values(feature.corner_matrix(np.float64), ii)
    assert value.shape == (1, 1) and value[0, 0] == expected
    # the same value from the corner list used by detection (gathers from a larger integral image)
    dy, dx, wts, _ = feature.corners()
    big = integral_image(np.pad(A, ((2, 0), (3, 0))))  # the window sits at row 2, column 3
    assert float((big[2 + dy, 3 + dx] * wts).sum()) == expected


def test_pool_counts_and_values_against_direct_slices():
    assert len(enumerate_haar_features(24, 24)) == 162336  # the count quoted by Viola & Jones (2004)
    pool, step = haar_feature_pool(38, 16, 6000)
    assert len(pool) <= 6000 and step >= 2 and set(np.unique(pool.kind)) == set(range(5))
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (6, 38, 16)).astype(np.float64)
    flat = integral_image(crops).reshape(6, -1)
    scale = crops.reshape(6, -1).std(axis=1)
    values = haar_values(pool.corner_matrix(np.float64), flat, scale)
    rects, weights = pool.rectangles()
    for f in rng.choice(len(pool), 40, replace=False):
        direct = np.zeros(6)
        for (x, y, w, h), wt in zip(rects[f], weights[f]):
            direct += wt * crops[:, y : y + h, x : x + w].sum(axis=(1, 2))
        np.testing.assert_allclose(values[f], direct / scale, rtol=1e-9, atol=1e-9)
    # every feature is blind to a constant added to the window (weights sum to zero over the area)
    shifted = haar_values(pool.corner_matrix(np.float64), integral_image(crops + 17).reshape(6, -1), scale)
    np.testing.assert_allclose(shifted, values, atol=1e-6)


@pytest.mark.parametrize("height, width", [(24, 24), (40, 14), (9, 31), (3, 2)])
def test_feature_count_in_closed_form_equals_the_enumeration(height, width):
    assert count_haar_features(height, width) == len(enumerate_haar_features(height, width))
    assert count_haar_features(height, width, min_cell=2) == len(enumerate_haar_features(height, width, min_cell=2))


def test_sampled_pool_is_a_uniform_draw_from_the_full_enumeration():
    full = enumerate_haar_features(20, 12)
    keys = set(zip(full.kind.tolist(), full.x.tolist(), full.y.tolist(), full.cell_w.tolist(), full.cell_h.tolist()))
    pool = sample_haar_features(20, 12, 3000, np.random.default_rng(0))
    got = list(zip(pool.kind.tolist(), pool.x.tolist(), pool.y.tolist(), pool.cell_w.tolist(), pool.cell_h.tolist()))
    assert len(pool) == 3000 and len(set(got)) == 3000 and set(got) <= keys  # distinct features of the window
    rects, _ = pool.rectangles()
    assert (rects[..., 0] + rects[..., 2] <= 12).all() and (rects[..., 1] + rects[..., 3] <= 20).all()
    # unit steps: odd positions and sizes are drawn too (a thinned grid would have none)
    assert (pool.x % 2 == 1).any() and (pool.cell_h % 2 == 1).any() and pool.cell_w.min() == 1
    # each kind in proportion to its share of the enumeration (binomial spread: 4 sigma is ~0.036 here)
    share_full = np.bincount(full.kind, minlength=5) / len(full)
    share_pool = np.bincount(pool.kind, minlength=5) / len(pool)
    np.testing.assert_allclose(share_pool, share_full, atol=0.04)
    # the same generator state gives the same pool; asking for more than there is gives the whole enumeration
    again = sample_haar_features(20, 12, 3000, np.random.default_rng(0))
    np.testing.assert_array_equal(again.x, pool.x)
    assert len(sample_haar_features(4, 4, 10**6, np.random.default_rng(0))) == len(enumerate_haar_features(4, 4))
