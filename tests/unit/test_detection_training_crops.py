"""Crop-style training sets in the torchvision wrapper: tight crops are pasted onto canvases at sampled scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchsuite.data.detection import DetectionSample, DetectionSet
from pipelines.deep.detection_training import CROP_SCALE, FILL, TrainingImages, is_tight_crop

CROP_COLOURS = [(250, 20, 20), (20, 250, 20), (20, 20, 250), (250, 250, 20)]


def _sample(folder: Path, name: str, image: np.ndarray, boxes: list[list[float]]) -> DetectionSample:
    path = folder / f"{name}.png"
    Image.fromarray(image).save(path)
    n = len(boxes)
    return DetectionSample(name, path, image.shape[1], image.shape[0], np.array(boxes, np.float32).reshape(-1, 4),
                           np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool))


def _crop_set(folder: Path, backgrounds: bool = True) -> DetectionSet:
    """4 solid-colour crops 20x50 (box = image), a 300x200 scene with one object, and (optionally) two
    object-free images: a 300x200 grey one and a window-sized 20x50 one."""
    samples = []
    for k, colour in enumerate(CROP_COLOURS):
        samples.append(_sample(folder, f"crop{k}", np.full((50, 20, 3), colour, np.uint8), [[0, 0, 20, 50]]))
    scene = np.full((200, 300, 3), 90, np.uint8)
    samples.append(_sample(folder, "scene", scene, [[100, 50, 130, 120]]))
    if backgrounds:
        samples.append(_sample(folder, "bg-large", np.full((200, 300, 3), 128, np.uint8), []))
        samples.append(_sample(folder, "bg-window", np.full((50, 20, 3), 60, np.uint8), []))
    return DetectionSet(samples, ["pedestrian"], "crops")


def test_tight_crop_rule():
    assert is_tight_crop(20, 50, np.array([[0, 0, 20, 50]], np.float32))
    assert is_tight_crop(20, 50, np.array([[1, 1, 19, 49]], np.float32))  # 0.86 of the image
    assert not is_tight_crop(20, 50, np.array([[0, 0, 20, 30]], np.float32))  # 0.6
    assert not is_tight_crop(20, 50, np.array([[0, 0, 20, 50], [0, 0, 10, 10]], np.float32))  # two objects
    assert not is_tight_crop(20, 50, np.zeros((0, 4), np.float32))


def test_crops_are_pasted_at_scene_scales_onto_background_images(tmp_path):
    data = TrainingImages(_crop_set(tmp_path))
    assert data.crops.tolist() == [0, 1, 2, 3] and data.backgrounds.tolist() == [5, 6]
    assert data.canvas_side == 200 and data.canvas_aspect == pytest.approx(1.5)
    assert data.describe()["tight_crops"] == 4
    rng = np.random.default_rng(0)
    fractions = []
    for t in range(40):
        image, boxes, labels = data.sample(t % 4, rng, True, (0.75, 1.33))
        assert image.shape == (200, 300, 3)  # the large background image, never the crop's own frame
        assert len(boxes) >= 1 and (labels == 1).all()  # model labels: class 0 -> 1
        for i, b in enumerate(boxes):
            x1, y1, x2, y2 = np.round(b).astype(int)
            inside = image[y1:y2, x1:x2].reshape(-1, 3).mean(0)
            assert min(np.abs(inside - c).max() for c in CROP_COLOURS) < 3  # the box holds a crop's pixels
            for other in boxes[i + 1:]:  # pasted crops do not overlap
                assert b[2] <= other[0] or other[2] <= b[0] or b[3] <= other[1] or other[3] <= b[1]
            fractions.append((y2 - y1) / 200)
        outside = np.ones(image.shape[:2], bool)
        for b in np.round(boxes).astype(int):
            outside[b[1]:b[3], b[0]:b[2]] = False
        assert np.abs(image[outside].astype(int) - 128).max() <= 1  # the rest is the background image
    fractions = np.array(fractions)
    assert fractions.min() >= CROP_SCALE[0] - 0.01 and fractions.max() <= CROP_SCALE[1] + 0.01
    assert fractions.max() - fractions.min() > 0.25  # scales are sampled, not fixed


def test_scenes_and_backgrounds_are_sampled_as_they_are(tmp_path):
    data = TrainingImages(_crop_set(tmp_path))
    rng = np.random.default_rng(1)
    image, boxes, labels = data.sample(4, rng, False, (1.0, 1.0))
    assert image.shape == (200, 300, 3) and boxes.tolist() == [[100, 50, 130, 120]] and labels.tolist() == [1]
    image, boxes, _ = data.sample(6, rng, False, (1.0, 1.0))  # a window-sized negative stays one
    assert image.shape == (50, 20, 3) and len(boxes) == 0


def test_without_background_images_crops_go_on_mean_colour_canvases(tmp_path):
    data = TrainingImages(_crop_set(tmp_path, backgrounds=False))
    assert len(data.backgrounds) == 0 and data.canvas_side == 200
    image, boxes, _ = data.sample(0, np.random.default_rng(2), False, (1.0, 1.0))
    assert image.shape == (200, 300, 3)
    outside = np.ones(image.shape[:2], bool)
    for b in np.round(boxes).astype(int):
        outside[b[1]:b[3], b[0]:b[2]] = False
    assert (image[outside] == FILL).all()


def test_sets_without_crops_are_unchanged(tmp_path):
    data = TrainingImages(DetectionSet(_crop_set(tmp_path).samples[4:], ["pedestrian"], "scenes"))
    assert len(data.crops) == 0 and data.describe() == {}


def test_pasting_can_be_switched_off(tmp_path):
    data = TrainingImages(_crop_set(tmp_path), paste_crops=False)
    assert len(data.crops) == 0 and data.describe() == {}
    image, boxes, _ = data.sample(0, np.random.default_rng(3), False, (1.0, 1.0))
    assert image.shape == (50, 20, 3) and boxes.tolist() == [[0, 0, 20, 50]]  # the crop as it is
