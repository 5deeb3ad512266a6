"""Selective search: the suite's fast preset against OpenCV's fast mode (run on demand: --run-benchmarks).

The issue's goal: at most 2x OpenCV's seconds per image. Both are timed in this process on the same
image, one thread each; the ratio lands in ``extra_info`` and is asserted, loosely, in the last test.
A synthetic 500 x 375 image (the size of a VOC/Penn-Fudan photo) stands in for real data.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from pipelines.classical.selective_search import SelectiveSearch
from pipelines.reference.opencv_selective_search import opencv_selective_search


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (500, 375), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 8, base.shape)
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    for _ in range(6):  # a few flat objects
        x, y = rng.integers(0, 400), rng.integers(0, 280)
        image[y:y + rng.integers(30, 90), x:x + rng.integers(20, 90)] = rng.integers(0, 256, 3)
    return image


def test_selective_search_fast(benchmark, photo):
    cv2.setNumThreads(1)
    boxes = benchmark.pedantic(SelectiveSearch(preset="fast").propose, args=(photo,), rounds=3, warmup_rounds=1)
    assert len(boxes) > 100


def test_opencv_selective_search_fast(benchmark, photo):
    cv2.setNumThreads(1)
    boxes = benchmark.pedantic(opencv_selective_search, args=(photo, "fast"), rounds=3, warmup_rounds=1)
    assert len(boxes) > 100


def test_speed_ratio_to_opencv(benchmark, photo):
    cv2.setNumThreads(1)
    ours = SelectiveSearch(preset="fast")

    def both() -> float:
        t0 = time.perf_counter()
        ours.propose(photo)
        t1 = time.perf_counter()
        opencv_selective_search(photo, "fast")
        t2 = time.perf_counter()
        return (t1 - t0) / (t2 - t1)

    ratio = benchmark.pedantic(both, rounds=3, warmup_rounds=1)
    benchmark.extra_info["ours_over_opencv"] = ratio
    assert ratio < 2.5  # the goal is 2.0; a little slack for a loaded machine
