"""Micro-benchmarks of the sliding-window detection kernels (run on demand: --run-benchmarks).

The HOG block map of one image, the template correlation over it, and a whole ``hog-svm-det`` detect
against OpenCV's ``HOGDescriptor.detectMultiScale`` on the same image with the same window, pyramid step,
stride and padding, one thread each, measured in this process. The goal: at most 3x OpenCV's time.

The last test does the same with a ``hog-svm-det`` fitted at smoke size on the synthetic VOC set (its class
windows, first pyramid scale, chosen step and stride; OpenCV scanning with each class's window and an SVM that
rejects every window, so that its time is the scan): the comparison that used to run inside ``fit``, on the
fit clock. Its ratio ours / OpenCV is printed beside the target, 1.0.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.data.datasets import open_dataset
from benchsuite.data.synthetic_voc import generate_image
from benchsuite.ops.correlation import correlate_templates
from benchsuite.ops.hog import hog_map
from pipelines.classical.hog_svm_det import ClassModel, HogSvmDetector

WINDOW = (128, 64)  # OpenCV's people window, (height, width)
MAX_RATIO = 3.0
#: what the fitted detector aims at: OpenCV's speed
TARGET_RATIO = 1.0


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


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, cache_dir) -> tuple[HogSvmDetector, np.ndarray]:
    data = open_dataset("synthetic-voc", tmp_path_factory.mktemp("no-data"), cache_dir)
    det = HogSvmDetector(**HogSvmDetector.profile_params["smoke"])
    det.fit(data.load("train"), data.load("val"), Context(num_threads=1))
    scene = cv2.resize(data.load("test").load_image(0), (640, 480), interpolation=cv2.INTER_LINEAR)
    return det, scene


def opencv_scan(det: HogSvmDetector, image: np.ndarray) -> float:
    """Best-of seconds of OpenCV's ``detectMultiScale`` over ``image`` with each of ``det``'s class windows,
    from ``det``'s first pyramid scale, with its step, stride, padding and HOG geometry."""
    pad = det.pad_cells * det.cell
    scanners = []
    for m in det.models_:
        hog = cv2.HOGDescriptor((m.window[1], m.window[0]), (det.block * det.cell,) * 2, (det.cell, det.cell),
                                (det.cell, det.cell), det.bins)
        weights = np.zeros(hog.getDescriptorSize() + 1, np.float32)
        weights[-1] = -1e3  # no window passes: the scan, not the grouping
        hog.setSVMDetector(weights)
        scanners.append(hog)

    def scan() -> None:
        first = image
        if det.start_scale_ != 1.0:  # the same first level as ours (upsampled for objects below the window)
            first = cv2.resize(image, None, fx=det.start_scale_, fy=det.start_scale_, interpolation=cv2.INTER_LINEAR)
        for hog in scanners:
            hog.detectMultiScale(first, hitThreshold=0.0, winStride=(det.stride_, det.stride_), padding=(pad, pad),
                                 scale=det.step_, groupThreshold=0)

    return _best_of(scan)


def test_fitted_detect_against_opencv_detect_multiscale(benchmark, fitted):
    det, scene = fitted
    assert det.models_, "the smoke fit trained no class model"
    theirs = opencv_scan(det, scene)
    benchmark.pedantic(det.detect, args=(scene,), rounds=3, warmup_rounds=1)
    ours = _best_of(lambda: det.detect(scene))
    ratio = ours / theirs
    benchmark.extra_info.update(ours_s=ours, opencv_s=theirs, ratio_vs_opencv=ratio, target=TARGET_RATIO,
                                classes=len(det.models_), step=det.step_, stride=det.stride_)
    print(f"\nhog-svm-det detect {ours * 1e3:.1f} ms, OpenCV detectMultiScale {theirs * 1e3:.1f} ms "
          f"({len(det.models_)} class window(s), step {det.step_}, stride {det.stride_}): ratio {ratio:.2f} "
          f"(target {TARGET_RATIO:.1f})")
    assert ratio <= MAX_RATIO, f"hog-svm-det detect {ours:.3f} s vs OpenCV {theirs:.3f} s: {ratio:.2f}x"
