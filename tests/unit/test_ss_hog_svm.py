"""ss-hog-svm's budgets, progress lines and scale reach (issue 29.5), on a few small scenes."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.ops.boxes import box_iou
from pipelines.classical.ss_hog_svm import SelectiveSearchHogSVM, best_possible_iou

BIG, TINY = (48, 24), (8, 4)  # object heights and widths, pixels


def test_best_possible_iou_is_the_best_of_every_allowed_box():
    """Against a brute-force search over boxes with both sides at least the minimum (1-pixel grid)."""
    objects = np.array([[20, 20, 24, 28], [10, 10, 40, 15], [5, 5, 35, 45], [30, 30, 38, 33]], float)
    side = 10
    for obj in objects:
        best = 0.0
        for w in range(side, 50):
            for h in range(side, 56):
                xs, ys = np.arange(0, 60 - w + 1), np.arange(0, 60 - h + 1)
                x, y = (a.ravel() for a in np.meshgrid(xs, ys))
                cand = np.stack([x, y, x + w, y + h], 1).astype(float)
                best = max(best, float(box_iou(obj[None], cand).max()))
        assert best_possible_iou(obj[None], side)[0] == pytest.approx(best, abs=1e-9)


def _scenes(folder: Path, n: int, seed: int) -> DetectionSet:
    """``n`` 120 x 160 cluttered images, each with one big and one tiny bright figure."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(90, 170, (120, 160, 3)).astype(np.uint8), (5, 5), 2)
        boxes = []
        for (h, w), x in ((BIG, int(rng.integers(0, 60))), (TINY, int(rng.integers(100, 150)))):
            y = int(rng.integers(0, 120 - h))
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (250, 250, 250), -1)
            cv2.rectangle(img, (x + w // 4, y + h // 4), (x + w - 1 - w // 4, y + h - 1 - h // 4), (20, 20, 20), -1)
            boxes.append([x, y, x + w, y + h])
        path = folder / f"s{seed}-{i}.png"
        cv2.imwrite(str(path), img)
        samples.append(DetectionSample(path.stem, path, 160, 120, np.array(boxes, np.float32), [0, 0], [False] * 2,
                                       [False] * 2))
    return DetectionSet(samples, ("figure",), "scenes")


def test_budgets_progress_and_objects_below_reach(tmp_path, caplog):
    train, val = _scenes(tmp_path / "train", 4, 0), _scenes(tmp_path / "val", 2, 1)
    ctx = Context(cache_dir=tmp_path)
    det = SelectiveSearchHogSVM(proposer_params={"preset": "fast", "ks": (100,), "max_side": 200},
                                train_proposals=150, test_proposals=150, c_values=(0.03,), nms_values=(0.3,),
                                negatives_per_image=10, hard_per_image=5, mining_rounds=2, refit_on_trainval=False,
                                n_jobs=1)
    with caplog.at_level(logging.INFO, logger="pipelines.classical.ss_hog_svm"):
        det.fit(train, val, ctx)
    budgets = ctx.info["budgets"]
    assert budgets["hard_negatives_per_image_and_round"] == 5 and budgets["mining_rounds"] == 2
    assert budgets["train_proposals_per_image"] == 150 and budgets["random_negatives_per_image"] == 10
    for split, n in (("train", 4), ("val", 2)):
        reach = ctx.info["reach"][split]["figure"]
        assert reach["objects"]["32-64"] == n and reach["objects"]["<16"] == n  # one big and one tiny each
        assert reach["below_reach"]["<16"] == n and sum(reach["below_reach"].values()) == n
        # no proposal the detector uses can find an object below reach
        assert all(reach["no_proposal"][b] >= reach["below_reach"][b] for b in reach["objects"])
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("ss-hog-svm features train: 4/4") for m in lines)
    assert any("hard-negative mining rounds: 2/2" in m for m in lines)
