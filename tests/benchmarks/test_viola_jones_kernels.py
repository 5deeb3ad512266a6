"""Micro-benchmarks of the Viola-Jones hot kernels (run on demand: --run-benchmarks).

``extra_info`` carries the rates the detector's speed depends on: pixels per second for the integral
image, feature evaluations per second for the Haar pool (training) and the stump search.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.boosting import SortedFeatures, fit_stumps
from benchsuite.ops.haar import haar_feature_pool, haar_values
from benchsuite.ops.integral import integral_image, window_integrals

WINDOW = (38, 16)  # the pedestrian window viola-jones picks on Penn-Fudan


@pytest.fixture(scope="module")
def grey_image():
    return np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)


@pytest.fixture(scope="module")
def pool():
    return haar_feature_pool(*WINDOW, 8000)[0]


def test_integral_image(benchmark, grey_image):
    ii = benchmark(integral_image, grey_image)
    assert ii.shape == (481, 641)
    benchmark.extra_info["pixels_per_s"] = grey_image.size / benchmark.stats["median"]


def test_squared_integral_image(benchmark, grey_image):
    ii2 = benchmark(integral_image, grey_image, True)
    assert ii2.shape == (481, 641)


def test_haar_pool_values(benchmark, grey_image, pool):
    ii = integral_image(grey_image)
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 480 - WINDOW[0], n)
    x = rng.integers(0, 640 - WINDOW[1], n)
    windows = window_integrals(ii, y, x, *WINDOW).astype(np.float32)
    corner = pool.corner_matrix()
    values = benchmark(haar_values, corner, windows, np.ones(n, np.float32))
    assert values.shape == (len(pool), n)
    benchmark.extra_info["feature_evaluations_per_s"] = len(pool) * n / benchmark.stats["median"]


def test_stump_search_one_round(benchmark, pool):
    rng = np.random.default_rng(2)
    n = 3000
    values = rng.normal(size=(len(pool), n)).astype(np.float32)
    labels = rng.random(n) < 0.4
    weights = rng.random(n)
    presorted = SortedFeatures.of(values)
    fit = benchmark.pedantic(fit_stumps, args=(values, labels, weights, presorted), rounds=3, iterations=1)
    assert fit.error.shape == (len(pool),)
    benchmark.extra_info["feature_samples_per_s"] = len(pool) * n / benchmark.stats["median"]
