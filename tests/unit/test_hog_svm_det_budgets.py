"""hog-svm-det's bounded training and scale reach: positive budgets per size band and image, the template's
floor in cells, each model's largest pyramid scale, one HOG map per level for every class, objects below reach,
and the progress lines of a long phase."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import pipelines.classical.hog_svm_det as hsd
from benchsuite.api import Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.synthetic_voc import generate_image
from benchsuite.measure.progress import ProgressLog, logged
from pipelines.classical.hog_svm_det import ClassModel, HogSvmDetector, band_counts, size_bands


def _boxes_set(heights_per_image: list[list[float]]) -> DetectionSet:
    """One class, square boxes of the given heights per image (no pixels: annotations only)."""
    samples = []
    for i, heights in enumerate(heights_per_image):
        boxes = np.array([[2 * j, 0, 2 * j + h, h] for j, h in enumerate(heights)], np.float32).reshape(-1, 4)
        n = len(heights)
        samples.append(DetectionSample(f"i{i}", Path(f"i{i}.png"), 800, 800, boxes, np.zeros(n, np.int64),
                                       np.zeros(n, bool), np.zeros(n, bool)))
    return DetectionSet(samples, ("face",), "boxes")


def test_size_bands_count_every_object_once():
    heights = np.array([3, 15.9, 16, 31, 64, 200, 256, 900])
    assert size_bands(heights).tolist() == [0, 0, 1, 1, 3, 4, 5, 5]
    counts = band_counts(heights)
    assert list(counts) == ["<16", "16-32", "32-64", "64-128", "128-256", ">=256"]
    assert sum(counts.values()) == len(heights) and counts["<16"] == 2 and counts["64-128"] == 1


def test_positive_budget_per_band_and_per_image():
    # 10 images: 30 tiny faces each (crowds), 2 large ones each
    data = _boxes_set([[10.0] * 30 + [150.0, 160.0] for _ in range(10)])
    det = HogSvmDetector(jitter=1, max_positives=4 * 40, positives_per_image=12)
    plan, facts = det._positive_plan(data, 0, np.random.default_rng(0))
    taken = {i: idx for i, idx in plan.items()}
    assert all(len(idx) <= 12 for idx in taken.values())  # the per-image cap
    assert all(len(np.unique(idx)) == len(idx) for idx in taken.values())
    heights = np.concatenate([data[i].boxes[idx, 3] - data[i].boxes[idx, 1] for i, idx in taken.items()])
    # 40 objects: the large band (20 available after the per-image cap kept them or not) is not crowded out
    assert len(heights) == 40
    per_band = facts["objects_per_band"]
    available_large = per_band["128-256"][0]
    assert per_band["128-256"][1] == min(available_large, 20)
    assert per_band["<16"][1] == 40 - per_band["128-256"][1]
    assert (heights >= 128).sum() == per_band["128-256"][1]
    assert facts["copies_per_object"] == 4


def test_shrunk_window_keeps_the_floor_in_cells():
    boxes = _boxes_set([[8.0, 9.0, 10.0, 12.0, 40.0]]).samples[0].boxes
    det = HogSvmDetector(base_size=80, max_upscale=2.0, min_template_cells=6)
    win, start = det._window_and_start(boxes)
    assert min(win) >= 6 * det.cell
    assert start > det.max_upscale  # the floor leaves the smallest objects out of reach: fit_info counts them
    loose = HogSvmDetector(base_size=80, max_upscale=2.0, min_template_cells=2)
    assert min(loose._window_and_start(boxes)[0]) < min(win)
    # large objects: the window is not shrunk, the floor never grows it
    big = _boxes_set([[60.0, 70.0, 80.0]]).samples[0].boxes
    assert HogSvmDetector(base_size=32, min_template_cells=6)._window_and_start(big)[0] == (32, 32)


def _two_models(start: float) -> HogSvmDetector:
    rng = np.random.default_rng(0)
    det = HogSvmDetector(pad_cells=2)
    det.models_ = [ClassModel(k, win, (rng.normal(size=(win[0] // 8 - 1, win[1] // 8 - 1, 36)) * 0.05)
                              .astype(np.float32), -0.2) for k, win in enumerate([(48, 48), (64, 32)])]
    det.start_scale_ = start
    return det


def test_one_hog_map_per_level_for_every_class_model(monkeypatch):
    image, _ = generate_image(1)
    det = _two_models(1.5)
    calls = []
    real = hsd.hog_map

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(hsd, "hog_map", counting)
    hits, _ = det._scan(image, det.models_, 1.2, 8, -np.inf)
    both = len(calls)
    # every level the smallest window fits (padded by 2 cells on each side) gets one HOG map, for both models
    assert both == len(hsd.image_pyramid(image, (48 - 32, 8), 1.2, 1.5))
    calls.clear()
    alone = [det._scan(image, [m], 1.2, 8, -np.inf)[0][0] for m in det.models_]
    assert both < len(calls)  # scanning the models one by one computes the shared levels twice
    for h, a in zip(hits, alone):  # and finds the same windows with the same scores
        order_h, order_a = np.lexsort(h.where.T), np.lexsort(a.where.T)
        assert np.array_equal(h.where[order_h], a.where[order_a])
        assert np.allclose(h.scores[order_h], a.scores[order_a])


def test_a_model_scans_only_up_to_its_largest_scale():
    image, _ = generate_image(2)
    det = _two_models(2.0)
    full, _ = det._scan(image, det.models_, 1.2, 8, -np.inf)
    det.models_[0].max_scale = 1.0
    capped, _ = det._scan(image, det.models_, 1.2, 8, -np.inf)
    assert full[0].scale.max() > 1.0 and capped[0].scale.max() <= 1.0
    expected = full[0].below(1.0)
    assert np.array_equal(np.sort(capped[0].scores), np.sort(expected.scores))
    assert np.array_equal(np.sort(capped[1].scores), np.sort(full[1].scores))  # the other model is unchanged


def test_objects_below_reach_are_counted_per_band():
    data = _boxes_set([[6.0, 12.0, 20.0, 30.0, 100.0]])
    det = HogSvmDetector(context=0.0)
    det.start_scale_ = 2.0
    model = ClassModel(0, (48, 48), np.zeros((5, 5, 36), np.float32), 0.0, max_scale=1.5)
    reach = det._reach(data, [model])["face"]
    # a 48-px window at scale 1.5 holds a 32-px object; IoU 0.5 reaches down to 32 / sqrt(2) = 22.6 px
    assert reach["min_height_px"] == pytest.approx(48 / 1.5 / np.sqrt(2), abs=0.1)
    assert reach["below_reach"] == {"<16": 2, "16-32": 1, "32-64": 0, "64-128": 0, "128-256": 0, ">=256": 0}
    assert sum(reach["objects"].values()) == 5


def test_progress_lines_at_least_every_interval(caplog):
    now = [0.0]
    logger = logging.getLogger("test.progress")
    progress = ProgressLog(logger, "windows", total=100, every_s=30, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.progress"):
        written = []
        for i in range(1, 101):
            now[0] += 1.0  # one second per item
            written.append(progress.update(i, windows=i * 10))
        progress.finish(100, windows=1000)
    assert sum(written) == 3  # at 30, 60 and 90 s
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("windows: 30/100, windows 300") and lines[-1].startswith("windows: 100/100")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        caplog.clear()
        assert list(logged(range(5), logger, "quick", every_s=30)) == list(range(5))
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["quick: 5/5"]  # the last line only


@pytest.mark.slow
def test_fit_records_budgets_reach_and_choices(tmp_path):
    # the planted set of test_hog_svm_det: training and the record
    from tests.unit.test_hog_svm_det import SMALL, _planted_set

    train = _planted_set(tmp_path / "train", 6, 0, "train")
    val = _planted_set(tmp_path / "val", 2, 1, "val")
    ctx = Context()
    det = HogSvmDetector(**{**SMALL, "max_upscale": 1.5, "upscale_caps": (1.0,), "hard_per_round": 7}).fit(
        train, val, ctx)
    info = ctx.info
    assert all(n <= 7 for n in info["hard_negatives_per_round"]["thing"])
    assert info["positive_budget"]["thing"]["copies_per_object"] == 4
    assert set(info["reach"]) == {"train", "val"} and "below_reach" in info["reach"]["val"]["thing"]
    assert det.models_[0].max_scale <= det.start_scale_ + 1e-9 or det.models_[0].max_scale == 1.0
