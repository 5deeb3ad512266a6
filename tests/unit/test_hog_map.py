"""The fast HOG map paths agree with the direct formulas (benchsuite.ops.hog)."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.hog import (
    cell_histograms,
    fused_cell_histograms,
    gradients,
    hog_map,
    orientation_planes,
    oriented_cell_histograms,
)


def _direct_gradients(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[-1, 0, 1] differences (one-sided at borders), strongest channel, arctan2 folded into [0, pi)."""
    x = images.astype(np.float64)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gx[:, :, 0], gx[:, :, -1] = x[:, :, 1] - x[:, :, 0], x[:, :, -1] - x[:, :, -2]
    gy[:, 1:-1] = x[:, 2:] - x[:, :-2]
    gy[:, 0], gy[:, -1] = x[:, 1] - x[:, 0], x[:, -1] - x[:, -2]
    mag2 = gx**2 + gy**2
    best = np.argmax(mag2, axis=-1)[..., None]
    gx, gy = np.take_along_axis(gx, best, -1)[..., 0], np.take_along_axis(gy, best, -1)[..., 0]
    return np.sqrt(gx**2 + gy**2), np.arctan2(gy, gx) % np.pi


@pytest.mark.parametrize("n", [1, 3])
def test_gradients_match_the_direct_formula(n):
    images = np.random.default_rng(n).integers(0, 256, (n, 23, 31, 3), dtype=np.uint8)
    mag, ori = gradients(images)
    ref_mag, ref_ori = _direct_gradients(images)
    np.testing.assert_allclose(mag, ref_mag, rtol=1e-5, atol=1e-4)
    diff = np.abs(ori - ref_ori)
    diff = np.minimum(diff, np.pi - diff)[ref_mag > 0]  # orientation is circular; undefined at zero gradient
    assert diff.max() < np.radians(0.05)
    assert ori.min() >= 0 and ori.max() < np.pi


@pytest.mark.parametrize("cell", [4, 5, 8])
def test_scattered_cell_histograms_equal_the_plane_version(cell):
    images = np.random.default_rng(cell).integers(0, 256, (2, 37, 45, 3), dtype=np.uint8)
    mag, ori = gradients(images)
    planes = cell_histograms(orientation_planes(mag, ori, 9), cell)
    scattered = oriented_cell_histograms(mag, ori, 9, cell)
    fused = fused_cell_histograms(images, cell, 9)  # the compiled one-pass kernel hog_map uses
    assert scattered.shape == fused.shape == planes.shape == (2, 37 // cell, 45 // cell, 9)
    np.testing.assert_allclose(scattered, planes, rtol=1e-4, atol=1e-2)
    # its arctangent differs from cv2.phase by < 0.01 degree: a vote may move by ~1e-3 of a magnitude
    np.testing.assert_allclose(fused, planes, rtol=1e-3, atol=0.5)
    np.testing.assert_allclose(fused_cell_histograms(images[..., :1], cell, 9, sqrt_gamma=True),
                               cell_histograms(orientation_planes(*gradients(images[..., :1], True), 9), cell),
                               rtol=1e-3, atol=1e-2)


def test_single_image_and_batch_paths_agree():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    np.testing.assert_array_equal(hog_map(image[None]), hog_map(np.stack([image, other]))[:1])
    grey = image[:, :, 0]
    np.testing.assert_array_equal(hog_map(grey[None]), hog_map(np.stack([grey, grey]))[:1])
    assert hog_map(np.zeros((1, 1, 1, 3), np.uint8)).shape == (1, 0, 0, 36)
