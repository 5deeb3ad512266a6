"""viola-jones on crop-style data made here: a small first stage, bootstrapped negatives from window-sized
background images, early rejection checked window by window, and a data set with no negatives failing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

from benchsuite.api import Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.ops.boosting import Cascade
from benchsuite.ops.integral import integral_image
from benchsuite.ops.windows import image_pyramid, max_iou, positions_to_boxes, window_positions
from pipelines.classical.viola_jones import (
    ScanState,
    ViolaJonesDetector,
    _Level,
    background_mask,
    background_pick,
    crop_samples,
    scale_reach,
    scan,
)

PARAMS = {"base_size": 16, "base_sizes": None, "max_stages": 4, "detection_rate": 0.99, "max_features": 400,
          "jitter": 1,
          "negatives_per_stage": 120, "val_negatives_per_stage": 60, "max_stumps_per_stage": 12,
          "stage_sizes": (2, 4, 8), "stride": 2,
          "pyramid_step": 1.3, "stages_missed_values": (0, 1), "nms_iou_values": (0.3,), "score_modes": ("last",)}
OBJECT = (32, 16)  # height, width of the drawn object


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Clutter: a random brightness gradient, random bars and noise (grey levels)."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = 90 + rng.uniform(-40, 40) + rng.uniform(-1, 1) * yy + rng.uniform(-1, 1) * xx + rng.normal(0, 12, (h, w))
    for _ in range(rng.integers(2, 2 + h * w // 100)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        a[y : y + rng.integers(2, 16), x : x + rng.integers(2, 8)] += rng.uniform(-50, 50)
    return a


def _object(rng: np.random.Generator) -> np.ndarray:
    """A bright vertical bar with a dark head above it on clutter: ``OBJECT`` pixels."""
    h, w = OBJECT
    a = _noise(rng, h, w)
    a[10:30, 5:11] += 35
    a[2:8, 5:11] -= 30
    return a


def _write(tmp_path, name: str, grey: np.ndarray) -> tuple:
    path = tmp_path / f"{name}.png"
    u8 = np.clip(grey, 0, 255).astype(np.uint8)
    Image.fromarray(np.repeat(u8[:, :, None], 3, axis=2)).save(path)
    return path, u8.shape


def _crop_style(tmp_path, crops: int, backgrounds: int, seed: int) -> DetectionSet:
    """Tight crops (the box is the whole image) and background images, half of them window-sized."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(crops):
        path, (h, w) = _write(tmp_path, f"c{seed}-{i}", _object(rng))
        samples.append(DetectionSample(path.stem, path, w, h, np.array([[0, 0, w, h]]), [0], [False], [False]))
    for i in range(backgrounds):
        size = OBJECT if i % 2 else (72, 60)
        path, (h, w) = _write(tmp_path, f"b{seed}-{i}", _noise(rng, *size))
        samples.append(DetectionSample(path.stem, path, w, h, np.zeros((0, 4)), [], [], []))
    return DetectionSet(samples, ["thing"])


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 96 x 96 clutter image with one object: ``(grey image, its box (4,))``."""
    rng = np.random.default_rng(seed)
    img = _noise(rng, 96, 96)
    y, x = 40, 50
    img[y : y + OBJECT[0], x : x + OBJECT[1]] = _object(rng)
    return np.clip(img, 0, 255).astype(np.uint8), np.array([x, y, x + OBJECT[1], y + OBJECT[0]], float)


@pytest.fixture(scope="module")
def crop_style(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crop-style")
    train, val = _crop_style(tmp, 40, 16, 0), _crop_style(tmp, 8, 4, 1)
    ctx = Context(seed=0)
    return ViolaJonesDetector(**PARAMS).fit(train, val, ctx), ctx


def test_crop_style_trains_a_cascade_with_small_first_stages(crop_style):
    _, ctx = crop_style
    info = ctx.info["classes"]["thing"]
    per_stage = info["features_per_stage"]
    assert 2 <= len(per_stage) <= 4 and info["stage_planned_features"] == [2, 4, 8, 8][: len(per_stage)]
    assert len(info["stage_val_detection_rate"]) == len(info["stage_val_false_positive_rate"]) == len(per_stage)
    assert min(info["stage_val_detection_rate"]) >= 0.99
    # a stage ends at its false-positive target (0.5), else at its planned size, or later when it would
    # reject (almost) nothing yet (at most 12 stumps)
    for n, planned, fpr in zip(per_stage, info["stage_planned_features"], info["stage_val_false_positive_rate"]):
        assert n <= 12 and (fpr <= 0.5 or (n >= planned and fpr <= 0.9) or n == 12)
    assert per_stage[0] < sum(per_stage) / 2  # the first stage is a small part of the cascade
    # the background images are the only negatives: the window-sized ones give one window each
    bg = info["background_windows"]
    assert bg["images"] == 56 and bg["images_with_background"] == 16 and bg["found"] == min(bg["available"], 180)
    found, asked = info["stage_negatives_found"], info["stage_negatives_asked"]
    # one request per stage, and one more when training stopped for want of negatives
    assert len(found) in (len(per_stage), len(per_stage) + 1) and all(f <= a for f, a in zip(found, asked))
    assert found[0] == 180 and (len(found) == len(per_stage) or found[-1] < 10)
    # bootstrapping: every later stage saw only windows that the stages before it passed, a shrinking share
    rates = info["cascade_pass_rate_per_stage"]
    assert len(rates) == len(found) - 1 and all(0 < r <= 1 for r in rates)
    assert rates == sorted(rates, reverse=True)
    assert info["feature_pool"] == 400 and "uniform sample" in info["feature_pool_from"]


def test_finds_the_object_in_a_scene(crop_style):
    det, _ = crop_style
    hits = 0
    for seed in range(5):
        grey, box = _scene(100 + seed)
        out = det.detect(grey)
        if len(out):
            top = out.boxes[np.argmax(out.scores)]
            iw, ih = min(top[2], box[2]) - max(top[0], box[0]), min(top[3], box[3]) - max(top[1], box[1])
            ix = max(0.0, iw) * max(0.0, ih)
            union = (top[2] - top[0]) * (top[3] - top[1]) + (box[2] - box[0]) * (box[3] - box[1]) - ix
            hits += ix / union >= 0.5
    assert hits >= 3  # the best window of a 96 x 96 clutter scene lands on the 32 x 16 object
    stats = det._stats
    assert stats["images"] == 5 and 0 < stats["features_per_window"] < sum(det.models_[0].cascade.stumps_per_stage)


def test_scan_rejects_early_window_by_window(crop_style):
    """The scan's stage counts and feature tally against every window cropped and evaluated stage by stage."""
    det, _ = crop_style
    model = det.models_[0]
    grey, _ = _scene(7)
    levels, n_windows, n_evaluated = scan(grey, model, det.pyramid_step, det.stride, det.min_std)
    corner = model.pool.corner_matrix()
    total_windows, total_evaluated, agree, count = 0, 0, 0, 0
    for level, lv in zip(image_pyramid(grey, model.window, det.pyramid_step, model.start_scale), levels):
        pos = window_positions(*level.image.shape[:2], model.window, det.stride)
        np.testing.assert_array_equal(pos, lv.positions)
        crops = np.stack([level.image[r : r + model.window[0], c : c + model.window[1]] for r, c in pos])
        values = crop_samples(crops, corner, det.min_std)
        passed = np.zeros(len(pos), int)
        for j in range(len(pos)):
            for stage in model.cascade.stages:
                total_evaluated += len(stage)
                if stage.scores(values[stage.features, j : j + 1])[0] < stage.threshold:
                    break
                passed[j] += 1
        total_windows += len(pos)
        agree += int((passed == lv.passed).sum())
        count += len(pos)
        assert np.allclose(lv.ii, integral_image(level.image))
    assert n_windows == total_windows > 100
    assert agree >= 0.99 * count  # float32 sums may flip a window sitting exactly on a threshold
    assert abs(n_evaluated - total_evaluated) <= 0.01 * total_evaluated


def test_no_background_anywhere_fails_with_one_clear_line(tmp_path):
    train, val = _crop_style(tmp_path, 12, 0, 2), _crop_style(tmp_path, 6, 0, 3)
    ctx = Context(seed=0)
    with pytest.raises(EmptyModelError) as err:
        ViolaJonesDetector(**PARAMS).fit(train, val, ctx)
    message = str(err.value)
    assert "\n" not in message and "viola-jones" in message and "0 background windows of 12 training images" in message
    assert ctx.info["classes"]["thing"]["stages"] == 0 and "skipped" in ctx.info["classes"]["thing"]


def test_cascade_prefix_kept_within_the_feature_budget(crop_style):
    """The cost of every prefix, computed from one scan with the whole cascade, against scans with each prefix."""
    det, _ = crop_style
    model = copy.deepcopy(det.models_[0])
    greys = [_scene(200 + s)[0] for s in range(3)]
    full = len(model.cascade)
    det_budget = copy.copy(det)
    det_budget.max_features_per_window = None
    facts = det_budget._truncate_on_val(model, greys)
    costs = facts["val_features_per_window_by_stages"]
    assert facts["stages_trained"] == facts["stages_used"] == full == len(model.cascade) == len(costs) >= 2
    for n in range(1, full + 1):
        prefix = copy.deepcopy(det.models_[0])
        prefix.cascade = Cascade(prefix.cascade.stages[:n])
        prefix.kernels = prefix.kernels[:n]
        scans = [scan(g, prefix, det.pyramid_step, det.stride, det.min_std) for g in greys]
        assert costs[n - 1] == pytest.approx(sum(s[2] for s in scans) / sum(s[1] for s in scans), abs=0.01)
    # a budget between the first stage's cost and the whole cascade's: the longest prefix within it
    budget = (costs[0] + costs[-1]) / 2
    det_budget.max_features_per_window = budget
    facts = det_budget._truncate_on_val(model, greys)
    keep = facts["stages_used"]
    assert len(model.cascade) == len(model.kernels) == keep and 1 <= keep < full
    assert costs[keep - 1] <= budget < costs[keep]
    # a budget below the first stage keeps that stage
    det_budget.max_features_per_window = 0.5
    assert det_budget._truncate_on_val(model, greys)["stages_used"] == 1 and len(model.cascade) == 1


def test_incremental_scan_matches_a_full_scan(crop_style):
    """Bootstrapping's scan with a ScanState (each new stage only on the windows the earlier ones passed)
    keeps exactly the windows a full scan with the whole cascade passes, for the cost of one full scan."""
    det, _ = crop_style
    model = det.models_[0]
    grey, _ = _scene(9)
    full_levels, n_windows, n_evaluated = scan(grey, model, det.pyramid_step, det.stride, det.min_std)
    state, spent = ScanState(), 0
    for n in range(1, len(model.cascade) + 1):
        prefix = copy.deepcopy(model)
        prefix.cascade, prefix.kernels = Cascade(model.cascade.stages[:n]), model.kernels[:n]
        levels, windows, evaluated = scan(grey, prefix, det.pyramid_step, det.stride, det.min_std, state=state)
        assert windows == n_windows and state.stages == n
        assert all((lv.passed == n).sum() + (lv.passed < n).sum() == len(lv.passed) for lv in levels)
        spent += evaluated
    assert spent == n_evaluated
    full = len(model.cascade)
    want = [np.flatnonzero(lv.passed == full) for lv in full_levels]
    got = [state.alive[k] for k in sorted(state.alive)]
    assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    assert state.windows == sum(len(w) for w in want)


def test_scale_reach_counts_objects_per_band(tmp_path):
    """Objects whose window box is under 1/sqrt(2) of the largest scale's window are below reach."""
    heights = [8, 15, 18, 19, 30, 50, 90, 118]
    boxes = np.array([[10, 10, 10 + max(2, h // 3), 10 + h] for h in heights], float)
    sample = DetectionSample("a", tmp_path / "a.png", 200, 120, boxes, [0] * len(heights),
                             [h == 8 for h in heights], [False] * len(heights))
    data = DetectionSet([sample], ["thing"])
    reach = scale_reach((32, 16), 1.0, 0.1, data, data, 0)
    # window boxes are 1.2 x the object's height (tall objects): below reach under 32 / sqrt(2) / 1.2 = 18.9 px
    assert reach["min_object_height_px"] == pytest.approx(32 / np.sqrt(2) / 1.2, abs=0.1)
    brute_below = [h for h in heights if h != 8 and 1.2 * h < 32 / np.sqrt(2)]
    assert sum(reach["train"]["below_reach"].values()) == len(brute_below) == 2
    assert reach["train"]["below_reach"]["<16"] == 1 and reach["train"]["below_reach"]["16-32"] == 1  # 15 and 18 px
    # above reach: window box over sqrt(2) x the image's height (120 px): 1.2 * 118 > 169.7 is false
    assert sum(reach["train"]["above_reach"].values()) == 0
    assert list(reach["train"]["objects"].values()) == [1, 3, 1, 2, 0, 0] and reach["train"]["difficult"]["<16"] == 1


def test_fit_info_states_budgets_and_stage_costs(crop_style):
    _, ctx = crop_style
    info = ctx.info["classes"]["thing"]
    assert info["budgets"]["negatives_per_stage"] == 120 and info["budgets"]["positives"] == 3000
    assert sum(info["reach"]["train"]["objects"].values()) > 0
    chosen = ctx.info["chosen_on_val"]["thing"]
    costs, shares = chosen["val_cost_per_stage"], chosen["val_share_reaching_stage"]
    assert shares[0] == 1.0 and shares == sorted(shares, reverse=True)
    assert np.cumsum(costs)[-1] == pytest.approx(chosen["val_features_per_window_by_stages"][-1], abs=0.02)


def test_first_stage_by_scanning_when_windows_are_too_many_to_count(tmp_path):
    """Above ``max_counted_windows`` stage 1's negatives come from random windows of images in random order
    (window-sized background images still give their one window), and fit_info says they were not counted."""
    train, val = _crop_style(tmp_path, 30, 16, 4), _crop_style(tmp_path, 8, 4, 5)
    ctx = Context(seed=0)
    det = ViolaJonesDetector(**{**PARAMS, "max_stages": 2, "max_counted_windows": 0}).fit(train, val, ctx)
    info = ctx.info["classes"]["thing"]
    bg = info["background_windows"]
    assert bg["counted"] is False and bg["grid_windows"] > 0 and bg["found"] == info["stage_negatives_found"][0]
    assert 10 <= bg["found"] <= 180 and len(det.models_[0].cascade) >= 1


def _windows_and_objects(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Window boxes of three sizes on a grid over a 200 x 200 image, and objects of very different sizes."""
    rng = np.random.default_rng(seed)
    boxes = []
    for side in (12, 30, 80):
        xy = np.stack(np.meshgrid(np.arange(0, 200 - side, 3), np.arange(0, 200 - side, 3)), -1).reshape(-1, 2)
        boxes.append(np.concatenate([xy, xy + side], 1).astype(float))
    x, y = rng.uniform(0, 150, 12), rng.uniform(0, 150, 12)
    s = np.exp(rng.uniform(np.log(5), np.log(120), 12))
    return np.concatenate(boxes), np.stack([x, y, x + s, y + s * rng.uniform(0.7, 1.4, 12)], 1)


def test_background_mask_is_the_full_overlap_test_in_blocks():
    """The blocked test with its area filter flags exactly the windows the one-matrix IoU test flags."""
    boxes, avoid = _windows_and_objects(0)
    want = max_iou(boxes, avoid) < 0.3
    assert 0 < (~want).sum() < len(want)
    for block in (1, 50, 10**9):
        np.testing.assert_array_equal(background_mask(boxes, avoid, 0.3, block_pairs=block), want)
    assert background_mask(boxes, np.zeros((0, 4)), 0.3).all()


def _levels_with_objects(crowd: int) -> tuple[list, list, np.ndarray]:
    """One 1:1 level of 8 x 8 windows on a 4-pixel grid over 100 x 100 pixels, ``crowd`` objects covering most of
    it, every window passing: ``(levels, where, avoid)``."""
    pos = window_positions(100, 100, (8, 8), 4)
    level = _Level(1.0, 1.0, np.zeros((1, 1)), pos, np.ones(len(pos)), np.ones(len(pos), int), np.zeros(len(pos)),
                   np.zeros(len(pos)))
    xy = np.stack(np.meshgrid(np.arange(crowd) * 8.0, np.arange(crowd) * 8.0), -1).reshape(-1, 2)
    return [level], [(0, np.arange(len(pos)))], np.concatenate([xy, xy + 8], 1)


def test_background_pick_gives_every_background_window_when_they_are_few():
    """Most passing windows overlap an object: the pick is every background window (none starved by a
    cut before the overlap test), and with a smaller count a uniform choice among them only."""
    levels, where, avoid = _levels_with_objects(11)
    boxes = positions_to_boxes(levels[0].positions, (8, 8), 1.0, 1.0)
    background = np.flatnonzero(max_iou(boxes, avoid) < 0.3)
    assert 0 < len(background) < len(boxes) // 2
    rng = np.random.default_rng(0)
    got = background_pick(where, levels, (8, 8), avoid, 0.3, len(background) + 5, rng)
    np.testing.assert_array_equal(got[0][1], background)
    seen = np.zeros(len(boxes), int)
    for _ in range(400):
        part = background_pick(where, levels, (8, 8), avoid, 0.3, 10, rng)[0][1]
        assert len(part) == 10 and np.isin(part, background).all()
        seen[part] += 1
    expected = 400 * 10 / len(background)  # each background window's expected picks under a uniform choice
    assert seen[background].min() > 0.3 * expected and seen[background].max() < 2.0 * expected


def test_bootstrap_with_the_blocked_overlap_test_finds_as_many_negatives(tmp_path, monkeypatch):
    """With every scan above the overlap test's pair budget (blocked test, then a pick among the background
    windows), bootstrapping takes from every image as many negatives as the one-matrix test gives: the
    images are visited in the same order, so the counts per stage agree."""
    import pipelines.classical.viola_jones as vj

    train, val = _crop_style(tmp_path, 30, 16, 6), _crop_style(tmp_path, 8, 4, 7)
    found = []
    for pairs in (vj.MAX_OVERLAP_PAIRS, 0):
        monkeypatch.setattr(vj, "MAX_OVERLAP_PAIRS", pairs)
        ctx = Context(seed=0)
        vj.ViolaJonesDetector(**{**PARAMS, "max_stages": 2}).fit(train, val, ctx)
        found.append(ctx.info["classes"]["thing"]["stage_negatives_found"])
    assert len(found[0]) == 2 and found[0][1] > 0 and found[0] == found[1]
