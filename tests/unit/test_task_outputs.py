"""Output validation of the detection and proposal tasks, and the per-image storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite.api import Detections
from benchsuite.errors import OutputValidationError
from benchsuite.tasks.detection import validate_detections
from benchsuite.tasks.per_image import load_ragged, save_ragged
from benchsuite.tasks.proposals import validate_proposals


@pytest.mark.parametrize("form", ["tuple", "dict", "detections", "torch"])
def test_detections_in_every_accepted_form(form):
    boxes = np.array([[1.0, 2.0, 30.0, 40.0], [5.0, 5.0, 9.0, 9.0]])
    scores = np.array([0.9, 0.1])
    labels = np.array([1, 0])
    out = {
        "tuple": (boxes, scores, labels),
        "dict": {"boxes": boxes, "scores": scores, "labels": labels},
        "detections": Detections(boxes, scores, labels),
        "torch": (torch.tensor(boxes), torch.tensor(scores), torch.tensor(labels)),
    }[form]
    dets, clipped, dropped = validate_detections(out, 100, 100, 2, "img")
    np.testing.assert_array_equal(dets.boxes, boxes)
    np.testing.assert_array_equal(dets.labels, labels)
    assert (clipped, dropped) == (0, 0)


def test_boxes_are_clipped_and_boxes_outside_dropped():
    boxes = np.array([[-5.0, 10.0, 20.0, 130.0], [110.0, 0.0, 150.0, 20.0], [10.0, 10.0, 20.0, 20.0]])
    dets, clipped, dropped = validate_detections((boxes, np.ones(3), np.zeros(3, int)), 100, 120, 1, "img")
    np.testing.assert_array_equal(dets.boxes, [[0, 10, 20, 120], [10, 10, 20, 20]])
    assert (clipped, dropped) == (1, 1)  # the dropped box is counted as dropped only


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ((np.array([[5.0, 5, 1, 9]]), np.array([1.0]), np.array([0])), "x2 <= x1"),
        ((np.array([[1.0, 1, np.nan, 9]]), np.array([1.0]), np.array([0])), "non-finite"),
        ((np.array([[1.0, 1, 5, 9]]), np.array([1.0]), np.array([3])), "labels: values outside [0, 2)"),
        ((np.array([[1.0, 1, 5, 9]]), np.array([1.0, 2.0]), np.array([0])), "scores: expected shape (1,)"),
        ((np.array([1.0, 1, 5, 9]), np.array([1.0]), np.array([0])), "expected shape (N, 4)"),
        ("boxes", "returned str"),
    ],
)
def test_bad_detections_are_rejected(out, message):
    with pytest.raises(OutputValidationError, match=r"image 7: .*" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        validate_detections(out, 100, 100, 2, "image 7")


def test_proposals_keep_rank_and_clip():
    boxes = np.array([[0.0, 0, 10, 10], [90, 90, 130, 130], [200, 200, 210, 210], [5, 5, 6, 6]])
    kept, dropped = validate_proposals(boxes, 100, 100, "img")
    np.testing.assert_array_equal(kept, [[0, 0, 10, 10], [90, 90, 100, 100], [5, 5, 6, 6]])
    assert dropped == 1
    with pytest.raises(OutputValidationError, match="y2 <= y1"):
        validate_proposals(np.array([[0.0, 5, 1, 5]]), 10, 10, "img")


def test_ragged_round_trip_with_empty_images(tmp_path):
    boxes = [np.zeros((0, 4)), np.arange(8.0).reshape(2, 4), np.zeros((0, 4))]
    scores = [np.zeros(0), np.array([0.5, 0.25]), np.zeros(0)]
    save_ragged(tmp_path / "p.npz", ["a", "b", "c"], boxes=boxes, scores=scores)
    ids, got = load_ragged(tmp_path / "p.npz")
    assert ids == ["a", "b", "c"]
    for want, have in zip(boxes, got["boxes"]):
        np.testing.assert_array_equal(want, have)
    np.testing.assert_array_equal(got["scores"][1], [0.5, 0.25])
    assert got["boxes"][0].shape == (0, 4)
