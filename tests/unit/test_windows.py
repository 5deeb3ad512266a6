"""Pyramids, sliding windows, window choice and training crops (benchsuite.ops.windows)."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.boxes import box_iou
from benchsuite.ops.windows import (
    choose_window,
    crop_windows,
    hard_negatives,
    image_pyramid,
    image_to_level_boxes,
    level_to_image_boxes,
    negative_crops,
    object_boxes,
    positions_to_boxes,
    positive_crops,
    pyramid_scales,
    random_negative_boxes,
    window_boxes,
    window_positions,
)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pyramid_scales_stop_before_window_does_not_fit():
    scales = pyramid_scales(240, 320, (128, 64), step=1.2)
    assert scales[0] == 1.0
    assert np.allclose(np.diff(np.log(scales)), -np.log(1.2))
    last = scales[-1]
    assert round(240 * last) >= 128 and round(240 * last / 1.2) < 128
    assert pyramid_scales(100, 300, (128, 64)) == []  # image smaller than the window
    assert pyramid_scales(100, 300, (128, 64), start=2.0)[0] == 2.0  # upsampled first level
    with pytest.raises(ValueError):
        pyramid_scales(100, 100, (8, 8), step=1.0)


def test_pyramid_levels_record_exact_factors():
    image = _image(101, 77)
    levels = image_pyramid(image, (32, 16), step=1.3)
    assert len(levels) == len(pyramid_scales(101, 77, (32, 16), 1.3))
    for lev in levels:
        h, w = lev.image.shape[:2]
        assert lev.image.dtype == np.uint8 and lev.image.shape[2] == 3
        assert h >= 32 and w >= 16
        assert lev.scale_y == h / 101 and lev.scale_x == w / 77
    grey = image_pyramid(image[:, :, 0], (32, 16), step=1.3)
    assert grey[1].image.ndim == 2


def test_window_positions_cover_level_at_stride():
    pos = window_positions(40, 30, (16, 8), stride=8)
    assert pos.dtype == np.int64
    assert set(map(tuple, pos)) == {(y, x) for y in (0, 8, 16, 24) for x in (0, 8, 16)}
    assert len(window_positions(10, 30, (16, 8), 8)) == 0
    assert len(window_positions(40, 30, (16, 8), (4, 11))) == 7 * 3


def test_window_mapped_to_image_and_back_round_trips():
    image = _image(203, 151)
    window = (48, 24)
    for lev in image_pyramid(image, window, step=1.17):
        pos = window_positions(*lev.image.shape[:2], window, stride=5)
        boxes = positions_to_boxes(pos, window, lev.scale_y, lev.scale_x)
        # back to the level: exactly the window at its position
        back = image_to_level_boxes(boxes, lev.scale_y, lev.scale_x)
        expected = np.stack([pos[:, 1], pos[:, 0], pos[:, 1] + 24, pos[:, 0] + 48], axis=1)
        np.testing.assert_allclose(back, expected, atol=1e-9)
        np.testing.assert_allclose(level_to_image_boxes(back, lev.scale_y, lev.scale_x), boxes, atol=1e-9)
        # every mapped box lies inside the image
        assert boxes[:, 2].max() <= 151 + 1e-9 and boxes[:, 3].max() <= 203 + 1e-9


def test_crop_of_mapped_window_equals_level_pixels():
    """A window at a level, mapped to the image and cropped from the image, shows the level's pixels."""
    image = _image(120, 96).astype(np.float32)
    lev = image_pyramid(image, (32, 32), step=2.0)[1]  # exact factor 0.5
    assert lev.scale_x == lev.scale_y == 0.5
    box = positions_to_boxes([[8, 12]], (32, 32), lev.scale_y, lev.scale_x)
    crop = crop_windows(image, box, (32, 32))[0]
    np.testing.assert_allclose(crop, lev.image[8:40, 12:44], atol=1e-3)


def test_choose_window_follows_aspect_of_boxes():
    tall = np.array([[0, 0, 40, 100], [10, 10, 50, 130], [0, 0, 30, 90]], float)
    wide = tall[:, [1, 0, 3, 2]]
    square = np.array([[0, 0, 50, 50], [5, 5, 45, 47]], float)
    th, tw = choose_window(tall, base_size=64)
    wh, ww = choose_window(wide, base_size=64)
    sh, sw = choose_window(square, base_size=64)
    assert th > tw and ww > wh and sh == sw == 64
    assert (th, tw) == (ww, wh)
    for h, w in ((th, tw), (wh, ww)):
        assert h % 8 == 0 and w % 8 == 0
        assert 0.8 < h * w / 64**2 < 1.25
    assert choose_window(np.zeros((0, 4))) == (64, 64)
    h, w = choose_window(np.array([[0, 0, 1000, 10]]), max_aspect=4)  # extreme aspect clipped
    assert w / h <= 4.0 + 1e-9 and h >= 16


def test_window_boxes_contain_object_and_invert():
    boxes = np.array([[10, 20, 40, 120], [0, 0, 100, 20]], float)
    wins = window_boxes(boxes, (128, 64), context=0.1)
    np.testing.assert_allclose((wins[:, 2] - wins[:, 0]) / (wins[:, 3] - wins[:, 1]), 0.5)
    assert (wins[:, :2] <= boxes[:, :2]).all() and (wins[:, 2:] >= boxes[:, 2:]).all()
    inner = object_boxes(wins, context=0.1)
    # the object's box widened (or heightened) to the window's aspect ratio
    np.testing.assert_allclose(inner[0], [0, 20, 50, 120], atol=1e-9)
    np.testing.assert_allclose(inner[1], [0, -90, 100, 110], atol=1e-9)
    np.testing.assert_allclose(window_boxes(inner, (128, 64), 0.1), wins, atol=1e-9)


def test_positive_crops_shapes_flips_and_jitter():
    image = _image(150, 120)
    boxes = np.array([[10, 10, 50, 90], [60, 30, 110, 140]], float)
    rng = np.random.default_rng(0)
    crops = positive_crops(image, boxes, (64, 32), margin=8, flip=True, jitter=2, rng=rng)
    assert crops.shape == (2 * 3 * 2, 80, 48, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[6:], crops[:6, :, ::-1])  # second half: mirrored
    plain = positive_crops(image, boxes, (64, 32), flip=False)
    assert plain.shape == (2, 64, 32, 3)
    grey = positive_crops(image[:, :, 0], boxes, (64, 32), flip=False)
    assert grey.shape == (2, 64, 32)
    with pytest.raises(ValueError):
        positive_crops(image, boxes, (64, 32), jitter=1)


def test_random_negatives_never_overlap_objects():
    rng = np.random.default_rng(1)
    avoid = np.array([[20, 20, 120, 200], [150, 50, 250, 150]], float)
    boxes = random_negative_boxes(rng, 240, 320, (64, 32), 200, avoid, max_overlap=0.2)
    assert 0 < len(boxes) <= 200
    assert box_iou(boxes, avoid).max() < 0.2
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 320 + 1e-9).all() and (boxes[:, 3] <= 240 + 1e-9).all()
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1]), 0.5)
    assert (boxes[:, 3] - boxes[:, 1]).min() >= 64 - 1e-9
    # an image smaller than the window: none
    assert len(random_negative_boxes(rng, 50, 50, (64, 32), 10)) == 0
    crops, nb = negative_crops(_image(240, 320), rng, (64, 32), 5, avoid, margin=4)
    assert crops.shape == (len(nb), 72, 40, 3) and len(nb) == 5


def test_hard_negatives_ranks_false_positives():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [1, 1, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([5.0, 1.0, 9.0, 3.0])
    idx = hard_negatives(boxes, scores, avoid=np.array([[0, 0, 10, 10]]), max_overlap=0.3)
    assert idx.tolist() == [3, 1]
    assert hard_negatives(boxes, scores, np.zeros((0, 4)), limit=2).tolist() == [2, 0]


def test_local_maxima_against_brute_force():
    from benchsuite.ops.windows import local_maxima

    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, (9, 11)).astype(np.float32)  # ties included
    padded = np.pad(s, 1, constant_values=-np.inf)
    brute = np.array([[s[i, j] >= padded[i:i + 3, j:j + 3].max() for j in range(11)] for i in range(9)])
    np.testing.assert_array_equal(local_maxima(s), brute)
    assert local_maxima(np.ones((1, 1), np.float32)).all()


def test_class_detections_threshold_clip_nms_per_class_and_cap():
    from benchsuite.ops.windows import class_detections

    a = (np.array([[0, 0, 10, 10], [1, 1, 11, 11], [-5, -5, 4, 4], [50, 50, 60, 60]], np.float64),
         np.array([0.9, 0.8, 0.7, -1.0]))
    b = (np.array([[0, 0, 10, 10]], np.float64), np.array([0.85]))
    boxes, scores, labels = class_detections([a, b], [0, 3], 20, 20, 0.5, 0.0, 10)
    # class 0: the overlapping second box is suppressed, the third clipped to the image, the fourth below threshold
    assert labels.tolist() == [0, 3, 0] and scores.tolist() == pytest.approx([0.9, 0.85, 0.7])
    np.testing.assert_allclose(boxes[2], [0, 0, 4, 4])
    assert boxes.dtype == np.float32 and labels.dtype == np.int64
    assert len(class_detections([a, b], [0, 3], 20, 20, 0.5, 0.0, 2)[0]) == 2
    empty = class_detections([a], [0], 20, 20, 0.5, 5.0, 10)
    assert empty[0].shape == (0, 4) and empty[2].dtype == np.int64
