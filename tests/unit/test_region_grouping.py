"""Hierarchical grouping (selective search): a hand-worked example, a brute-force oracle, the features."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import felzenszwalb

from benchsuite.ops.boxes import box_iou
from benchsuite.ops.region_grouping import (
    brute_force_grouping,
    colour_bin_image,
    describe_regions,
    hierarchical_grouping,
    region_adjacency,
    region_boxes,
    region_histograms,
    relabel,
    similarity_weights,
    texture_bin_image,
)
from pipelines.classical.selective_search import SelectiveSearch, convert_colour, selective_search

# 4 x 4 label image of four 2 x 2 quadrants
QUADRANTS = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1],
                      [2, 2, 3, 3],
                      [2, 2, 3, 3]])


def _regions(labels: np.ndarray, grey: np.ndarray):
    return describe_regions(labels, colour_bin_image(grey), texture_bin_image(grey))


def test_size_similarity_merges_small_regions_first_by_hand():
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    regions = _regions(labels, np.zeros((4, 4), np.uint8))
    # sizes 4, 4, 8 of 16 pixels: s(0,1) = 1 - 8/16 = 0.5, s(0,2) = s(1,2) = 1 - 12/16 = 0.25
    h = hierarchical_grouping(regions, "S")
    assert h.merges.tolist() == [[0, 1], [2, 3]]
    np.testing.assert_allclose(h.similarities, [0.5, 0.0])
    np.testing.assert_array_equal(h.boxes[3:], [[0, 0, 4, 2], [0, 0, 4, 4]])
    # fill: s(0,1) = 1 - (8 - 8)/16 = 1, s(0,2) = 1 - (16 - 12)/16 = 0.75
    hf = hierarchical_grouping(regions, "F")
    assert hf.merges.tolist() == [[0, 1], [2, 3]]
    np.testing.assert_allclose(hf.similarities, [1.0, 1.0])


def test_colour_similarity_merge_order_and_histogram_averaging_by_hand():
    # regions 0 and 2 all grey 10 (colour bin 0), region 1 all 200 (bin 19), region 3 half and half
    grey = np.array([[10, 10, 200, 200],
                     [10, 10, 10, 200],
                     [10, 10, 200, 200],
                     [10, 10, 10, 200]], np.uint8)
    grey[2:, 2:] = [[10, 200], [10, 200]]
    grey[:2, 2:] = 200
    regions = _regions(QUADRANTS, grey)
    np.testing.assert_allclose(regions.colour[3, [0, 19]], [0.5, 0.5])
    h = hierarchical_grouping(regions, "C")
    # s(0,2) = 1 first -> region 4 (all bin 0); then s(1,3) = s(3,4) = 0.5 tie, (1,3) is the smaller pair ->
    # region 5 = (4 * [bin 19] + 4 * [0.5, 0.5]) / 8 = 0.25 bin 0, 0.75 bin 19; last s(4,5) = 0.25
    assert h.merges.tolist() == [[0, 2], [1, 3], [4, 5]]
    np.testing.assert_allclose(h.similarities, [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(h.boxes[4:], [[0, 0, 2, 4], [2, 0, 4, 4], [0, 0, 4, 4]])
    assert h.num_initial == 4 and len(h.boxes) == 7


@pytest.mark.parametrize("combo", ["CTSF", "TSF", "F", "S", "CT"])
def test_heap_grouping_equals_brute_force_on_a_random_segmentation(combo):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8).repeat(6, axis=0).repeat(6, axis=1)
    image = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    labels, r = relabel(felzenszwalb(image, scale=30, sigma=0.5, min_size=10))
    assert 15 <= r <= 200
    regions = describe_regions(labels, colour_bin_image(image), texture_bin_image(image))
    fast = hierarchical_grouping(regions, combo)
    slow = brute_force_grouping(regions, combo)
    np.testing.assert_array_equal(fast.merges, slow.merges)
    np.testing.assert_array_equal(fast.similarities, slow.similarities)
    np.testing.assert_array_equal(fast.boxes, slow.boxes)
    assert len(fast.merges) == r - 1  # one connected image: everything ends in one region
    np.testing.assert_array_equal(fast.boxes[-1], [0, 0, image.shape[1], image.shape[0]])


def test_pixel_features_against_direct_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, (9, 7))
    image = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    bins = colour_bin_image(image)
    assert bins.max() <= 24 and bins.min() >= 0
    np.testing.assert_array_equal(bins, np.floor(image / 256 * 25))
    hist = region_histograms(labels, bins, 25, 5)
    for k in range(5):
        expect = np.concatenate([np.histogram(image[labels == k][:, c], bins=25, range=(0, 256))[0]
                                 for c in range(3)]).astype(float)
        np.testing.assert_allclose(hist[k], expect / expect.sum())
    adjacency = {tuple(p) for p in region_adjacency(labels).tolist()}
    brute = set()
    for y in range(9):
        for x in range(7):
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < 9 and 0 <= xx < 7 and labels[y, x] != labels[yy, xx]:
                    a, b = sorted((int(labels[y, x]), int(labels[yy, xx])))
                    brute.add((a, b))
    assert adjacency == brute
    for k, box in enumerate(region_boxes(labels, 5)):
        ys, xs = np.nonzero(labels == k)
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_texture_bins_follow_the_edge_orientation():
    step = np.zeros((20, 20), np.uint8)
    step[:, 10:] = 200  # intensity grows to the right: the response is at orientation 0, not 4 (pi)
    t = texture_bin_image(step)
    assert t.shape == (20, 20, 8)
    assert t[:, :, 0].max() == 9 and t[:, :, 4].max() == 0
    assert t[:, :, 2].max() == 0 and t[:, :, 6].max() == 0  # vertical orientations see nothing
    assert (texture_bin_image(np.full((8, 8, 3), 7, np.uint8)) == 0).all()


def test_relabel_and_weights():
    lab, r = relabel(np.array([[5, 5], [9, 2]]))
    assert r == 3 and lab.tolist() == [[1, 1], [2, 0]]
    np.testing.assert_array_equal(similarity_weights("TSF"), [0, 1, 1, 1])
    np.testing.assert_array_equal(similarity_weights(("colour", "fill")), [1, 0, 0, 1])
    with pytest.raises(ValueError, match="letters"):
        similarity_weights("CX")


def test_selective_search_finds_a_rectangle_and_ranks_unique_boxes():
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal(90, 6, (60, 80, 3)), 0, 255).astype(np.uint8)
    image[15:45, 20:50] = (220, 40, 40)
    boxes = selective_search(image, ("hsv", "lab"), (50,), ("CTSF", "TSF"), seed=0)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert box_iou(boxes, [[20, 15, 50, 45]]).max() > 0.9
    assert [0, 0, 80, 60] in boxes.tolist()
    again = SelectiveSearch(preset="fast", ks=(50,)).propose(image)
    np.testing.assert_array_equal(SelectiveSearch(preset="fast", ks=(50,)).propose(image), again)
    assert convert_colour(image, "h").shape == (60, 80) and convert_colour(image, "rgi").shape == (60, 80, 3)
