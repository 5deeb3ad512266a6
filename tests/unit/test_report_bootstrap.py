"""The report's bootstrap: weighted metrics equal the evaluators run on materialised resamples."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.detection import match, summarize
from benchsuite.metrics.proposals import evaluate_proposals


def _scene(rng: np.random.Generator, n_images: int, num_classes: int):
    gt_b, gt_l, gt_d, det_b, det_s, det_l = [], [], [], [], [], []
    for _ in range(n_images):
        m = int(rng.integers(0, 5))
        xy = rng.uniform(0, 200, (m, 2))
        wh = rng.uniform(10, 120, (m, 2))
        boxes = np.hstack([xy, xy + wh])
        labels = rng.integers(0, num_classes, m)
        gt_b.append(boxes)
        gt_l.append(labels)
        gt_d.append(rng.uniform(size=m) < 0.1)
        # detections: jittered copies of some objects (some with wrong labels) plus random boxes
        take = rng.uniform(size=m) < 0.7
        jitter = boxes[take] + rng.normal(0, 8, (int(take.sum()), 4))
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        k = int(rng.integers(0, 4))
        xy2 = rng.uniform(0, 200, (k, 2))
        rand = np.hstack([xy2, xy2 + rng.uniform(10, 100, (k, 2))])
        db = np.vstack([jitter, rand])
        dl = np.concatenate([np.where(rng.uniform(size=int(take.sum())) < 0.85, labels[take],
                                      rng.integers(0, num_classes, int(take.sum()))),
                             rng.integers(0, num_classes, k)])
        det_b.append(db)
        det_l.append(dl.astype(np.int64))
        det_s.append(rng.uniform(size=len(db)))  # continuous scores: no ties between images
    return gt_b, gt_l, gt_d, det_b, det_s, det_l


def map50(gt_b, gt_l, gt_d, det_b, det_s, det_l, classes) -> float:
    return summarize(match(gt_b, gt_l, gt_d, det_b, det_s, det_l, len(classes)), classes, ("voc",))["map50"]


def test_weighted_map50_equals_evaluator_on_resampled_images():
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c"]
    gt_b, gt_l, gt_d, det_b, det_s, det_l = _scene(rng, 25, len(classes))
    ev = bs.detection_evidence(match(gt_b, gt_l, gt_d, det_b, det_s, det_l, len(classes)))
    full = map50(gt_b, gt_l, gt_d, det_b, det_s, det_l, classes)
    assert bs.map50_for_weights(ev, np.ones((1, 25), np.int64))[0] == pytest.approx(full, abs=1e-12)
    for _ in range(8):
        idx = rng.integers(0, 25, 25)
        weights = np.bincount(idx, minlength=25)[None]
        picked = [[xs[i] for i in idx] for xs in (gt_b, gt_l, gt_d, det_b, det_s, det_l)]
        oracle = map50(*picked, classes)
        assert bs.map50_for_weights(ev, weights)[0] == pytest.approx(oracle, abs=1e-9)


def test_map50_interval_brackets_the_estimate_and_shrinks_with_more_images():
    rng = np.random.default_rng(5)
    small = _scene(rng, 20, 2)
    large = tuple(a * 10 for a in small)  # the same images ten times: same AP, narrower interval
    ev_s = bs.detection_evidence(match(*small, 2))
    ev_l = bs.detection_evidence(match(*large, 2))
    lo_s, hi_s = bs.percentile_interval(bs.map50_resamples(ev_s, 200))
    lo_l, hi_l = bs.percentile_interval(bs.map50_resamples(ev_l, 200))
    full = map50(*small, ["a", "b"])
    assert lo_s <= full <= hi_s and lo_l <= full <= hi_l
    assert hi_l - lo_l < hi_s - lo_s


def test_accuracy_interval_matches_binomial_spread():
    correct = np.r_[np.ones(700, bool), np.zeros(300, bool)]
    acc = bs.accuracy_resamples(correct, 2000, seed=1)
    assert acc.mean() == pytest.approx(0.7, abs=0.005)
    assert acc.std() == pytest.approx(np.sqrt(0.7 * 0.3 / 1000), rel=0.1)


def test_proposal_evidence_reproduces_recall_and_mabo():
    rng = np.random.default_rng(9)
    gt_b, gt_l, gt_d, det_b, _, _ = _scene(rng, 15, 3)
    m = evaluate_proposals(gt_b, gt_l, gt_d, det_b, ["a", "b", "c"])
    ev = bs.proposal_evidence(gt_b, gt_l, gt_d, det_b, 3)
    w = np.ones((1, 15))
    assert (w @ ev.hits / (w @ ev.objects))[0] == pytest.approx(m["recall_at_1000_iou50"])
    rec, mabo = bs.proposal_resamples(ev, 50)
    lo, hi = bs.percentile_interval(mabo)
    assert lo <= m["mabo"] <= hi
    assert np.all((rec >= 0) & (rec <= 1))


def test_paired_map50_gain_is_each_resample_of_one_minus_the_other():
    rng = np.random.default_rng(11)
    classes = ["a", "b"]
    gt_b, gt_l, gt_d, det_b, det_s, det_l = _scene(rng, 30, len(classes))
    ours = match(gt_b, gt_l, gt_d, det_b, det_s, det_l, 2)
    blind = match(gt_b, gt_l, gt_d, [b + 150.0 for b in det_b], det_s, det_l, 2)  # every box shifted off its object
    assert not bs.map50_gain_resamples(ours, ours, 100).any()  # paired: the same draws give exactly zero
    gains = bs.map50_gain_resamples(ours, blind, 300, seed=4)
    weights = np.concatenate(list(bs.resample_weights(30, 300, 4)))
    oracle = [map50(*[[xs[i] for i in np.repeat(np.arange(30), w)] for xs in (gt_b, gt_l, gt_d, det_b, det_s, det_l)],
                    classes)
              - map50(*[[xs[i] for i in np.repeat(np.arange(30), w)] for xs in (gt_b, gt_l, gt_d,
                                                                                   [b + 150.0 for b in det_b],
                                                                                   det_s, det_l)], classes)
              for w in weights[:10]]
    np.testing.assert_allclose(gains[:10], oracle, atol=1e-9)
    assert bs.percentile_interval(gains)[0] > 0
    with pytest.raises(ValueError, match="paired gain"):
        bs.map50_gain_resamples(ours, match(gt_b[:5], gt_l[:5], gt_d[:5], det_b[:5], det_s[:5], det_l[:5], 2))
