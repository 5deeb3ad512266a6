"""Micro-benchmarks of the classification hot kernels (run on demand: --run-benchmarks).

The L1 benchmarks also report their rate in byte differences per second (``extra_info``), the figure the
nn-l1 goal depends on: the 10,000 x 50,000 CIFAR-10 matrix is 1.5e12 byte differences. Besides the
kernel ``l1_knn`` picks for this CPU (``psadbw`` with AVX2 / AVX-512BW), every other one it can run is
timed for comparison. nn-l1 against the machine's limit, faiss and ``torch.cdist``:
``test_nn_l1_limit.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops import distances
from benchsuite.ops.distances import l1_distances, l1_knn
from benchsuite.ops.hog import hog_features
from benchsuite.ops.linear_svm import LinearSVM

D = 3072


@pytest.fixture(scope="module")
def uint8_rows():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (512, D), dtype=np.uint8), rng.integers(0, 256, (10000, D), dtype=np.uint8)


def test_l1_distances(benchmark, uint8_rows):
    q, r = uint8_rows
    l1_distances(q[:2], r[:2])  # compile outside the timing
    out = benchmark(l1_distances, q, r)
    assert out.shape == (512, 10000)
    benchmark.extra_info["byte_differences_per_s"] = q.shape[0] * r.shape[0] * D / benchmark.stats["median"]
    benchmark.extra_info["kernel"] = distances.KERNEL


@pytest.mark.parametrize("kernel", ["portable", "sad32", "sad64"])
def test_l1_knn_kernel(benchmark, uint8_rows, kernel):
    width = {"sad32": 32, "sad64": 64}.get(kernel, 0)
    if width > distances.SAD_WIDTH:
        pytest.skip(f"this CPU has no {width}-byte psadbw")
    q, r = uint8_rows[0][:256], uint8_rows[1][:8192]
    l1_knn(q[:2], r[:2], 1, kernel=kernel)  # compile outside the timing
    benchmark(l1_knn, q, r, 10, kernel=kernel)
    benchmark.extra_info["byte_differences_per_s"] = q.shape[0] * r.shape[0] * D / benchmark.stats["median"]


def test_l1_knn(benchmark, uint8_rows):
    q, r = uint8_rows
    l1_knn(q[:2], r[:20], 10)
    _, i = benchmark(l1_knn, q, r, 10)
    assert i.shape == (512, 10)
    benchmark.extra_info["byte_differences_per_s"] = q.shape[0] * r.shape[0] * D / benchmark.stats["median"]


def test_hog_features_cifar_batch(benchmark):
    images = np.random.default_rng(1).integers(0, 256, (2000, 32, 32, 3), dtype=np.uint8)
    feats = benchmark(hog_features, images, 4)
    assert feats.shape == (2000, 7 * 7 * 36)
    benchmark.extra_info["images_per_s"] = 2000 / benchmark.stats["median"]


def test_linear_svm_fit(benchmark):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10000, 500)).astype(np.float32)
    y = rng.integers(0, 10, 10000)
    model = benchmark.pedantic(lambda: LinearSVM(C=0.01, max_iter=50).fit(x, y), rounds=3, iterations=1)
    assert model.coef_.shape == (10, 500)
