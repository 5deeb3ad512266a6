"""The detection task's non-result flag: a detector against the ``mean-box`` floor on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchsuite.api import Budget, Detections
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.metrics.detection import match, summarize
from benchsuite.tasks.detection import (
    MIN_VAL_IMAGES_TO_JUDGE,
    SELECTION_VAL_FILE,
    DetectionTask,
    floor_comparison,
    floor_detections,
    floor_detections_on,
    floor_verdict,
)


def _scenes(n: int, seed: int, folder: Path | None = None) -> DetectionSet:
    """``n`` 200 x 200 images (grey pixels written to ``folder`` when given, else none) with one to three boxes
    of one class at random places."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        if folder is not None:
            Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / f"s{seed}-{i}.png")
        k = int(rng.integers(1, 4))
        xy = rng.uniform(0, 150, size=(k, 2))
        wh = rng.uniform(20, 50, size=(k, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, 200)], axis=1).astype(np.float32)
        path = folder / f"s{seed}-{i}.png" if folder is not None else Path(f"i{i}.png")
        samples.append(DetectionSample(f"i{i}", path, 200, 200, boxes, np.zeros(k, np.int64),
                                       np.zeros(k, bool), np.zeros(k, bool)))
    return DetectionSet(samples, ("thing",), "scenes")


def _perfect(data: DetectionSet) -> list[Detections]:
    return [Detections(s.boxes.copy(), np.linspace(1, 0.5, len(s.boxes)).astype(np.float32), s.labels.copy())
            for s in data]


def _blind(data: DetectionSet, seed: int) -> list[Detections]:
    """Five random boxes per image, random scores: a detector that has not learned."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in data:
        xy = rng.uniform(0, 150, size=(5, 2))
        out.append(Detections(np.concatenate([xy, xy + 40], axis=1).astype(np.float32),
                              rng.uniform(size=5).astype(np.float32), np.zeros(5, np.int64)))
    return out


def test_floor_is_mean_box_fitted_on_train():
    train, test = _scenes(40, 0), _scenes(30, 1)
    floor = floor_detections(train, test)
    assert floor is not None and len(floor) == len(test)
    assert all(len(d) and (d.labels == 0).all() for d in floor)
    # the floor ignores the pixels: every image of the same size gets the same boxes
    assert all(np.array_equal(d.boxes, floor[0].boxes) for d in floor)


def test_a_detector_that_finds_the_objects_is_a_result():
    train, test = _scenes(40, 0), _scenes(30, 1)
    out = floor_comparison(test, _perfect(test), floor_detections(train, test), resamples=100)
    assert not out["non_result"] and out["reason"] is None and not out["is_floor"]
    assert out["gain_ci95"][0] > 0
    # the gain is the difference of the two mAP50s, each as the matching core scores it
    floor = floor_detections(train, test)
    gt = ([s.boxes for s in test], [s.labels for s in test], [s.difficult for s in test])
    floor_map = summarize(match(*gt, [d.boxes for d in floor], [d.scores for d in floor], [d.labels for d in floor],
                                1), ["thing"], ("voc",))["map50"]
    assert np.isclose(out["map50"], floor_map, atol=1e-4)
    assert np.isclose(out["gain"], 1.0 - floor_map, atol=1e-4)


def test_a_blind_detector_is_a_non_result_with_its_reason():
    train, test = _scenes(40, 0), _scenes(30, 1)
    out = floor_comparison(test, _blind(test, 5), floor_detections(train, test), resamples=100)
    assert out["non_result"]
    assert out["gain_ci95"][0] <= 0
    assert "mean-box" in out["reason"] and "interval" in out["reason"]


def test_one_fit_of_the_floor_serves_every_split(monkeypatch):
    """The task judges a detector on the scored split and on val: the floor is fitted once for both, and each
    split's detections are those a fit of their own gives."""
    import benchsuite.tasks.detection as task

    train, val, test = _scenes(40, 0), _scenes(12, 2), _scenes(30, 1)
    fits = []
    real = task.fitted_floor
    monkeypatch.setattr(task, "fitted_floor", lambda *a, **k: fits.append(1) or real(*a, **k))
    both = floor_detections_on(train, [test, val])
    assert len(fits) == 1 and [len(d) for d in both] == [len(test), len(val)]
    for data, dets in zip((test, val), both):
        for a, b in zip(dets, floor_detections(train, data)):
            assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
    assert len(fits) == 3


def test_the_floor_itself_is_not_flagged():
    train, test = _scenes(40, 0), _scenes(30, 1)
    floor = floor_detections(train, test)
    out = floor_comparison(test, floor, floor, resamples=50)
    assert out["is_floor"] and not out["non_result"] and out["gain"] == 0


def test_the_verdict_is_on_val_when_there_are_val_detections():
    """A detector that is blind on val but perfect on the scored split is a non-result (val decides), with the
    scored split's comparison beside it; without val detections the scored split decides."""
    train, val, test = _scenes(40, 0), _scenes(MIN_VAL_IMAGES_TO_JUDGE, 2), _scenes(30, 1)
    on_test = floor_comparison(test, _perfect(test), floor_detections(train, test), resamples=100, split="test")
    on_val = floor_comparison(val, _blind(val, 3), floor_detections(train, val), resamples=100, split="val")
    verdict = floor_verdict(on_test, "test", on_val, len(val))
    assert verdict["judged_on"] == "val" and verdict["non_result"] and verdict["reason"].startswith("val mAP50")
    assert verdict["on_scored_split"]["split"] == "test" and not verdict["on_scored_split"]["non_result"]
    alone = floor_verdict(on_test, "test", None)
    assert alone["judged_on"] == "test" and not alone["non_result"] and "on_scored_split" not in alone
    # a val split too small to separate a detector from the floor does not decide; its comparison stays beside
    small = floor_verdict(on_test, "test", on_val, MIN_VAL_IMAGES_TO_JUDGE - 1)
    assert small["judged_on"] == "test" and not small["non_result"] and small["on_val"]["non_result"]
    assert f"under the {MIN_VAL_IMAGES_TO_JUDGE}" in small["on_val"]["not_deciding"]


class _Splits:
    """A data set of fixed splits (the task's ``dataset.load(split, cap)``)."""

    def __init__(self, **splits: DetectionSet):
        self.splits = splits

    def load(self, split: str, cap: int | None = None) -> DetectionSet:
        return self.splits[split]


def test_evaluate_judges_the_floor_on_the_val_detections_the_job_left(tmp_path):
    train, val, test = (_scenes(n, seed, tmp_path) for n, seed in ((20, 0), (MIN_VAL_IMAGES_TO_JUDGE, 2), (12, 1)))
    task, data, budget = DetectionTask(), _Splits(train=train, val=val, test=test), Budget("smoke")
    predictions = tmp_path / "predictions-test.npz"
    task.save_split(predictions, test, _perfect(test))
    metrics, _ = task.evaluate(data, "test", budget, predictions, tmp_path)
    assert metrics["floor"]["judged_on"] == "test" and not metrics["floor"]["non_result"]
    task.save_split(tmp_path / SELECTION_VAL_FILE, val, _blind(val, 4))
    metrics, _ = task.evaluate(data, "test", budget, predictions, tmp_path)
    floor = metrics["floor"]
    assert floor["judged_on"] == "val" and floor["non_result"] and "val mAP50" in floor["reason"]
    assert floor["on_scored_split"]["gain"] > 0 and metrics["map50"] > 0.99
