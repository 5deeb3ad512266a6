"""Detection metrics against independent oracles.

- COCO numbers against pycocotools' COCOeval itself, fed the JSON files our export module writes.
- VOC numbers against hand-worked cases and a slow brute-force port of the devkit (``VOCevaldet.m`` and
  ``VOCap.m``) that works on VOC's 1-based inclusive coordinates with the devkit's "+1".
- LAMR on a hand-worked case.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from voc_devkit import devkit_ap, devkit_status

from benchsuite.metrics.detection import IGNORED, PARTS, log_average_miss_rate, match, summarize, voc07_ap, voc_ap
from benchsuite.metrics.export import write_coco_json, write_voc_results

COCO_KEYS = ["coco_ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"]
AP_KEYS = ["map50", "map50_voc07", *COCO_KEYS]


def names(num_classes: int) -> list[str]:
    return [f"class{c}" for c in range(num_classes)]


def evaluate(gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels, class_names, parts=PARTS):
    """The record's metrics block: every part summarised from one matching."""
    return summarize(match(gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels, len(class_names)),
                     class_names, parts)


# --------------------------------------------------------------------------------------------- scenes


def make_scene(rng: np.random.Generator, n_images: int = 30, num_classes: int = 3, p_difficult: float = 0.0,
               max_gt: int = 6, max_det: int = 150, integer: bool = False, score_decimals: int | None = 2,
               extent: float = 300.0):
    """Random ground truth of all sizes and detections: jittered copies of objects (TP candidates, some
    duplicates, some with the wrong class) and boxes anywhere (FP), with tied scores when rounded."""
    gb, gl, gd, db, ds, dl = [], [], [], [], [], []
    for _ in range(n_images):
        m = int(rng.integers(0, max_gt + 1))
        xy = rng.uniform(0, extent, (m, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(200), (m, 2)))  # areas from 16 to 40,000: small to large
        g = np.concatenate([xy, xy + wh], axis=1)
        labels = rng.integers(0, num_classes, m)
        d = int(rng.integers(0, max_det + 1))
        src = rng.integers(0, max(m, 1), d)
        if m:
            size = np.concatenate([wh[src], wh[src]], axis=1)
            boxes = g[src] + rng.normal(0, 0.12, (d, 4)) * size
            det_labels = np.where(rng.random(d) < 0.85, labels[src], rng.integers(0, num_classes, d))
        else:
            boxes = np.zeros((d, 4))
            det_labels = rng.integers(0, num_classes, d)
        anywhere = (rng.random(d) < 0.25) | (m == 0)
        xy = rng.uniform(0, extent, (d, 2))
        boxes[anywhere] = np.concatenate([xy, xy + np.exp(rng.uniform(np.log(4), np.log(150), (d, 2)))], 1)[anywhere]
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.random(d)
        if score_decimals is not None:
            scores = np.round(scores, score_decimals)
        if integer:
            g, boxes = np.round(g), np.round(boxes)
        gb.append(g)
        gl.append(labels)
        gd.append(rng.random(m) < p_difficult)
        db.append(boxes)
        ds.append(scores)
        dl.append(det_labels)
    return gb, gl, gd, db, ds, dl


# ------------------------------------------------------------------------------------------ pycocotools


class IgnoreAwareCOCOeval(COCOeval):
    """COCOeval that honours each annotation's own ``ignore`` flag. Stock pycocotools overwrites it with
    ``iscrowd`` in ``_prepare``; this is the one line changed, so it scores difficult objects as ignored
    non-crowd boxes, the suite's definition."""

    def __init__(self, gt: COCO, dt: COCO, flags: dict[int, int]):
        super().__init__(gt, dt, "bbox")
        self.flags = flags

    def _prepare(self):
        super()._prepare()
        for anns in self._gts.values():
            for ann in anns:
                ann["ignore"] = self.flags[ann["id"]]


def pycoco_stats(tmp_path, scene, num_classes: int, honour_ignore: bool = False) -> np.ndarray:
    """COCOeval's stats[0:6] (NaN where it reports -1), from JSON files written by our export module."""
    gb, gl, gd, db, ds, dl = scene
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    write_coco_json(gt_path, dt_path, [f"img{i}" for i in range(len(gb))], [(600, 600)] * len(gb),
                    gb, gl, gd, db, ds, dl, names(num_classes))
    flags = {a["id"]: a["ignore"] for a in json.loads(gt_path.read_text())["annotations"]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        ev = IgnoreAwareCOCOeval(gt, dt, flags) if honour_ignore else COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats[:6], float)
    return np.where(stats == -1, np.nan, stats)


def ours(scene, num_classes: int) -> dict:
    return evaluate(*scene, names(num_classes))


def assert_matches_pycocotools(tmp_path, scene, num_classes, honour_ignore=False):
    assert sum(len(s) for s in scene[4]), "pycocotools cannot load an empty results list"
    expected = pycoco_stats(tmp_path, scene, num_classes, honour_ignore)
    got = np.array([ours(scene, num_classes)[k] for k in COCO_KEYS])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=0, atol=1e-6)
    return got


@pytest.mark.parametrize("seed", range(8))
def test_coco_random_against_pycocotools(tmp_path, seed):
    # 30 images, 0..6 objects and 0..150 detections each (> 100: the per-image cap applies), 3 classes
    # (0 or 4 with one without ground truth), tied scores, images without objects or detections
    rng = np.random.default_rng(seed)
    num_classes = 4 if seed % 2 else 3
    scene = make_scene(rng, num_classes=num_classes, integer=seed % 3 == 0)
    if num_classes == 4:  # class 3 gets detections but never ground truth
        scene[1][:] = [np.minimum(lab, 2) for lab in scene[1]]
    got = assert_matches_pycocotools(tmp_path, scene, num_classes)
    assert np.all((got >= 0) & (got <= 1))


@pytest.mark.parametrize("seed", range(4))
def test_coco_with_difficult_against_pycocotools_honouring_ignore(tmp_path, seed):
    rng = np.random.default_rng(50 + seed)
    scene = make_scene(rng, p_difficult=0.3, integer=seed % 2 == 0)
    assert sum(d.sum() for d in scene[2]) > 0
    assert_matches_pycocotools(tmp_path, scene, 3, honour_ignore=True)


def test_coco_sparse_scene_against_pycocotools(tmp_path):
    # many images without objects or without detections, few objects: sizes missing give NaN
    rng = np.random.default_rng(3)
    scene = make_scene(rng, n_images=40, max_gt=1, max_det=3, num_classes=2)
    assert_matches_pycocotools(tmp_path, scene, 2)


def size_scene():
    """Objects on the area boundaries (pycocotools' ranges are inclusive at both ends: a 32x32 object is
    both small and medium), detections with IoU exactly 0.5 and 0.75, unmatched detections of every size
    (ignored outside the range), one image without objects and one without detections."""
    gt = np.array([
        [0, 0, 16, 16],      # 256: small
        [50, 0, 82, 32],     # 1024 = 32^2: small and medium
        [100, 0, 150, 50],   # 2500: medium
        [200, 0, 296, 96],   # 9216 = 96^2: medium and large
        [300, 0, 450, 150],  # 22500: large
        [0, 200, 40, 240],   # 1600: medium
    ], float)
    det = np.array([
        [0, 0, 16, 16],      # exact: TP
        [50, 0, 82, 16],     # IoU 512 / 1024 = 0.5 exactly
        [100, 0, 150, 37.5],  # IoU 1875 / 2500 = 0.75 exactly
        [200, 0, 296, 96],   # exact
        [300, 0, 450, 75],   # IoU 0.5
        [0, 200, 40, 220],   # IoU 0.5
        [500, 500, 510, 510],  # FP, small
        [500, 300, 560, 360],  # FP, medium
        [400, 400, 550, 550],  # FP, large
        [0, 0, 16, 16],      # duplicate of the first
    ], float)
    scores = np.array([0.9, 0.8, 0.85, 0.7, 0.6, 0.75, 0.95, 0.65, 0.55, 0.5])
    labels = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    gt2 = np.array([[10, 10, 60, 60]], float)
    return ([gt, gt2, np.zeros((0, 4))], [np.array([0, 0, 0, 0, 0, 1]), np.array([0]), np.zeros(0, int)],
            [np.zeros(6, bool), np.zeros(1, bool), np.zeros(0, bool)],
            [det, np.zeros((0, 4)), np.array([[5, 5, 30, 30]], float)],
            [scores, np.zeros(0), np.array([0.99])],
            [labels, np.zeros(0, int), np.array([1])])


def tie_break_scene():
    """A detection with equal IoU 0.5 to two objects A = (0,0,10,20) and B = (0,0,20,10), and a second
    detection that overlaps A only (IoU 190/200 = 0.95; with B 100/290)."""
    gt = np.array([[0, 0, 10, 20], [0, 0, 20, 10]], float)
    det = np.array([[0, 0, 10, 10], [0, 0, 10, 19]], float)
    return ([gt], [np.array([0, 0])], [np.zeros(2, bool)], [det], [np.array([0.9, 0.8])], [np.array([0, 0])])


def capped_scene():
    """120 detections in one image: the 100 best are FPs, the 20 below are exact hits that pycocotools
    never sees (maxDets=100 per image and class); all scores in image 1 tie with image 0's."""
    rng = np.random.default_rng(9)
    gt0 = np.array([[10.0 * k, 0, 10.0 * k + 8, 8] for k in range(20)])
    far = np.concatenate([rng.uniform(300, 400, (100, 2)), rng.uniform(410, 500, (100, 2))], axis=1)
    det0 = np.concatenate([far, gt0])
    scores0 = np.concatenate([np.linspace(1.0, 0.5, 100), np.linspace(0.4, 0.1, 20)])
    gt1 = gt0[:5] + 100
    det1 = np.concatenate([gt1, gt1 + 3])
    scores1 = np.full(10, 0.5)
    return ([gt0, gt1], [np.zeros(20, int), np.zeros(5, int)], [np.zeros(20, bool), np.zeros(5, bool)],
            [det0, det1], [scores0, scores1], [np.zeros(120, int), np.zeros(10, int)])


def preference_scene():
    """A regular object R = (0,0,10,10) and a difficult one D = (0,0,10,11); one detection equal to D
    (IoU 1 with D, 100/110 with R)."""
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 11]], float)
    return ([gt], [np.array([0, 0])], [np.array([False, True])], [np.array([[0, 0, 10, 11]], float)],
            [np.array([0.9])], [np.array([0])])


@pytest.mark.parametrize("scene_fn, num_classes", [(size_scene, 2), (tie_break_scene, 1), (capped_scene, 1),
                                                   (preference_scene, 1)])
def test_coco_structured_against_pycocotools(tmp_path, scene_fn, num_classes):
    assert_matches_pycocotools(tmp_path, scene_fn(), num_classes, honour_ignore=True)


def test_regular_objects_preferred_to_ignored_hand_worked():
    m = ours(preference_scene(), 1)
    # COCO: a detection takes a regular object with IoU >= t before any ignored one, however better the
    # ignored one fits: at t = 0.50 .. 0.90 (9 thresholds) it takes R (0.909): TP, AP 1. At 0.95 only D
    # qualifies: the detection is ignored and R is missed: AP 0. Mean 9/10.
    assert m["coco_ap"] == pytest.approx(0.9, abs=1e-12)
    assert m["ap50"] == pytest.approx(1.0, abs=1e-12)
    # VOC: the devkit takes the best IoU whatever the object, D: ignored; R is never found: AP 0.
    assert m["map50"] == 0.0


def test_tie_break_hand_worked():
    m = ours(tie_break_scene(), 1)
    # VOC: det1 (0.9) has IoU 0.5 with A and B; the devkit keeps the first maximum (strict >): A, TP.
    # det2 (0.8): best is A (0.95), already taken: FP. npos = 2 -> recall 1/2, 1/2; precision 1, 1/2.
    # all-point: 1/2 * 1 = 0.5; 11-point: levels 0, .1, ..., .5 reach precision 1, the rest 0: 6/11.
    assert m["map50"] == pytest.approx(0.5, abs=1e-12)
    assert m["map50_voc07"] == pytest.approx(6 / 11, abs=1e-12)
    # COCO at IoU 0.5: among equal IoUs pycocotools keeps the last box, B; det2 then takes A: two TPs,
    # precision 1 at every recall level -> AP50 = 1.
    assert m["ap50"] == pytest.approx(1.0, abs=1e-12)
    # at IoU 0.55 .. 0.95 (9 thresholds) det1 is a FP and det2 a TP (0.95 >= 0.95): precision 1/2 at
    # recall 1/2, so the 51 recall levels 0, 0.01, .., 0.50 read 1/2 and the other 50 read 0.
    assert m["ap75"] == pytest.approx(25.5 / 101, abs=1e-12)
    assert m["coco_ap"] == pytest.approx((1 + 9 * 25.5 / 101) / 10, abs=1e-12)


def test_coco_cap_hand_worked():
    m = ours(capped_scene(), 1)
    # image 0's 20 exact hits rank 101..120 in their image and are cut: only image 1 can score. Its 10
    # detections (score 0.5) tie with image 0's 100th (0.5); ties keep image order, so the order is
    # 99 FPs (image 0, 1.0 .. above 0.5), FP (image 0, 0.5), then image 1: 5 exact TPs, 5 shifted boxes.
    # At IoU 0.5: shifted by 3 on 8x8 boxes, IoU 25/103 < 0.5: FPs. TPs at ranks 101..105 of 110:
    # precision 5/105 at recall 5/25 = 0.2: levels 0 .. 0.20 (21 of 101) read 1/21.
    assert m["ap50"] == pytest.approx(21 * (1 / 21) / 101, abs=1e-12)


# -------------------------------------------------------------------------------------- VOC, hand-worked


def voc_hand_scene():
    a, b, c = [0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]
    gt = [np.array([a, b, c], float), np.array([a], float), np.array([a], float), np.zeros((0, 4))]
    gt_labels = [np.array([0, 0, 1]), np.array([0]), np.array([0]), np.zeros(0, int)]
    gt_difficult = [np.array([False, True, False]), np.array([False]), np.array([False]), np.zeros(0, bool)]
    det = [
        np.array([b, a, [0, 0, 10, 9], [40, 40, 50, 50], c], float),  # image 0
        np.array([a, [0, 0, 5, 5]], float),                             # image 1
        np.zeros((0, 4)),                                               # image 2: no detections
        np.array([[50, 50, 60, 60]], float),                            # image 3: no objects
    ]
    det_scores = [np.array([0.9, 0.8, 0.7, 0.95, 0.5]), np.array([0.6, 0.4]), np.zeros(0), np.array([0.3])]
    det_labels = [np.array([0, 0, 0, 1, 1]), np.array([0, 2]), np.zeros(0, int), np.array([0])]
    return gt, gt_labels, gt_difficult, det, det_scores, det_labels


def test_voc_hand_worked():
    m = evaluate(*voc_hand_scene(), ["cat", "dog", "bird"])
    # cat: positives A (image 0), A (image 1), A (image 2) = 3; B (image 0) is difficult.
    # detections by score: 0.9 on B (difficult: ignored), 0.8 on A0 (TP), 0.7 (0,0,10,9) IoU 0.9 with the
    # taken A0 (duplicate: FP), 0.6 on A1 (TP), 0.3 in image 3 (FP). Without the ignored one:
    # TP FP TP FP: recall 1/3 1/3 2/3 2/3, precision 1 1/2 2/3 1/2.
    # all-point: envelope 1 up to recall 1/3, 2/3 up to 2/3, then 0: 1/3 * 1 + 1/3 * 2/3 = 5/9.
    # 11-point: levels 0 .. 0.3 -> 1 (4 levels), 0.4 .. 0.6 -> 2/3 (3 levels), 0.7 .. 1 -> 0: (4 + 2) / 11.
    cat = m["per_class"]["cat"]
    assert cat["ap50"] == pytest.approx(5 / 9, abs=1e-12)
    assert cat["ap50_voc07"] == pytest.approx(6 / 11, abs=1e-12)
    assert (cat["num_gt"], cat["num_difficult"], cat["num_det"]) == (3, 1, 5)
    np.testing.assert_allclose(m["pr_curves"]["cat"]["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(m["pr_curves"]["cat"]["precision"], [1, 1 / 2, 2 / 3, 1 / 2])
    # dog: one positive (C); 0.95 far away (FP), 0.5 on C (TP): precision 0, 1/2 at recall 0, 1.
    # all-point 1 * 1/2; 11-point: every level reaches recall 1 with precision 1/2: 1/2.
    dog = m["per_class"]["dog"]
    assert dog["ap50"] == pytest.approx(0.5, abs=1e-12)
    assert dog["ap50_voc07"] == pytest.approx(0.5, abs=1e-12)
    # bird: no ground truth -> NaN, left out of the means
    bird = m["per_class"]["bird"]
    assert math.isnan(bird["ap50"]) and math.isnan(bird["ap50_voc07"]) and math.isnan(bird["coco_ap"])
    assert (bird["num_gt"], bird["num_det"]) == (0, 1)
    assert m["pr_curves"]["bird"] == {"recall": [], "precision": []}
    assert m["map50"] == pytest.approx((5 / 9 + 1 / 2) / 2, abs=1e-12)
    assert m["map50_voc07"] == pytest.approx((6 / 11 + 1 / 2) / 2, abs=1e-12)
    assert (m["num_images"], m["num_gt"], m["num_difficult"], m["num_detections"]) == (4, 4, 1, 8)
    assert "lamr" not in m


def test_voc_difficult_matters():
    """The same scene with B not difficult: the 0.9 detection becomes a TP, so cat AP must change."""
    scene = list(voc_hand_scene())
    scene[2] = [np.zeros(len(g), bool) for g in scene[0]]
    m = evaluate(*scene, ["cat", "dog", "bird"])
    # cat: 4 positives; TP TP FP TP FP: recall 1/4 2/4 2/4 3/4 3/4, precision 1 1 2/3 3/4 3/5
    # all-point: 1/4 + 1/4 + 1/4 * 3/4 = 11/16
    assert m["per_class"]["cat"]["ap50"] == pytest.approx(11 / 16, abs=1e-12)


def test_ap_formulas_by_hand():
    # precision 1, 0.5, 2/3 at recall 0.25, 0.25, 0.5 -> envelope 1 on (0, .25], 2/3 on (.25, .5]
    rec, prec = np.array([0.25, 0.25, 0.5]), np.array([1.0, 0.5, 2 / 3])
    assert voc_ap(rec, prec) == pytest.approx(0.25 + 0.25 * 2 / 3, abs=1e-15)
    # 11-point: levels 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; .6 .. 1 -> 0
    assert voc07_ap(rec, prec) == pytest.approx((3 + 3 * 2 / 3) / 11, abs=1e-15)
    # recall exactly 3/10 reaches the 0.3 level (exact tenths)
    assert voc07_ap(np.array([0.3]), np.array([1.0])) == pytest.approx(4 / 11, abs=1e-15)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0
    assert voc07_ap(np.zeros(0), np.zeros(0)) == 0.0


# ------------------------------------------------------------------------------ VOC, brute-force devkit


def test_match_status_against_devkit():
    """Every detection's outcome and assigned object, as the devkit decides them one at a time: duplicates stay
    false positives (they never fall to their next-best object), difficult best objects make them ignored."""
    dups = 0
    for seed in range(6):
        rng = np.random.default_rng(300 + seed)
        scene = make_scene(rng, n_images=25, max_det=40, p_difficult=0.25, integer=True, score_decimals=1)
        m = match(*scene, 3)
        expected = devkit_status(*scene, 3)
        for i, (status, matched) in enumerate(zip(m.per_image(m.status[0]), m.per_image(m.matched[0]))):
            np.testing.assert_array_equal(status, expected[i][0])
            local = np.where(matched >= 0, matched - m.gt_offsets[i], -1)
            np.testing.assert_array_equal(local, expected[i][1])
            dups += int(((status == 0) & (local >= 0)).sum())
    assert dups > 0  # the scenes hold duplicates, where the rules of the devkit and of pycocotools part


def test_coco_rule_against_pycocotools_per_detection(tmp_path):
    """Every counted detection's match at every threshold and area range, against COCOeval.evaluateImg."""
    rng = np.random.default_rng(61)
    scene = make_scene(rng, n_images=12, p_difficult=0.2, integer=True, max_det=130)
    n = len(scene[0])
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    write_coco_json(gt_path, dt_path, [f"img{i}" for i in range(n)], [(600, 600)] * n, *scene, names(3))
    flags = {a["id"]: a["ignore"] for a in json.loads(gt_path.read_text())["annotations"]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = IgnoreAwareCOCOeval(gt, gt.loadRes(str(dt_path)), flags)
        ev.evaluate()
    checked = 0
    for a, area in enumerate(["all", "small", "medium", "large"]):
        m = match(*scene, 3, rule="coco", area=area)
        for entry in ev.evalImgs:  # one per (class, area range, image) with objects or detections
            if entry is None or list(entry["aRng"]) != list(ev.params.areaRng[a]):
                continue
            cols = np.asarray(entry["dtIds"], np.int64) - 1  # results ids count from 1 in our flat order
            np.testing.assert_array_equal(m.matched[:, cols] + 1, np.asarray(entry["dtMatches"], np.int64))
            np.testing.assert_array_equal(m.status[:, cols] == IGNORED, entry["dtIgnore"])
            checked += len(cols)
    assert checked > 1000


@pytest.mark.parametrize("seed", range(6))
def test_voc_against_devkit_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    # integer coordinates (exact IoUs, including 0.5 exactly), difficult objects, tied scores
    scene = make_scene(rng, n_images=25, max_det=40, p_difficult=0.25, integer=True, score_decimals=1)
    m = evaluate(*scene, names(3))
    expected = devkit_ap(*scene, 3)
    for c in range(3):
        got = m["per_class"][f"class{c}"]
        assert got["ap50"] == pytest.approx(expected[c][0], abs=1e-9, nan_ok=True)
        assert got["ap50_voc07"] == pytest.approx(expected[c][1], abs=1e-9, nan_ok=True)
    assert m["map50"] == pytest.approx(np.nanmean([e[0] for e in expected]), abs=1e-9)
    assert m["map50_voc07"] == pytest.approx(np.nanmean([e[1] for e in expected]), abs=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(0, 6), st.sampled_from([None, 1]))
def test_voc_against_devkit_small_scenes(seed, n_images, decimals):
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, n_images=n_images, num_classes=2, max_gt=3, max_det=6, p_difficult=0.3,
                       integer=True, score_decimals=decimals, extent=40)
    m = evaluate(*scene, names(2))
    for c, (ap, ap07) in enumerate(devkit_ap(*scene, 2)):
        assert m["per_class"][f"class{c}"]["ap50"] == pytest.approx(ap, abs=1e-9, nan_ok=True)
        assert m["per_class"][f"class{c}"]["ap50_voc07"] == pytest.approx(ap07, abs=1e-9, nan_ok=True)


# ---------------------------------------------------------------------------------------- properties


def small_scene(seed: int, n_images: int, unique_scores: bool):
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, n_images=n_images, num_classes=2, max_gt=3, max_det=8, p_difficult=0.2,
                       integer=True, score_decimals=None if unique_scores else 1, extent=60)
    return scene


def all_values(m: dict) -> list[float]:
    values = [m[k] for k in AP_KEYS]
    for entry in m["per_class"].values():
        values += [entry["ap50"], entry["ap50_voc07"], entry["coco_ap"]]
    return values


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_ap_in_unit_interval(seed, n_images):
    m = evaluate(*small_scene(seed, n_images, unique_scores=False), names(2))
    for v in all_values(m):
        assert math.isnan(v) or 0.0 <= v <= 1.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.randoms(use_true_random=False))
def test_permuting_images_changes_nothing(seed, n_images, random):
    scene = small_scene(seed, n_images, unique_scores=True)  # no ties: image order cannot break any
    perm = list(range(n_images))
    random.shuffle(perm)
    shuffled = [[part[i] for i in perm] for part in scene]
    a, b = evaluate(*scene, names(2)), evaluate(*shuffled, names(2))
    np.testing.assert_allclose(all_values(a), all_values(b), rtol=0, atol=1e-12)
    assert a["pr_curves"] == b["pr_curves"]


def append_detection(scene, image: int, box, label: int):
    """The scene with one more detection in ``image``, scored below every other detection."""
    gb, gl, gd, db, ds, dl = (list(part) for part in scene)
    lowest = min((s.min() for s in ds if len(s)), default=1.0) - 0.5
    db[image] = np.concatenate([db[image].reshape(-1, 4), np.asarray([box], float)])
    ds[image] = np.append(ds[image], lowest)
    dl[image] = np.append(dl[image], label)
    return gb, gl, gd, db, ds, dl


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.data())
def test_lowest_scored_detection_never_lowers_ap(seed, n_images, data):
    scene = small_scene(seed, n_images, unique_scores=False)
    image = data.draw(st.integers(0, n_images - 1))
    label = data.draw(st.integers(0, 1))
    objects = scene[0][image]
    if len(objects) and data.draw(st.booleans()):
        box = objects[data.draw(st.integers(0, len(objects) - 1))]  # on an object: TP, FP or ignored
    else:
        box = np.array([500.0, 500, 520, 520])  # far from everything: a FP
    before = evaluate(*scene, names(2))
    after = evaluate(*append_detection(scene, image, box, label), names(2))
    for b, a in zip(all_values(before), all_values(after)):
        assert math.isnan(a) == math.isnan(b)
        assert math.isnan(a) or a >= b - 1e-12
    if box[0] == 500:  # a FP scored last changes no AP at all, and leaves the earlier PR points alone
        np.testing.assert_allclose(all_values(after), all_values(before), rtol=0, atol=1e-12)
        for name, curve in before["pr_curves"].items():
            grown = after["pr_curves"][name]
            for key in ("recall", "precision"):
                assert grown[key][:len(curve[key])] == curve[key]
            if name == f"class{label}" and curve["recall"]:  # one more point, lower precision
                assert len(grown["recall"]) == len(curve["recall"]) + 1
                assert grown["precision"][-1] < curve["precision"][-1] or curve["precision"][-1] == 0


# ----------------------------------------------------------------------------------------------- LAMR


def test_lamr_hand_worked():
    # 8 images, 4 objects (images 0..3); detections by score: TP FP TP FP FP TP then 8 FPs.
    # (fppi, miss rate) after each: (0, .75) (1/8, .75) (1/8, .5) (2/8, .5) (3/8, .5) (3/8, .25),
    # then fppi 4/8 .. 11/8 at .25. References 10^(-2 + k/4):
    #   0.01, 0.018, 0.032, 0.056, 0.1 (< 1/8) -> last point with fppi <= ref is (0, .75): 0.75 five times
    #   0.178 -> (1/8, .5); 0.316 -> (2/8, .5); 0.562 -> (4/8, .25); 1.0 -> (8/8, .25)
    obj = np.array([[0, 0, 20, 40]], float)
    gt = [obj] * 4 + [np.zeros((0, 4))] * 4
    far = [100, 100, 120, 140]
    hits = {0: [(obj[0], 0.99)], 1: [(obj[0], 0.97)], 2: [(obj[0], 0.94)]}
    fps = [0.98, 0.96, 0.95] + [0.5 - 0.01 * k for k in range(8)]
    det_boxes, det_scores = [], []
    for i in range(8):
        rows = [(list(b), s) for b, s in hits.get(i, [])] + ([(far, s) for s in fps[i::8]])
        det_boxes.append(np.array([r[0] for r in rows], float).reshape(-1, 4))
        det_scores.append(np.array([r[1] for r in rows], float))
    labels = [np.zeros(len(b), int) for b in det_boxes]
    m = evaluate(gt, [np.zeros(len(g), int) for g in gt], [np.zeros(len(g), bool) for g in gt],
                            det_boxes, det_scores, labels, ["person"])
    expected = math.exp((5 * math.log(0.75) + 2 * math.log(0.5) + 2 * math.log(0.25)) / 9)
    assert m["lamr"] == pytest.approx(expected, abs=1e-12)
    assert m["map50"] == pytest.approx(1 / 4 + 1 / 4 * 2 / 3 + 1 / 4 * 3 / 6, abs=1e-12)


def test_lamr_function_edges():
    assert log_average_miss_rate(np.zeros(0), np.zeros(0)) == pytest.approx(1.0)  # nothing found
    # everything found before the first FP: miss rate 0, floored at 1e-10
    assert log_average_miss_rate(np.array([0.0]), np.array([0.0])) == pytest.approx(1e-10)


# ----------------------------------------------------------------------------------------------- edges


def test_empty_inputs():
    m = evaluate([], [], [], [], [], [], ["a", "b"])
    assert all(math.isnan(m[k]) for k in AP_KEYS)
    assert (m["num_images"], m["num_gt"], m["num_detections"]) == (0, 0, 0)
    assert set(m["per_class"]) == {"a", "b"} and math.isnan(m["per_class"]["a"]["ap50"])
    single = evaluate([], [], None, [], [], [], ["person"])
    assert math.isnan(single["lamr"])


def test_no_detections_scores_zero_not_nan():
    gt = [np.array([[0, 0, 10, 10], [0, 0, 100, 100]], float), np.zeros((0, 4))]
    m = evaluate(gt, [np.array([0, 0]), np.zeros(0, int)], None, [np.zeros((0, 4))] * 2,
                            [np.zeros(0)] * 2, [np.zeros(0, int)] * 2, ["a"])
    for k in ["map50", "map50_voc07", "coco_ap", "ap50", "ap75", "ap_small", "ap_large"]:
        assert m[k] == 0.0, k
    assert math.isnan(m["ap_medium"])  # no medium object: undefined, not 0
    assert m["lamr"] == 1.0


def test_only_difficult_objects_give_nan():
    gt = [np.array([[0, 0, 10, 10]], float)]
    m = evaluate(gt, [np.array([0])], [np.array([True])], [np.array([[0, 0, 10, 10]], float)],
                            [np.array([0.9])], [np.array([0])], ["a"])
    assert math.isnan(m["map50"]) and math.isnan(m["coco_ap"])
    assert m["num_gt"] == 0 and m["num_difficult"] == 1


def test_input_validation():
    gt = [np.array([[0, 0, 10, 10]], float)]
    ok = ([np.array([0])], [np.array([False])], [np.array([[0, 0, 10, 10]], float)], [np.array([0.9])])
    with pytest.raises(ValueError, match="labels"):
        evaluate(gt, *ok, [np.array([2])], ["a", "b"])
    with pytest.raises(ValueError):
        evaluate(gt, *ok[:3], [np.array([0.9, 0.8])], [np.array([0])], ["a"])
    with pytest.raises(ValueError, match="finite"):
        evaluate(gt, *ok[:3], [np.array([np.nan])], [np.array([0])], ["a"])
    with pytest.raises(ValueError):
        evaluate(gt, *ok, [np.array([0])] * 2, ["a"])
    with pytest.raises(ValueError):
        evaluate(gt * 2, [np.array([0])] * 2, None, *ok[2:], [np.array([0])], ["a"])


def test_pr_curves_are_subsampled():
    rng = np.random.default_rng(4)
    scene = make_scene(rng, n_images=20, num_classes=1, max_det=60, score_decimals=None)
    m = evaluate(*scene, ["a"])
    curve = m["pr_curves"]["a"]
    assert m["per_class"]["a"]["num_det"] > 400
    assert 150 <= len(curve["recall"]) == len(curve["precision"]) <= 200
    assert np.all(np.diff(curve["recall"]) >= 0)
    # the last point is the final recall: the fraction of objects found at all
    assert curve["recall"][-1] == pytest.approx(max(curve["recall"]))


def test_large_scale_runs_quickly():
    """5,000 images, ~15,000 objects, 100 detections each (500,000): must finish in seconds."""
    rng = np.random.default_rng(0)
    n_images, num_classes = 5000, 20
    counts = rng.multinomial(15_000, np.full(n_images, 1 / n_images))
    gb, gl, gd, db, ds, dl = [], [], [], [], [], []
    for m in counts:
        xy = rng.uniform(0, 400, (m, 2))
        g = np.concatenate([xy, xy + rng.uniform(8, 200, (m, 2))], axis=1)
        labels = rng.integers(0, num_classes, m)
        src = rng.integers(0, max(m, 1), 100)
        boxes = (g[src] if m else np.zeros((100, 4))) + rng.normal(0, 6, (100, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        gb.append(g)
        gl.append(labels)
        gd.append(rng.random(m) < 0.1)
        db.append(boxes)
        ds.append(rng.random(100))
        dl.append(labels[src] if m else rng.integers(0, num_classes, 100))
    m = evaluate(gb, gl, gd, db, ds, dl, names(num_classes))
    assert m["num_detections"] == 500_000 and m["num_gt"] + m["num_difficult"] == 15_000
    assert 0 < m["map50"] < 1 and 0 < m["coco_ap"] < m["ap50"]


# ------------------------------------------------------------------------------------------------ export


def test_write_voc_results(tmp_path):
    det = [np.array([[0, 0, 10, 20], [4.5, 5, 9, 9]]), np.zeros((0, 4))]
    paths = write_voc_results(tmp_path, ["000005", "000007"], det, [np.array([0.9, 1e-9]), np.zeros(0)],
                              [np.array([1, 1]), np.zeros(0, int)], ["cat", "dog", "bird"])
    assert [p.name for p in paths] == ["comp4_det_test_cat.txt", "comp4_det_test_dog.txt",
                                       "comp4_det_test_bird.txt"]
    assert paths[0].read_text() == "" and paths[2].read_text() == ""
    lines = paths[1].read_text().splitlines()
    # 1-based inclusive: the box (0, 0, 10, 20) covers pixels 1..10 x 1..20
    assert lines[0].split() == ["000005", "0.9", "1", "1", "10", "20"]
    fields = lines[1].split()
    assert fields[0] == "000005" and float(fields[1]) == 1e-9
    assert [float(v) for v in fields[2:]] == [5.5, 6.0, 9.0, 9.0]


def test_write_coco_json(tmp_path):
    gt_path, det_path = tmp_path / "gt.json", tmp_path / "det.json"
    write_coco_json(gt_path, det_path, ["a", "b"], [(80, 50), (70, 60)],  # (width, height)
                    [np.array([[1, 2, 11, 7]], float), np.zeros((0, 4))], [np.array([1]), np.zeros(0, int)],
                    [np.array([True]), np.zeros(0, bool)],
                    [np.zeros((0, 4)), np.array([[0, 0, 5, 5]], float)], [np.zeros(0), np.array([0.25])],
                    [np.zeros(0, int), np.array([0])], ["cat", "dog"])
    gt = json.loads(gt_path.read_text())
    assert gt["images"] == [{"id": 1, "file_name": "a", "width": 80, "height": 50},
                            {"id": 2, "file_name": "b", "width": 70, "height": 60}]
    assert gt["annotations"] == [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1.0, 2.0, 10.0, 5.0],
                                  "area": 50.0, "iscrowd": 0, "ignore": 1}]
    assert [c["name"] for c in gt["categories"]] == ["cat", "dog"]
    assert json.loads(det_path.read_text()) == [{"image_id": 2, "category_id": 1, "bbox": [0.0, 0.0, 5.0, 5.0],
                                                 "score": 0.25}]
