"""Superpixel region features per image (run on demand: --run-benchmarks).

The goal (issue 24): a few hundred Penn-Fudan images (about 300-400 x 400-600 px) featurise in a few minutes on 2
cores, i.e. well under a second per image on one core. A synthetic 500 x 375 photo-like image stands in for real
data; the CPU seconds per image land in ``extra_info``.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from benchsuite.ops.superpixels import featurise


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (500, 375), interpolation=cv2.INTER_CUBIC)
    image = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    for _ in range(6):  # a few flat objects
        x, y = rng.integers(0, 400), rng.integers(0, 280)
        image[y:y + rng.integers(30, 90), x:x + rng.integers(20, 90)] = rng.integers(0, 256, 3)
    return image


@pytest.mark.parametrize("method", ["slic", "felzenszwalb"])
def test_featurise_seconds_per_image(benchmark, photo, method):
    cv2.setNumThreads(1)

    def one() -> float:
        start = time.process_time()
        out = featurise(photo, method=method, n_segments=300)
        assert out.num_regions > 50
        return time.process_time() - start

    cpu = benchmark.pedantic(one, rounds=3, warmup_rounds=1)
    benchmark.extra_info["cpu_s_per_image"] = cpu
    assert cpu < 1.0  # a few hundred images in a few minutes on 2 cores
