"""benchsuite.ops.negatives: background windows checked against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.boxes import box_iou
from benchsuite.ops.negatives import (
    NegativeSource,
    background_windows,
    small_image_window,
    water_fill,
)
from benchsuite.ops.windows import pyramid_scales

WINDOW = (32, 16)


def _image(h: int, w: int, seed: int = 0, grey: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)


def _oracle(height: int, width: int, window, avoid, start, step, stride, max_overlap) -> set[tuple]:
    """Every window of the pyramid, checked one by one against every avoided box."""
    out = set()
    for s in pyramid_scales(height, width, window, step, start):
        lh, lw = max(1, round(height * s)), max(1, round(width * s))
        sy, sx = lh / height, lw / width
        for r in range(0, lh - window[0] + 1, stride):
            for c in range(0, lw - window[1] + 1, stride):
                box = np.array([c / sx, r / sy, (c + window[1]) / sx, (r + window[0]) / sy])
                if all(box_iou(box[None], a[None])[0, 0] < max_overlap for a in avoid):
                    out.add(tuple(np.round(box, 6)))
    return out


def test_background_windows_equal_brute_force_and_never_overlap_the_class():
    avoid = np.array([[10, 10, 40, 70], [60, 5, 90, 50]], float)
    got, levels = background_windows(80, 100, WINDOW, avoid, start_scale=1.5, step=1.3, stride=4, max_overlap=0.3)
    want = _oracle(80, 100, WINDOW, avoid, 1.5, 1.3, 4, 0.3)
    assert {tuple(np.round(b, 6)) for b in got} == want
    assert len(got) > 0 and box_iou(got, avoid).max() < 0.3
    assert levels.min() == 0 and levels.max() == len(pyramid_scales(80, 100, WINDOW, 1.3, 1.5)) - 1
    # upsampled levels: windows smaller than the window in image pixels exist
    assert (got[:, 3] - got[:, 1]).min() < WINDOW[0]


def test_window_sized_background_image_is_exactly_one_window():
    source = NegativeSource.from_images([_image(32, 16)], [np.zeros((0, 4))], WINDOW)
    neg = source.sample(10, np.random.default_rng(0), margin=4)
    assert len(neg) == 1 and neg.stats.found == 1 and neg.stats.requested == 10
    np.testing.assert_allclose(neg.boxes[0], [0, 0, 16, 32])
    assert neg.crops.shape == (1, 40, 24, 3)
    np.testing.assert_array_equal(neg.crops[0, 4:-4, 4:-4], _image(32, 16))  # the image itself, not resampled


def test_other_class_objects_are_background_and_difficult_ones_are_avoided(tmp_path):
    from benchsuite.data.detection import DetectionSample, DetectionSet

    boxes = np.array([[0, 0, 16, 32], [16, 0, 32, 32]], np.float32)
    sample = DetectionSample("a", tmp_path / "a.png", 32, 32, boxes, np.array([0, 1]), np.array([False, False]),
                             np.array([False, False]))
    data = DetectionSet([sample], ["p", "q"])
    img = _image(32, 32)
    src0 = NegativeSource.from_dataset(data, 0, WINDOW, load=lambda i: img, stride=16)
    b0 = src0.sample_boxes(10, np.random.default_rng(0)).boxes
    np.testing.assert_allclose(b0, [[16, 0, 32, 32]])  # the class-1 object is a negative of class 0
    sample.difficult[:] = True  # difficult objects are still objects to avoid
    src1 = NegativeSource.from_dataset(data, 1, WINDOW, load=lambda i: img, stride=16)
    np.testing.assert_allclose(src1.sample_boxes(10, np.random.default_rng(0)).boxes, [[0, 0, 16, 32]])


def test_tight_crop_gives_no_negatives_and_counts_are_reported_when_short():
    crop = _image(32, 16)
    images = [crop, crop, _image(32, 16, 1), _image(64, 32, 2)]
    avoid = [np.array([[0, 0, 16, 32]], float)] * 2 + [np.zeros((0, 4))] * 2
    source = NegativeSource.from_images(images, avoid, WINDOW, stride=8, step=2.0)
    cap = source.capacity()
    assert cap[0] == cap[1] == 0 and cap[2] == 1 and cap[3] == (64 - 32) // 8 * 3 + 3 + 1  # 15 at 1, 1 at 1/2
    neg = source.sample(1000, np.random.default_rng(0))
    assert len(neg) == cap.sum() == neg.stats.found == neg.stats.available and neg.stats.requested == 1000
    assert neg.stats.images_with_background == 2 and neg.stats.images_used == 2
    # fewer asked than available: the window-sized background image still gives its window
    few = source.sample_boxes(4, np.random.default_rng(0))
    assert len(few) == 4 and (few.image_index == 2).sum() == 1
    # no usable negatives at all: an empty sample, with the counts, not an error
    none = NegativeSource.from_images(images[:2], avoid[:2], WINDOW).sample(50, np.random.default_rng(0))
    assert len(none) == 0 and none.crops.shape == (0, 32, 16, 3) and none.stats.found == 0


def test_images_smaller_than_the_window_are_upscaled_or_skipped():
    # 24 x 12 needs 32 / 24 = 1.33x: upscaled as one window; 12 x 6 needs 2.67x: skipped
    assert len(small_image_window(24, 12, WINDOW, max_small_upscale=2.0)) == 1
    assert len(small_image_window(12, 6, WINDOW, max_small_upscale=2.0)) == 0
    assert len(small_image_window(12, 6, WINDOW, start_scale=2.0, max_small_upscale=2.0)) == 1
    images = [_image(24, 12, grey=True), _image(12, 6, grey=True), _image(40, 40, grey=True)]
    source = NegativeSource.from_images(images, [np.zeros((0, 4))] * 3, WINDOW)
    neg = source.sample(100, np.random.default_rng(0))
    assert neg.crops.shape[1:] == WINDOW  # grey images give grey crops
    assert neg.stats.small_images_upscaled == 1 and neg.stats.small_images_skipped == 1
    box = neg.of_image(0)
    np.testing.assert_allclose(box, [[0, 0, 12, 24]])
    assert len(neg.of_image(1)) == 0


def test_sampling_spreads_over_images_and_levels():
    images = [_image(200, 200, k) for k in range(4)]
    source = NegativeSource.from_images(images, [np.zeros((0, 4))] * 4, WINDOW, stride=4, step=1.5)
    neg = source.sample_boxes(400, np.random.default_rng(3))
    assert np.bincount(neg.image_index).tolist() == [100] * 4
    heights = np.round(neg.boxes[:, 3] - neg.boxes[:, 1], 3)
    levels, counts = np.unique(heights, return_counts=True)
    assert len(levels) == len(pyramid_scales(200, 200, WINDOW, 1.5))
    assert counts.min() > 0.4 * counts.max()  # even across levels despite many more small-scale positions


def test_water_fill():
    assert water_fill(np.array([1, 100, 100, 0]), 51).tolist() == [1, 25, 25, 0]
    assert water_fill(np.array([1, 100, 100]), 52).tolist() == [1, 26, 25]
    assert water_fill(np.array([3, 4]), 100).tolist() == [3, 4]
    assert water_fill(np.array([3, 4]), 0).tolist() == [0, 0]


def test_mine_keeps_best_false_positives_over_all_images():
    images = [_image(64, 64, k) for k in range(3)]
    avoid = [np.array([[0, 0, 16, 32]], float), np.zeros((0, 4)), np.zeros((0, 4))]
    source = NegativeSource.from_images(images, avoid, WINDOW)

    def scan(i: int, image: np.ndarray):
        boxes = np.array([[0, 0, 16, 32], [30, 30, 46, 62], [40, 0, 56, 32]], float)
        scores = np.array([5.0, 1.0 + i, -3.0])
        return boxes, scores, lambda idx: np.stack([np.full(len(idx), i), idx], axis=1)

    hard = source.mine(scan, count=4, per_image=2, threshold=-1.0)
    assert hard.scanned_images == 3
    # image 0's top window overlaps its object: never a negative; -3 is below the threshold
    assert hard.candidates == 1 + 2 + 2
    # the best 4 of the 5 candidates; image 0's only candidate (score 1) is the weakest
    assert sorted(hard.scores.tolist()) == [2.0, 3.0, 5.0, 5.0] and 0 not in hard.image_index
    assert box_iou(hard.boxes[hard.image_index == 0], avoid[0]).size == 0
    np.testing.assert_array_equal(hard.features[:, 0], hard.image_index)
    rand = source.mine(scan, count=2, order="random", rng=np.random.default_rng(0))
    assert len(rand) == 2 and rand.features.shape == (2, 2)
    with pytest.raises(ValueError):
        source.mine(scan, count=2, order="random")
