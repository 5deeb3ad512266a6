"""viola-jones on a few synthetic images: grey and tiny inputs, and the facts it records."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.data.datasets import open_dataset
from pipelines.classical.viola_jones import MERGE_MODES, ViolaJonesDetector, candidates, to_grey

TINY = {"max_stages": 2, "max_features": 300, "jitter": 0, "negatives_per_stage": 60, "val_negatives_per_stage": 30,
        "max_stumps_per_stage": 4, "stride": 6, "pyramid_step": 1.6, "max_upscale": 1.0, "stages_missed_values": (0,),
        "nms_iou_values": (0.3,), "score_modes": ("last",), "base_sizes": (24, 32)}


@pytest.fixture(scope="module")
def fitted(cache_dir, tmp_path_factory):
    data = open_dataset("synthetic-voc", tmp_path_factory.mktemp("no-data"), cache_dir)
    train, val = data.load("train", 6), data.load("val", 3)
    ctx = Context(seed=1)
    return ViolaJonesDetector(**TINY).fit(train, val, ctx), ctx, train


def test_records_cascade_facts(fitted):
    _, ctx, train = fitted
    info = ctx.info
    assert set(info["stages"]) <= set(train.classes) and info["stages"]
    for name, per_stage in info["features_per_stage"].items():
        assert 1 <= len(per_stage) <= 2 and all(1 <= n <= 4 for n in per_stage)
        assert info["classes"][name]["feature_pool"] <= 300
    assert 0 < info["chosen_on_val"]["val_features_per_window"] <= 8  # at most every stump of both stages


def test_grey_colour_and_tiny_images(fitted):
    det, _, train = fitted
    rgb = train.load_image(0)
    grey = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)
    out_rgb, out_grey, out_grey1 = det.detect(rgb), det.detect(grey), det.detect(grey[:, :, None])
    np.testing.assert_allclose(out_grey.boxes, out_grey1.boxes)
    assert len(out_rgb) == len(out_rgb.labels) == len(out_rgb.boxes)
    assert np.isfinite(out_rgb.scores).all() and (out_rgb.boxes[:, 2:] > out_rgb.boxes[:, :2]).all()
    for shape in [(3, 4, 3), (1, 1), (2, 200, 3)]:  # smaller than every window: no detections, no error
        out = det.detect(np.zeros(shape, np.uint8))
        assert len(out) == 0 and out.boxes.shape == (0, 4)
    assert det._stats["images"] == 6


def test_merging_is_chosen_on_val_and_replayed_by_detect(fitted):
    det, ctx, train = fitted
    for sel in ctx.info["selection_per_class"].values():  # both ways tried on val, one chosen
        assert {g["merge"] for g in sel["grid"]} == set(MERGE_MODES) and sel["chosen"]["merge"] in MERGE_MODES
    image = train.load_image(1)
    chosen = [m.merge for m in det.models_]
    try:
        outs = {}
        for merge in MERGE_MODES:
            for m in det.models_:
                m.merge = merge
            outs[merge] = det.detect(image)
    finally:
        for m, was in zip(det.models_, chosen, strict=True):
            m.merge = was
    plain, merged, voted = outs["none"], outs["mean"], outs["mean+votes"]
    # the same windows survive NMS (same scores and labels); merging only moves their boxes, and votes add the
    # log of the group's size (at least 1) to the score
    np.testing.assert_array_equal(plain.scores, merged.scores)
    np.testing.assert_array_equal(plain.labels, merged.labels)
    assert len(plain) > 0 and not np.array_equal(plain.boxes, merged.boxes)
    np.testing.assert_array_equal(voted.boxes, merged.boxes)
    gain = voted.scores - merged.scores
    assert (gain >= 0).all() and (gain > 0).any()
    np.testing.assert_allclose(np.exp(gain), np.round(np.exp(gain)), rtol=1e-4)  # log of a whole count
    # each merged box is the mean of the candidate windows its NMS winner suppressed: inside their hull
    grey = to_grey(image)
    for m in det.models_:
        b, *_ = candidates(grey, m, det.pyramid_step, det.stride, det.min_std, det.context, m.stages_missed,
                           det.max_candidates, m.score_mode)
        mine = merged.boxes[merged.labels == m.label]
        assert ((mine[:, :2] >= b[:, :2].min(axis=0) - 1e-3) & (mine[:, 2:] <= b[:, 2:].max(axis=0) + 1e-3)).all()


def test_val_detections_are_what_detect_gives_on_val(fitted, cache_dir, tmp_path_factory):
    """The detections kept from the selection on val (the task judges the floor on them) are detect()'s."""
    det, _, _ = fitted
    val = open_dataset("synthetic-voc", tmp_path_factory.mktemp("no-data"), cache_dir).load("val", 3)
    stats = dict(det._stats)
    try:
        outs = [det.detect(val.load_image(i)) for i in range(len(val))]
    finally:
        det._stats = stats
    assert len(det.val_detections_) == len(val) and sum(len(d) for d in outs) > 0
    for kept, out in zip(det.val_detections_, outs, strict=True):
        order_k, order_o = np.lexsort((kept.scores, kept.labels)), np.lexsort((out.scores, out.labels))
        np.testing.assert_array_equal(kept.labels[order_k], out.labels[order_o])
        np.testing.assert_allclose(kept.scores[order_k], out.scores[order_o], rtol=1e-6)
        np.testing.assert_allclose(kept.boxes[order_k], out.boxes[order_o], rtol=1e-5, atol=1e-3)


def test_base_size_is_chosen_on_val_per_class_as_its_own_fit_would_score_it(fitted, cache_dir, tmp_path_factory):
    """With two candidate base sizes each class keeps the cascade whose best settings score highest on val, and
    that cascade, its settings and its detections are those of a fit given that base size alone."""
    det, ctx, train = fitted
    assert det.candidate_base_sizes() == (24, 32)
    data = open_dataset("synthetic-voc", tmp_path_factory.mktemp("no-data"), cache_dir)
    val = data.load("val", 3)
    alone = {}
    for base in (24, 32):
        one_ctx = Context(seed=1)
        alone[base] = (ViolaJonesDetector(**{**TINY, "base_sizes": (base,)}).fit(train, val, one_ctx), one_ctx)
    image = train.load_image(2)
    for m in det.models_:
        name = train.classes[m.label]
        sel = ctx.info["selection_per_class"][name]
        assert {g["base_size"] for g in sel["grid"]} == {24, 32} and sel["chosen"]["base_size"] == m.base_size
        scores = {b: c.info["chosen_on_val"][name]["val_ap50"] for b, (_, c) in alone.items()}
        chosen = ctx.info["chosen_on_val"][name]
        if scores[24] >= scores[32]:  # the first size is best on val (a tie goes to the first): kept
            assert m.base_size == 24 and "base_size_best_on_val" not in chosen
        else:  # 32 is best on val: it replaces the first only when the interval of its paired gain is above zero
            assert chosen["base_size_best_on_val"] == 32
            clear = chosen["base_size_gain_ci95"] is not None and chosen["base_size_gain_ci95"][0] > 0
            assert m.base_size == (32 if clear else 24) and ("base_size_kept" in chosen) == (not clear)
        assert chosen["val_ap50"] == scores[m.base_size]
        assert ctx.info["classes"][name]["base_size"] == m.base_size
        assert set(ctx.info["classes"][name]["base_size_candidates"]) == {"24", "32"}
        (twin,) = [t for t in alone[m.base_size][0].models_ if t.label == m.label]
        assert (twin.window, twin.cascade.stumps_per_stage, twin.stages_missed, twin.nms_iou, twin.merge) == (
            m.window, m.cascade.stumps_per_stage, m.stages_missed, m.nms_iou, m.merge)
    solo = ViolaJonesDetector(**{**TINY, "base_sizes": None, "base_size": 24})
    assert solo.candidate_base_sizes() == (24,)
    if len({m.base_size for m in det.models_}) == 1:  # every class kept one base size: whole detections agree
        ref = alone[det.models_[0].base_size][0]
        ref._stats, det_stats = dict(ref._stats), dict(det._stats)
        try:
            a, b = det.detect(image), ref.detect(image)
        finally:
            det._stats = det_stats
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
