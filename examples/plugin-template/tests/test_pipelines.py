"""What the template's pipelines do, beyond the contract."""

import numpy as np
from benchsuite_template.classifier import ColourHistogramKNN, colour_histograms
from benchsuite_template.detector import TemplateMatcher

from benchsuite.api import Context
from benchsuite.testing import tiny_data


def test_histograms_sum_to_one_and_separate_colours():
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((1, 4, 4, 3), np.uint8)
    blue[..., 2] = 255
    h = colour_histograms(np.concatenate([red, blue]), 2)
    assert h.shape == (2, 8) and np.allclose(h.sum(1), 1) and h[0].argmax() != h[1].argmax()


def test_classifier_labels_every_test_image():
    data = tiny_data("classification")
    model = ColourHistogramKNN(k_values=(1,), bins=4).fit(data.train, data.val, Context())
    assert model.predict(data.test.images).labels.shape == (len(data.test),)


def test_detector_finds_its_own_template():
    data = tiny_data("detection")
    model = TemplateMatcher(window_height=16, pyramid_step=1.5).fit(data.train, data.val, Context())
    assert model.templates_ and all(abs(np.linalg.norm(t) - 1) < 1e-4 for t in model.templates_)
    image = data.train.load_image(0)
    dets = model.detect(image)
    assert dets.boxes.shape[1] == 4 and len(dets) <= model.max_detections
