"""Micro-benchmarks of the sliding-window detection kernels (run on demand: --run-benchmarks).

The HOG block map of one image, the template correlation over it, and a whole ``hog-svm-det`` detect
against OpenCV's ``HOGDescriptor.detectMultiScale`` on the same image with the same window, pyramid step,
stride and padding, one thread each, measured in this process. The goal: at most 3x OpenCV's time.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from benchsuite.data.synthetic_voc import generate_image
from benchsuite.ops.correlation import correlate_templates
from benchsuite.ops.hog import hog_map
from pipelines.classical.hog_svm_det import ClassModel, HogSvmDetector

WINDOW = (128, 64)  # OpenCV's people window, (height, width)
MAX_RATIO = 3.0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    with threadpool_limits(1):
        yield
    cv2.setNumThreads(before)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    img, _ = generate_image(3)
    return cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)  # a VOC-sized scene


def _detector(step: float, stride: int) -> HogSvmDetector:
    det = HogSvmDetector(pad_cells=2)
    rng = np.random.default_rng(0)
    th, tw = WINDOW[0] // 8 - 1, WINDOW[1] // 8 - 1
    template = (rng.normal(size=(th, tw, 36)) * 0.01).astype(np.float32)
    det.models_ = [ClassModel(0, WINDOW, template, -1.0)]
    det.start_scale_, det.step_, det.stride_ = 1.0, step, stride
    det.nms_threshold_, det.score_threshold_ = 0.3, 0.0
    return det


def _best_of(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def test_hog_map_one_image(benchmark, image):
    out = benchmark(hog_map, image[None])
    assert out.shape == (1, 59, 79, 36)
    benchmark.extra_info["megapixels_per_s"] = image.shape[0] * image.shape[1] / 1e6 / benchmark.stats["median"]


def test_template_correlation(benchmark, image):
    fmap = hog_map(image[None])[0]
    template = np.random.default_rng(1).normal(size=(15, 7, 36)).astype(np.float32)
    scores = benchmark(correlate_templates, fmap, [template], [0.0])
    assert scores[0].shape == (59 - 15 + 1, 79 - 7 + 1)


@pytest.mark.parametrize("step", [1.05, 1.2])
def test_detect_against_opencv_detect_multiscale(benchmark, image, step):
    det = _detector(step, 8)
    hog = cv2.HOGDescriptor((WINDOW[1], WINDOW[0]), (16, 16), (8, 8), (8, 8), 9)
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    pad = det.pad_cells * det.cell

    def opencv():
        return hog.detectMultiScale(image, hitThreshold=0.0, winStride=(8, 8), padding=(pad, pad), scale=step,
                                    groupThreshold=0)

    theirs = _best_of(opencv)
    benchmark(det.detect, image)
    ours = _best_of(lambda: det.detect(image))
    ratio = ours / theirs
    benchmark.extra_info.update(opencv_s=theirs, ours_s=ours, ratio_vs_opencv=ratio)
    assert ratio <= MAX_RATIO, f"hog-svm-det detect {ours:.3f} s vs OpenCV {theirs:.3f} s: {ratio:.2f}x"
