"""tools/paired_difference.py: the mAP50 difference of two detectors on the same images, resampled in pairs."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.metrics.bootstrap import DetectionEvidence, percentile_interval, resample_weights
from tools.paired_difference import paired_difference


def one_class(found: list[bool]) -> DetectionEvidence:
    """One object per image; a detection (a true positive, all of equal rank) in each image where ``found``."""
    hits = np.flatnonzero(found)
    return DetectionEvidence(len(found), np.ones((len(found), 1), np.int64), hits, np.zeros(len(hits), np.int64),
                             np.ones(len(hits), bool), np.array([0, len(hits)]))


def test_difference_and_interval_against_recall_by_hand():
    """With precision 1 the VOC AP is the recall: A finds every object, B those of the first two images, so each
    paired resample's difference is the weight share of the images B missed."""
    found_b = [True, True, False, False, False]
    out = paired_difference(one_class([True] * 5), one_class(found_b), resamples=300, seed=3)
    assert out["a"] == pytest.approx(1.0) and out["b"] == pytest.approx(0.4)
    assert out["difference"] == pytest.approx(0.6)
    w = np.concatenate(list(resample_weights(5, 300, 3)))
    by_hand = w[:, 2:].sum(1) / w.sum(1)
    assert out["interval"] == pytest.approx(percentile_interval(by_hand))
    assert out["a_better_share"] == pytest.approx(float(np.mean(by_hand > 0)))


def test_a_detector_against_itself_differs_by_nothing():
    ev = one_class([True, False, True, True])
    out = paired_difference(ev, ev, resamples=50)
    assert out["difference"] == 0 and out["interval"] == pytest.approx((0.0, 0.0)) and out["a_better_share"] == 0


def test_different_image_counts_are_refused():
    with pytest.raises(ValueError, match="same images"):
        paired_difference(one_class([True, True]), one_class([True]))
