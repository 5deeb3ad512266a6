"""``viola-jones``: Haar features, AdaBoost and an attentional cascade per class (Viola & Jones 2001/2004).

Training, for every class with training boxes:

1. the window shape comes from the class's boxes (:func:`benchsuite.ops.windows.choose_window`: tall for
   people, wide for cars, square for signs) at about ``base_size`` squared pixels, and the range of
   pyramid scales from the sizes of those boxes (no level is scanned for objects far smaller than the
   smallest training object);
2. positives are grey-scale crops of the class's boxes with mirror images and jittered copies; the Haar
   pool is ``max_features`` features drawn uniformly from the full enumeration of the window (every two-,
   three- and four-rectangle feature at every size and position, :func:`benchsuite.ops.haar.
   sample_haar_features`); feature values are divided by the window's pixel standard deviation
   (variance normalisation) and evaluated for all samples at once as one sparse product on the stacked
   window integral images (:mod:`benchsuite.ops.haar`);
3. an attentional cascade (:func:`benchsuite.ops.boosting.train_cascade`): stages of discrete AdaBoost
   stumps whose sizes follow ``stage_sizes`` (a first stage of two features, then 5, 10, 20, 40, ...),
   each thresholded to keep ``detection_rate`` of the validation positives (the val split's objects) and
   grown until it passes at most ``false_positive_rate`` of fresh validation negatives or reaches its
   size. The negatives come from :class:`benchsuite.ops.negatives.NegativeSource`: every background window
   of the training images at every scale and position the detector scans (other classes' objects and
   background-only images included, a window-sized background image as one window); stage 1 gets a random
   sample of them, every later stage random windows among those the cascade so far passes (bootstrapping,
   by scanning the training images). When the images hold fewer than asked, the stage uses what there is
   (``fit_info`` says how many); a class whose cascade gets no stage is dropped, and when no class has one
   the fit fails with :class:`benchsuite.errors.EmptyModelError` naming the cause.

Detection scans a grey-scale image pyramid with early rejection: every stage is evaluated, as gathers
from the level's integral image, only on the windows the previous stages passed. A window's score is the
number of stages it passed plus its normalised margin in the last stage it reached, so windows that fail
only the last stages still rank (above every window that fails earlier): this gives precision-recall
curves instead of one operating point. Overlapping windows are suppressed by NMS, and each kept window may
be replaced by the mean of the windows it suppressed (the paper's merging of detections). How many final
stages a detection may miss, the NMS IoU and the merging (none; the mean box; the mean box scored up by
the log of the group's size, its "neighbours") are chosen on val (AP50 per class). So is the base window:
with several ``base_sizes`` a cascade is trained per candidate size and class (one recorded grid per class: base
size x the settings above); another size replaces the first only when its val AP50 gain over the first's best is
clear (the paired bootstrap interval above zero, :meth:`ViolaJonesDetector._choose_class_on_val`).
``fit_info.detect_stats.features_per_window`` is the average number of Haar features evaluated per scanned
window (and class) over every image the job detected on, the cost the attentional cascade exists to cut
(Viola & Jones report about 10 for their face detector); ``features_per_window_target`` beside it is the
budget the cascade was cut to on val (``max_features_per_window``, 40: at 15 Penn-Fudan keeps 4 of 18 stages and
its test AP50 falls from 0.43 to 0.17, so issue 28.3's target is not met there yet), and ``chosen_on_val.<class>`` gives
each stage's share of the val windows reaching it and its cost.

Bounded, visible training: every budget (positives, negatives per stage and per image, images per stage,
stages, stumps, pool) is recorded in ``fit_info.classes.<class>.budgets``; bootstrapping re-scans only what
the new stage must decide (:class:`ScanState`); every phase logs a progress line at least every 30 s of its
work. Scale reach: the largest scale upsamples up to ``max_upscale`` so the smallest training objects fill
the window; ``fit_info.classes.<class>.reach`` counts the train and val objects per height band that lie
below or above the pyramid's reach (:func:`scale_reach`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.metrics.bootstrap import map50_gain_resamples, percentile_interval
from benchsuite.metrics.detection import Matches, match, score_detections
from benchsuite.ops.boosting import Cascade, Heartbeat, train_cascade
from benchsuite.ops.boosting import NegativeSource as NegativeSourceFn
from benchsuite.ops.boxes import merge_suppressed, nms
from benchsuite.ops.haar import HaarFeatures, count_haar_features, haar_values, sample_haar_features
from benchsuite.ops.integral import integral_image, window_integrals, window_mean_std
from benchsuite.ops.negatives import NegativeSource
from benchsuite.ops.size_bands import band_counts, reach_counts
from benchsuite.ops.windows import (
    choose_window,
    crop_windows,
    image_pyramid,
    level_size,
    max_iou,
    object_boxes,
    positions_to_boxes,
    positive_crops,
    pyramid_scales,
    window_boxes,
    window_positions,
)

log = logging.getLogger(__name__)

#: windows per gather block when a stage is evaluated on a pyramid level
GATHER_BLOCK = 8192
#: bootstrap resamples of the paired val AP50 gain that lets another base size replace the first
BASE_SIZE_RESAMPLES = 1000
#: how a detection's score ranks windows that passed the same number of stages (see :func:`candidates`)
SCORE_MODES = ("last", "mean")
#: how NMS's kept windows become detections (see :func:`suppress`)
MERGE_MODES = ("none", "mean", "mean+votes")
#: a stage needs at least this many negatives (training and validation together)
MIN_NEGATIVES = 10


def to_grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 grey-scale of an ``(H, W, 3)`` RGB, ``(H, W, 1)`` or ``(H, W)`` image (ITU-R 601 luma)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.ascontiguousarray(a if a.dtype == np.uint8 else np.clip(np.rint(a), 0, 255).astype(np.uint8))
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb = np.ascontiguousarray(a[:, :, :3]).astype(np.uint8, copy=False)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"viola-jones: expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {a.shape}")


def crop_samples(crops: np.ndarray, corner_matrix: Any, min_std: float) -> np.ndarray:
    """``(F, N)`` float32 variance-normalised pool values of ``(N, h, w)`` grey crops."""
    if not len(crops):
        return np.zeros((corner_matrix.shape[0], 0), np.float32)
    ii = integral_image(crops)
    flat = ii.reshape(len(crops), -1).astype(np.float32)
    std = np.maximum(crops.reshape(len(crops), -1).astype(np.float64).std(axis=1), min_std)
    return haar_values(corner_matrix, flat, std.astype(np.float32))


@dataclass
class _StageKernel:
    """One stage's features as corner offsets for gathering from a level's integral image."""

    dy: np.ndarray
    dx: np.ndarray
    weights: np.ndarray
    starts: np.ndarray  # (T,) segment starts into the corner arrays


def _stage_kernels(pool: HaarFeatures, cascade: Cascade) -> list[_StageKernel]:
    out = []
    for stage in cascade.stages:
        dy, dx, wts, starts = pool.subset(stage.features).corners()
        out.append(_StageKernel(dy, dx, wts, starts[:-1]))
    return out


@dataclass
class _Level:
    """A scanned pyramid level: its integral image, window positions, their std and cascade results."""

    scale_y: float
    scale_x: float
    ii: np.ndarray
    positions: np.ndarray  # (M, 2) row, col
    std: np.ndarray  # (M,)
    passed: np.ndarray  # (M,) stages passed
    margin: np.ndarray  # (M,) margin in the last stage reached
    margin_sum: np.ndarray  # (M,) sum of the margins of the stages reached


@dataclass
class ClassModel:
    """Everything detection needs for one class."""

    label: int
    window: tuple[int, int]
    pool: HaarFeatures
    cascade: Cascade
    kernels: list[_StageKernel]
    start_scale: float
    stages_missed: int = 0
    nms_iou: float = 0.3
    score_mode: str = "last"
    merge: str = "none"
    base_size: int = 0  # the base size its window was made at (ViolaJonesDetector.base_sizes)


@dataclass
class ScanState:
    """What the cascade has already decided about one image's windows, kept between scans of the same
    image while the cascade grows (bootstrapping scans the training images again after every stage): a
    window an earlier stage rejected stays rejected, so a later scan runs only the new stages, and only on
    the windows every earlier stage passed.

    Attributes:
        stages: how many stages of the cascade the windows below have passed.
        alive: pyramid level index -> ``(M,)`` int32 indices into that level's row-major window grid of the
            windows that passed all ``stages`` (4 bytes per surviving window).
    """

    stages: int = 0
    alive: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def windows(self) -> int:
        """Windows still alive."""
        return int(sum(len(a) for a in self.alive.values()))


def grid_positions(height: int, width: int, window: tuple[int, int], stride: int, index: np.ndarray | None = None
                   ) -> np.ndarray:
    """``(K, 2)`` int64 top-left ``(row, col)`` of the windows of a level's row-major grid at ``stride``
    (:func:`benchsuite.ops.windows.window_positions`), or of the grid cells ``index`` only."""
    if index is None:
        return window_positions(height, width, window, stride)
    nx = max((width - window[1]) // stride + 1, 0)
    i = np.asarray(index, np.int64)
    return np.stack([(i // max(nx, 1)) * stride, (i % max(nx, 1)) * stride], axis=1)


def grid_windows(shapes: list[tuple[int, ...]], window: tuple[int, int], start_scale: float, step: float,
                 stride: int) -> int:
    """How many windows the pyramids of images of these shapes hold at ``stride`` (no pixels touched)."""
    total = 0
    for shape in shapes:
        h, w = shape[:2]
        for sc in pyramid_scales(h, w, window, step, start_scale):
            lh, lw = level_size(h, w, sc)
            total += max((lh - window[0]) // stride + 1, 0) * max((lw - window[1]) // stride + 1, 0)
    return total


def scan(grey: np.ndarray, model: ClassModel, pyramid_step: float, stride: int, min_std: float,
         max_levels: int | None = None, state: ScanState | None = None,
         beat: Callable[[], None] | None = None) -> tuple[list[_Level], int, int]:
    """Run ``model``'s cascade over every window of a grey image pyramid, with early rejection.

    With ``state`` (:class:`ScanState`) only the stages after ``state.stages`` run, on the windows it holds
    alive, and ``state`` is brought up to the whole cascade; the levels returned then hold those windows
    only. ``beat`` is called after every level (progress lines). Returns ``(levels, windows,
    features_evaluated)`` (``windows`` counts every window of the grid).
    """
    wh, ww = model.window
    first = state.stages if state is not None else 0
    rest = Cascade(model.cascade.stages[first:])
    levels: list[_Level] = []
    alive: dict[int, np.ndarray] = {}
    n_windows = 0
    n_evaluated = 0
    for li, level in enumerate(image_pyramid(grey, model.window, pyramid_step, model.start_scale, max_levels)):
        img = level.image
        grid = window_positions(img.shape[0], img.shape[1], model.window, stride) if first == 0 else None
        total = len(grid) if grid is not None else \
            max((img.shape[0] - wh) // stride + 1, 0) * max((img.shape[1] - ww) // stride + 1, 0)
        if not total:
            continue
        n_windows += total
        index = None if first == 0 else state.alive.get(li, np.zeros(0, np.int32))  # type: ignore[union-attr]
        if index is not None and not len(index):
            alive[li] = index
            continue
        pos = grid if index is None else grid_positions(img.shape[0], img.shape[1], model.window, stride, index)
        ii = integral_image(img)
        ii2 = integral_image(img, squared=True)
        _, std = window_mean_std(ii, ii2, pos[:, 0], pos[:, 1], wh, ww)
        std = np.maximum(std, min_std)
        row = ii.shape[1]
        base = pos[:, 0] * row + pos[:, 1]
        flat = ii.reshape(-1)

        def values(i: int, samples: np.ndarray, base=base, flat=flat, std=std, row=row) -> np.ndarray:
            k = model.kernels[first + i]
            off = k.dy * row + k.dx
            out = np.empty((len(k.starts), len(samples)))
            for s in range(0, len(samples), GATHER_BLOCK):
                idx = samples[s : s + GATHER_BLOCK]
                g = flat[base[idx][:, None] + off[None, :]] * k.weights[None, :]
                out[:, s : s + GATHER_BLOCK] = np.add.reduceat(g, k.starts, axis=1).T / std[idx][None, :]
            return out

        passed, margin, evaluated, margin_sum = rest.evaluate(values, len(pos))
        passed += first
        n_evaluated += evaluated
        if state is not None:
            ok = passed == len(model.cascade)
            alive[li] = (np.flatnonzero(ok) if index is None else index[ok]).astype(np.int32)
        levels.append(_Level(level.scale_y, level.scale_x, ii, pos, std, passed, margin, margin_sum))
        if beat is not None:
            beat()
    if state is not None:
        state.stages, state.alive = len(model.cascade), alive
    return levels, n_windows, n_evaluated


def candidates(grey: np.ndarray, model: ClassModel, pyramid_step: float, stride: int, min_std: float,
               context: float, stages_missed: int, max_candidates: int, score_mode: str = "last"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Windows of one class before NMS: ``(boxes (K, 4), scores (K,), stages_passed (K,), windows, features)``.

    Windows that passed at least ``len(cascade) - stages_missed`` stages are kept (the ``max_candidates``
    best), mapped back to object boxes in image pixels and scored ``stages passed + (1 + m) / 2`` where
    ``m`` is the margin in the last stage reached (``score_mode="last"``) or the mean margin over the
    stages reached (``"mean"``, a soft-cascade score): a window that passed more stages always ranks
    above one that passed fewer.
    """
    levels, n_windows, n_eval = scan(grey, model, pyramid_step, stride, min_std)
    b, s, p = level_candidates(levels, model, context, stages_missed, max_candidates, score_mode)
    return b, s, p, n_windows, n_eval


def level_candidates(levels: list[_Level], model: ClassModel, context: float, stages_missed: int,
                     max_candidates: int, score_mode: str = "last") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`candidates` from the levels of one :func:`scan`: ``(boxes (K, 4), scores (K,), stages_passed (K,))``
    (one scan serves every score mode)."""
    if score_mode not in SCORE_MODES:
        raise ValueError(f"viola-jones: score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
    need = max(len(model.cascade) - stages_missed, 1)
    boxes, scores, passed = [], [], []
    for lv in levels:
        keep = lv.passed >= need
        if not keep.any():
            continue
        wb = positions_to_boxes(lv.positions[keep], model.window, lv.scale_y, lv.scale_x)
        boxes.append(object_boxes(wb, context))
        if score_mode == "last":
            m = lv.margin[keep]
        else:
            m = lv.margin_sum[keep] / np.minimum(lv.passed[keep] + 1, len(model.cascade))
        scores.append(lv.passed[keep] + 0.5 * (1.0 + m))
        passed.append(lv.passed[keep])
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    b, s, p = np.concatenate(boxes), np.concatenate(scores), np.concatenate(passed)
    if len(s) > max_candidates:
        top = np.argpartition(-s, max_candidates - 1)[:max_candidates]
        b, s, p = b[top], s[top], p[top]
    return b, s, p


def scale_reach(window: tuple[int, int], start_scale: float, context: float, train: DetectionSet,
                val: DetectionSet, k: int) -> dict[str, Any]:
    """Which objects of class ``k`` the scanned pyramid can reach, counted per size band (object height,
    :func:`benchsuite.ops.size_bands.reach_counts`) and split.

    At the largest scale (``start_scale``, upsampling when above 1) a window covers ``window[0] /
    start_scale`` image pixels of height; at the smallest, the whole image. An object whose window box
    (:func:`benchsuite.ops.windows.window_boxes`) is under ``1 / sqrt(2)`` of the first, or over ``sqrt(2)``
    times the second, has no scanned window within half its area (IoU 0.5 cannot be met): it is *below*
    (*above*) the detector's reach. Difficult objects are counted apart (they are not scored).
    """
    wh, ww = window
    smallest = wh / start_scale / np.sqrt(2.0)  # window-box heights below this are out of reach
    out: dict[str, Any] = {"min_object_height_px": round(float(smallest / (1 + 2 * context)), 1)}
    for split, data in (("train", train), ("val", val)):
        boxes, labels, difficult, _, image = data.all_objects()
        keep = labels == k
        if not keep.any():
            continue
        b, diff, img = boxes[keep], difficult[keep], image[keep]
        h = b[:, 3] - b[:, 1]
        wb = window_boxes(b, window, context)
        wb_h = wb[:, 3] - wb[:, 1]
        sizes = np.array([(data.samples[i].height, data.samples[i].width) for i in img], np.float64)
        largest = np.minimum(sizes[:, 0], sizes[:, 1] * wh / ww) * np.sqrt(2.0)
        scored = ~diff
        out[split] = {**reach_counts(h[scored], below_reach=(wb_h < smallest)[scored],
                                     above_reach=(wb_h > largest)[scored]),
                      "difficult": band_counts(h[diff])}
    return out


#: a bootstrap scan hands the negative source all the windows the cascade passes when their number times the
#: image's avoided boxes is at most this (the source tests their overlap as one IoU matrix); above it
#: :func:`background_pick` tests the overlap in blocks first
MAX_OVERLAP_PAIRS = 4_000_000


def background_mask(boxes: np.ndarray, avoid: np.ndarray, max_overlap: float,
                    block_pairs: int = MAX_OVERLAP_PAIRS) -> np.ndarray:
    """``(N,)`` bool: which of ``boxes`` ``(N, 4)`` have IoU below ``max_overlap`` with every box of ``avoid``
    ``(M, 4)`` (the test of :func:`benchsuite.ops.windows.hard_negatives`), in memory bounded by
    ``block_pairs`` box pairs at a time. Only avoided boxes whose area lies within ``[max_overlap, 1 /
    max_overlap]`` times that of some box are compared: the IoU of two boxes is at most the ratio of their
    areas, so the others cannot reach ``max_overlap``."""
    b, a = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(avoid, np.float64).reshape(-1, 4)
    out = np.ones(len(b), bool)
    if not len(b) or not len(a):
        return out
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    a = a[(area_a >= max_overlap * area_b.min()) & (area_a * max_overlap <= area_b.max())]
    if not len(a):
        return out
    step = max(1, block_pairs // len(a))
    for s in range(0, len(b), step):
        out[s : s + step] = max_iou(b[s : s + step], a) < max_overlap
    return out


def background_pick(where: list[tuple[int, np.ndarray]], levels: list[_Level], window: tuple[int, int],
                    avoid: np.ndarray, max_overlap: float, count: int, rng: np.random.Generator
                    ) -> list[tuple[int, np.ndarray]]:
    """Of the windows ``where`` (pairs of a level index into ``levels`` and indices into that level's
    windows), a uniform random ``count`` of those that are background (:func:`background_mask`), all of
    them when fewer; returned in the same form, levels without windows left out."""
    masks = [background_mask(positions_to_boxes(levels[li].positions[ok], window, levels[li].scale_y,
                                                levels[li].scale_x), avoid, max_overlap) for li, ok in where]
    kept = [(li, ok[m]) for (li, ok), m in zip(where, masks, strict=True)]
    total = sum(len(ok) for _, ok in kept)
    if total > count:
        pick = np.zeros(total, bool)
        pick[rng.choice(total, count, replace=False)] = True
        cuts = np.cumsum([0] + [len(ok) for _, ok in kept])
        kept = [(li, ok[pick[a:b]]) for (li, ok), a, b in zip(kept, cuts[:-1], cuts[1:], strict=True)]
    return [(li, ok) for li, ok in kept if len(ok)]


def suppress(boxes: np.ndarray, scores: np.ndarray, nms_iou: float, max_detections: int, merge: str = "none"
             ) -> tuple[np.ndarray, np.ndarray]:
    """NMS at ``nms_iou``: ``(boxes (K, 4), scores (K,))`` of the kept windows, at most ``max_detections``, made
    detections as ``merge`` says (:func:`kept_detections`)."""
    return kept_detections(boxes, scores, nms(boxes, scores, nms_iou)[:max_detections], nms_iou, merge)


def kept_detections(boxes: np.ndarray, scores: np.ndarray, keep: np.ndarray, nms_iou: float, merge: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (K, 4), scores (K,))`` of the windows ``keep`` (NMS at ``nms_iou`` kept them, best first).

    ``merge``: ``"none"`` keeps each kept window as it is; ``"mean"`` replaces it by the mean of its group (the
    windows it suppressed, the paper's merging of overlapping detections, :func:`benchsuite.ops.boxes.
    merge_suppressed`); ``"mean+votes"`` also adds ``log(group size)`` to its score, so that an object many
    windows fired on ranks above a lone window (OpenCV's cascade grouping counts these neighbours).
    """
    if merge not in MERGE_MODES:
        raise ValueError(f"viola-jones: merge must be one of {MERGE_MODES}, got {merge!r}")
    if merge == "none":
        return boxes[keep], scores[keep]
    merged, counts = merge_suppressed(boxes, keep, nms_iou, return_counts=True)
    return merged, scores[keep] + (np.log(counts) if merge == "mean+votes" else 0.0)


class ViolaJonesDetector(Detector):
    """A Viola-Jones cascade of boosted Haar-feature stumps per class, trained by the suite.

    Parameters:
        base_size: the window holds about ``base_size ** 2`` pixels (its shape follows the class's boxes).
        base_sizes: candidate base sizes chosen on val per class (a cascade is trained for each; the first is
            kept unless another's val gain is clear, :meth:`_choose_class_on_val`); None: ``base_size`` only.
            The quick default (32, 48): 32 as before, and 48, more detail for large objects at a coarser stride.
            The paper's 24 is not among them: with the stride a twelfth of the window's narrow side it scans every
            pixel of the upsampled faces variant, and bootstrapping its cascade alone took longer than both of these.
        window_multiple, min_window_side: window sides are multiples of this, at least this.
        context: margin around the object inside the window, as a fraction of the object's extent per side.
        max_features: the Haar pool: this many features drawn uniformly from the full enumeration of the
            window (every kind, size and position at one-pixel steps).
        jitter: jittered copies per training object (plus mirror images of all).
        max_positives: cap on training positives per class (random subset).
        max_stages, detection_rate, false_positive_rate, max_stumps_per_stage, target_false_positive_rate:
            the cascade (per-stage targets on validation samples, and when to stop adding stages).
        negatives_per_stage, val_negatives_per_stage: fresh negatives per stage (training / validation).
        pyramid_step, stride: detection pyramid ratio and window stride in level pixels. The defaults scan
            densely (1.1; None: a twelfth of the window's narrow side, :meth:`scan_stride`, one pixel for
            Penn-Fudan's 20-pixel-wide window): with the cascade a window costs a few features, and a coarse
            grid misses the IoU 0.5 overlap on thin windows (Penn-Fudan val AP50 0.38 with 1.2 / 2 px and a
            24-pixel base, 0.50 with 1.1 / 1 px and a 32-pixel base).
        scale_slack: the largest scale scanned lets the smallest training object (times this) fill the
            window; ``max_upscale`` caps it (objects smaller than the window need upsampling).
        min_std: floor of the window standard deviation in variance normalisation (grey levels).
        stages_missed_values, nms_iou_values, score_modes: candidates chosen on val by AP50 per class
            (score modes in :func:`candidates`).
        max_candidates: best-scored windows per class and image that go into NMS.
        max_detections: per class and image, after NMS.
        boosting: ``"discrete"`` (Viola & Jones' AdaBoost) or ``"real"`` (confidence-rated stumps).
        stage_sizes: the attentional schedule: stage ``i`` has at most ``stage_sizes[i]`` stumps (the last
            entry repeats; never more than ``max_stumps_per_stage``), so the first stages are a few
            features that reject the easy windows cheaply; None: every stage up to ``max_stumps_per_stage``.
        positive_weight: the positives' initial weight over the negatives' in each stage's boosting
            (asymmetric AdaBoost; above 1, a stage's few stumps favour keeping positives).
        max_features_per_window: the cascade's budget, the paper's regime: after training, only the longest
            prefix of stages whose average cost on the val images is at most this many Haar features per
            window is kept (at least one stage); None keeps every stage. ``fit_info`` records every prefix's
            val cost and each stage's share of it.
        stage_size_false_positive_rate: a stage that reached its planned size (``stage_sizes``) stops once it
            passes at most this share of its val negatives (:func:`benchsuite.ops.boosting.train_cascade`);
            lower makes the early stages larger and more rejecting.
        max_counted_windows: stage 1's negatives are a sample of *all* background windows of the training
            images (counted exactly, every level with the same chance) while the images' pyramids hold at most
            this many windows; above it (thousands of large images, upsampled) counting every window's overlap
            costs minutes, and stage 1 instead takes random windows of images in random order (the bootstrap
            budget per image, every level with the same chance); ``fit_info`` says which.
        images_per_stage: a stage's negatives come from at least this many training images in random order
            (:meth:`mined_per_image`: at most ``count / images_per_stage`` per image, or twice an even share
            over all images when that is more).

    Budgets (what bounds training, recorded in ``fit_info.classes.<class>.budgets``): ``max_positives``
    crops (with ``jitter`` copies and mirrors before the cap); per stage ``negatives_per_stage`` +
    ``val_negatives_per_stage`` negatives, at most :meth:`mined_per_image` from one image (a uniform random
    choice among the image's background windows that the cascade passes; when they are many, their overlap
    with the objects is tested in blocks, :data:`MAX_OVERLAP_PAIRS`, :func:`background_pick`); at most
    ``max_stages`` stages of at most ``max_stumps_per_stage`` stumps over a pool of ``max_features``. A
    re-scan of a training image runs only the new stage on the windows the earlier ones passed
    (:class:`ScanState`). Every phase logs a progress line at least every 30 s of its work (stage k of n,
    images and windows scanned, stumps with val detection and false-positive rates, val scans).
        negative_stride: the grid (level pixels) of the background windows negatives are drawn and
            bootstrapped from; finer than the detection stride, it gives data sets with few background images
            more (shifted) negatives; None: the detection stride.
        negative_overlap: a window is background for a class when its IoU with every box of the class
            (difficult ones included) is below this.
        merge_values: candidates chosen on val from :data:`MERGE_MODES` (see :func:`kept_detections`): NMS's best
            window as it is, the mean of the windows it suppressed (the paper's merging of overlapping
            detections), or that mean scored up by the log of their number.
    """

    id: ClassVar[str] = "viola-jones"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "Haar features + AdaBoost attentional cascade per class (Viola & Jones)"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"base_size": 24, "base_sizes": None, "max_stages": 6, "max_features": 1000, "jitter": 1,
                  "negatives_per_stage": 300, "val_negatives_per_stage": 150, "max_stumps_per_stage": 15, "stride": 4,
                  "pyramid_step": 1.5, "max_upscale": 1.0, "stages_missed_values": (0, 1), "nms_iou_values": (0.3,),
                  "score_modes": ("last",)},
        "full": {"max_stages": 16, "max_features": 16000, "negatives_per_stage": 4000,
                 "val_negatives_per_stage": 2000, "max_stumps_per_stage": 100, "pyramid_step": 1.1},
    }

    def __init__(self, base_size: int = 32, base_sizes: tuple[int, ...] | None = (32, 48), window_multiple: int = 2,
                 min_window_side: int = 8, context: float = 0.1,
                 max_features: int = 8000, jitter: int = 2, max_positives: int = 3000, max_stages: int = 18,
                 detection_rate: float = 0.92, false_positive_rate: float = 0.5, max_stumps_per_stage: int = 60,
                 target_false_positive_rate: float = 1e-5, negatives_per_stage: int = 1500,
                 val_negatives_per_stage: int = 750, pyramid_step: float = 1.1, stride: int | None = None,
                 scale_slack: float = 0.8, max_upscale: float = 2.0, min_std: float = 1.0,
                 stages_missed_values: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
                 nms_iou_values: tuple[float, ...] = (0.3, 0.5),
                 score_modes: tuple[str, ...] = SCORE_MODES, max_candidates: int = 4000, max_detections: int = 100,
                 boosting: str = "discrete", stage_sizes: tuple[int, ...] | None = (2, 4, 6, 8, 10, 12, 15, 20, 25, 30),
                 negative_overlap: float = 0.3, positive_weight: float = 1.0,
                 max_features_per_window: float | None = 40.0, negative_stride: int | None = None,
                 merge_values: tuple[str, ...] = MERGE_MODES, stage_size_false_positive_rate: float = 0.9,
                 max_counted_windows: int = 5_000_000, images_per_stage: int = 40):
        self.base_size = base_size
        self.base_sizes = base_sizes
        self.window_multiple = window_multiple
        self.min_window_side = min_window_side
        self.context = context
        self.max_features = max_features
        self.jitter = jitter
        self.max_positives = max_positives
        self.max_stages = max_stages
        self.detection_rate = detection_rate
        self.false_positive_rate = false_positive_rate
        self.max_stumps_per_stage = max_stumps_per_stage
        self.target_false_positive_rate = target_false_positive_rate
        self.negatives_per_stage = negatives_per_stage
        self.val_negatives_per_stage = val_negatives_per_stage
        self.pyramid_step = pyramid_step
        self.stride = stride
        self.scale_slack = scale_slack
        self.max_upscale = max_upscale
        self.min_std = min_std
        self.stages_missed_values = stages_missed_values
        self.nms_iou_values = nms_iou_values
        self.score_modes = score_modes
        self.max_candidates = max_candidates
        self.max_detections = max_detections
        self.boosting = boosting
        self.stage_sizes = stage_sizes
        self.negative_overlap = negative_overlap
        self.positive_weight = positive_weight
        self.max_features_per_window = max_features_per_window
        self.negative_stride = negative_stride
        self.merge_values = merge_values
        self.stage_size_false_positive_rate = stage_size_false_positive_rate
        self.max_counted_windows = max_counted_windows
        self.images_per_stage = images_per_stage

    def scan_stride(self, window: tuple[int, int]) -> int:
        """The scan stride in level pixels: ``stride`` when set, else one twelfth of the window's narrow side
        (at least 1): a window then lies at most a 24th of its side from the best placement at its scale,
        IoU >= 0.85 with it, and a 20-pixel-wide pedestrian window is scanned at every pixel."""
        return int(self.stride) if self.stride else max(1, min(window) // 12)

    def mined_per_image(self, count: int, images: int) -> int:
        """The most negatives a stage takes from one training image: twice an even share of ``count`` over the
        images, or the share over ``images_per_stage`` images when that is more (each visited image costs a
        pyramid, so a stage need not visit hundreds), at least 8."""
        return max(8, int(np.ceil(2 * count / max(images, 1))),
                   int(np.ceil(count / max(min(images, self.images_per_stage), 1))))

    # ------------------------------------------------------------------------------------------- training

    def _positives(self, greys: list[np.ndarray], data: DetectionSet, k: int, window: tuple[int, int],
                   rng: np.random.Generator) -> np.ndarray:
        crops = []
        for i, s in enumerate(data.samples):
            keep = (s.labels == k) & ~s.difficult
            if keep.any():
                crops.append(positive_crops(greys[i], s.boxes[keep], window, self.context, flip=True,
                                            jitter=self.jitter, rng=rng))
        return np.concatenate(crops) if crops else np.zeros((0, *window), np.uint8)

    def _negative_source(self, greys: list[np.ndarray], data: DetectionSet, k: int, model: ClassModel,
                         rng: np.random.Generator, stats: dict[str, Any], heartbeat: Heartbeat | None = None
                         ) -> NegativeSourceFn:
        """The negatives of every stage, as ``(F, M)`` pool values (see :func:`benchsuite.ops.boosting.train_cascade`).

        All come from the background windows of the training images (:class:`~benchsuite.ops.negatives.
        NegativeSource`: every window of the detection pyramid, at every scale and the detection stride, that
        overlaps no box of the class; other classes are background; an image smaller than the window gives
        its one upscaled window). Stage 1 gets a random sample of them; every later stage gets random
        windows among those the cascade so far passes (bootstrapping: its false positives), from images
        visited in random order, at most :meth:`mined_per_image` per image so that they come from many: a
        uniform random choice among the image's background windows the cascade passes (every one of them
        is a candidate: an image with few background windows among many passing ones still gives all it
        has; :func:`background_pick` bounds the overlap test's memory when they are very many).
        ``stats`` collects, per stage, the windows scanned, the share of them the cascade passed and the
        negatives found; ``stats["background"]`` the source's counts.
        """
        corner = model.pool.corner_matrix()
        wh, ww = model.window
        negative_stride = self.negative_stride or self.scan_stride(model.window)
        source = NegativeSource.from_images(
            greys, [s.boxes[s.labels == k] for s in data.samples], model.window, max_overlap=self.negative_overlap,
            start_scale=model.start_scale, step=self.pyramid_step, stride=negative_stride)

        grid = grid_windows([g.shape for g in greys], model.window, model.start_scale, self.pyramid_step,
                            negative_stride)
        stats["grid_windows"] = grid

        def first(count: int) -> np.ndarray:
            if grid > self.max_counted_windows:
                return first_by_scanning(count)
            neg = source.sample(count, rng)
            stats["background"] = neg.stats.as_dict()
            stats.setdefault("stage_negatives", []).append({"asked": count, "found": len(neg)})
            crops = neg.crops if neg.crops is not None else np.zeros((0, wh, ww), np.uint8)
            return crop_samples(crops.reshape(len(crops), wh, ww), corner, self.min_std)

        states: dict[int, ScanState] = {}  # per training image: the windows every stage so far passed

        def first_by_scanning(count: int) -> np.ndarray:
            """Stage 1's negatives when the images hold too many windows to count the background ones: images
            in random order, from each at most ``per_image`` random windows (every pyramid level with the same
            chance) that overlap no box of the class."""
            per_image = self.mined_per_image(count, len(greys))
            seen = {"images": 0}

            def scan_image(i: int, grey: np.ndarray):
                seen["images"] += 1
                if heartbeat is not None:
                    heartbeat(lambda: f"stage 1 of at most {self.max_stages}: sampling negatives, image "
                                      f"{seen['images']} of {len(greys)}")
                parts = []
                for level in image_pyramid(grey, model.window, self.pyramid_step, model.start_scale):
                    h, w = level.image.shape[:2]
                    ny, nx = (h - wh) // negative_stride + 1, (w - ww) // negative_stride + 1
                    if ny < 1 or nx < 1:
                        continue
                    pick = rng.choice(ny * nx, min(ny * nx, 4 * per_image), replace=False)
                    parts.append((level, grid_positions(h, w, model.window, negative_stride, pick)))
                if not parts:
                    return self._small_window(source, i, grey, Cascade(), corner, {"windows": 0, "passing": 0})
                # as many candidates from every level: the small scales do not crowd out the large ones
                least = min(len(p) for _, p in parts)
                parts = [(lv, p[:least]) for lv, p in parts]
                boxes = np.concatenate([positions_to_boxes(p, model.window, lv.scale_y, lv.scale_x) for lv, p in parts])
                level_of = np.concatenate([np.full(len(p), j) for j, (_, p) in enumerate(parts)])

                def extract(j: np.ndarray) -> np.ndarray:
                    out = np.empty((len(j), corner.shape[0]), np.float32)
                    for li in np.unique(level_of[j]):
                        sel = np.flatnonzero(level_of[j] == li)
                        lv, p = parts[li]
                        at = p[j[sel] - np.flatnonzero(level_of == li)[0]]
                        crops = np.stack([lv.image[r : r + wh, c : c + ww] for r, c in at])
                        out[sel] = crop_samples(crops, corner, self.min_std).T
                    return out

                return boxes, np.zeros(len(boxes)), extract

            hard = source.mine(scan_image, count, per_image=per_image, order="random", rng=rng)
            stats["background"] = {"grid_windows": grid, "counted": False, "found": len(hard),
                                   "requested": count, "images": len(greys), "images_used": seen["images"]}
            stats.setdefault("stage_negatives", []).append({"asked": count, "found": len(hard)})
            if hard.features is None or not len(hard):
                return np.zeros((corner.shape[0], 0), np.float32)
            return np.ascontiguousarray(hard.features.T)

        def bootstrap(cascade: Cascade, count: int) -> np.ndarray:
            model.cascade = cascade
            model.kernels = _stage_kernels(model.pool, cascade)
            tally = {"windows": 0, "passing": 0, "images": 0, "evaluated": 0}
            found = [0]

            def scan_image(i: int, grey: np.ndarray):
                def beat() -> None:
                    if heartbeat is not None:
                        heartbeat(lambda: f"stage {len(cascade) + 1} of at most {self.max_stages}: mining "
                                          f"negatives the {len(cascade)} stages pass, image {tally['images'] + 1} "
                                          f"(at least {min(len(greys), self.images_per_stage)} of {len(greys)}), "
                                          f"{tally['windows']} windows, {tally['passing']} passing, "
                                          f"{found[0]} of {count} kept")

                levels, n_win, n_eval = scan(grey, model, self.pyramid_step, negative_stride, self.min_std,
                                             state=states.setdefault(i, ScanState()), beat=beat)
                tally["windows"] += n_win
                tally["images"] += 1
                tally["evaluated"] += n_eval
                where = [(li, np.flatnonzero(lv.passed == len(cascade))) for li, lv in enumerate(levels)]
                where = [(li, ok) for li, ok in where if len(ok)]
                if not n_win:  # smaller than the window: its one upscaled window, if the source has it
                    return self._small_window(source, i, grey, cascade, corner, tally)
                passing = sum(len(ok) for _, ok in where)
                tally["passing"] += passing
                if passing * max(len(source.avoid[i]), 1) > MAX_OVERLAP_PAIRS:
                    # too many for the source's one-matrix overlap test: test here in blocks, and hand it a
                    # random few of the background windows only (an image is never starved of its negatives)
                    where = background_pick(where, levels, model.window, source.avoid[i], self.negative_overlap,
                                            4 * per_image, rng)
                if not where:
                    return np.zeros((0, 4)), np.zeros(0), lambda j: np.zeros((0, corner.shape[0]), np.float32)
                # window boxes, as the source's background windows are defined (a window is background
                # when its box overlaps no box of the class)
                boxes = np.concatenate([positions_to_boxes(levels[li].positions[ok], model.window,
                                                           levels[li].scale_y, levels[li].scale_x)
                                        for li, ok in where])
                level_of = np.concatenate([np.full(len(ok), li) for li, ok in where])
                index = np.concatenate([ok for _, ok in where])

                def extract(j: np.ndarray) -> np.ndarray:
                    out = np.empty((len(j), corner.shape[0]), np.float32)
                    for li in np.unique(level_of[j]):
                        sel = np.flatnonzero(level_of[j] == li)
                        lv, m = levels[li], index[j[sel]]
                        ints = window_integrals(lv.ii, lv.positions[m, 0], lv.positions[m, 1], wh, ww)
                        out[sel] = haar_values(corner, ints.astype(np.float32), lv.std[m].astype(np.float32)).T
                    return out

                return boxes, np.zeros(len(boxes)), extract

            per_image = self.mined_per_image(count, len(greys))

            def counted(i: int, grey: np.ndarray):
                b, sc, extract = scan_image(i, grey)

                def kept(j: np.ndarray) -> np.ndarray:  # the source calls it with the windows it keeps
                    found[0] += len(j)
                    return extract(j)

                return b, sc, kept

            hard = source.mine(counted, count, per_image=per_image, order="random", rng=rng)
            stats.setdefault("windows_scanned", []).append(tally["windows"])
            stats.setdefault("images_scanned", []).append(tally["images"])
            stats.setdefault("mining_features_per_window", []).append(
                round(tally["evaluated"] / max(tally["windows"], 1), 3))
            stats.setdefault("cascade_pass_rate", []).append(tally["passing"] / max(tally["windows"], 1))
            stats.setdefault("stage_negatives", []).append({"asked": count, "found": len(hard)})
            if hard.features is None or not len(hard):
                return np.zeros((corner.shape[0], 0), np.float32)
            return np.ascontiguousarray(hard.features.T)

        return lambda cascade, count: bootstrap(cascade, count) if len(cascade) else first(count)

    def _small_window(self, source: NegativeSource, i: int, grey: np.ndarray, cascade: Cascade, corner: Any,
                      tally: dict[str, int]) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """Image ``i`` of ``source`` is smaller than the window at every scale: its one upscaled background
        window (when the source has it) as a scan result ``(boxes (K, 4), scores (K,), extract)``, K <= 1,
        kept when the cascade passes it."""
        boxes, _ = source.windows(i)
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), lambda j: np.zeros((0, corner.shape[0]), np.float32)
        values = crop_samples(crop_windows(grey, boxes, source.window), corner, self.min_std)
        tally["windows"] += len(boxes)
        ok = np.flatnonzero(cascade.passes(values))
        tally["passing"] += len(ok)
        return boxes[ok], np.zeros(len(ok)), lambda j: values[:, ok[j]].T

    def candidate_base_sizes(self) -> tuple[int, ...]:
        """The base sizes tried per class (``base_sizes``, else ``base_size``), each once, in the given order."""
        return tuple(dict.fromkeys(int(b) for b in (self.base_sizes or (self.base_size,))))

    def _fit_class(self, k: int, train: DetectionSet, val: DetectionSet, greys: list[np.ndarray],
                   val_greys: list[np.ndarray], ctx: Context, base_size: int
                   ) -> tuple[ClassModel | None, dict[str, Any]]:
        """One class's window (about ``base_size`` squared pixels), pool and cascade; ``(None, info with
        "skipped": reason)`` when it has none. Every candidate base size draws from the same random stream."""
        name = train.classes[k]
        boxes, _ = train.boxes_of_class(k)
        if len(boxes) == 0:
            return None, {"skipped": "no training boxes"}
        rng = ctx.rng(1000 + k)
        window = choose_window(boxes, base_size, self.window_multiple, self.context,
                               min_side=self.min_window_side)
        # largest scale: the smallest training object (its window box) times scale_slack fills the window
        wb = window_boxes(boxes, window, self.context)
        smallest = float(np.percentile(wb[:, 3] - wb[:, 1], 2)) * self.scale_slack
        start = float(min(self.max_upscale, window[0] / max(smallest, 1.0)))
        pool = sample_haar_features(window[0], window[1], self.max_features, rng)
        full = count_haar_features(window[0], window[1])
        corner = pool.corner_matrix()
        pos_crops = self._positives(greys, train, k, window, rng)
        if len(pos_crops) > self.max_positives:
            pos_crops = pos_crops[rng.choice(len(pos_crops), self.max_positives, replace=False)]
        val_boxes, _ = val.boxes_of_class(k)
        if len(val_boxes) >= 5:
            val_crops = self._positives(val_greys, val, k, window, rng)
            source = "val"
        else:  # too few val objects: hold out a fifth of the training crops
            perm = rng.permutation(len(pos_crops))
            cut = max(1, len(pos_crops) // 5)
            val_crops, pos_crops = pos_crops[perm[:cut]], pos_crops[perm[cut:]]
            source = "held-out train crops"
        if not len(pos_crops) or not len(val_crops):
            return None, {"skipped": f"{len(pos_crops)} training and {len(val_crops)} validation positive crops"}
        pos = crop_samples(pos_crops, corner, self.min_std)
        val_pos = crop_samples(val_crops, corner, self.min_std)
        model = ClassModel(k, window, pool, Cascade(), [], start, base_size=int(base_size))
        stats: dict[str, Any] = {}
        beat = Heartbeat(f"viola-jones {name}: ")
        beat(lambda: f"base size {base_size}: window {window[0]}x{window[1]} px, largest scale {start:.2f}, "
                     f"{len(pool)} Haar features, "
                     f"{pos.shape[1]} training and {val_pos.shape[1]} val positives; sampling stage 1's "
                     f"{self.negatives_per_stage + self.val_negatives_per_stage} negatives", force=True)
        negatives = self._negative_source(greys, train, k, model, rng, stats, beat)
        t0 = time.perf_counter()
        cascade, stage_info = train_cascade(
            pos, val_pos, negatives, self.max_stages, self.detection_rate, self.false_positive_rate,
            self.target_false_positive_rate, self.max_stumps_per_stage, self.negatives_per_stage,
            self.val_negatives_per_stage, MIN_NEGATIVES,
            progress=lambda it, **kw: ctx.progress(it, desc=f"{name} stages"), boosting=self.boosting,
            stage_sizes=self.stage_sizes, positive_weight=self.positive_weight,
            size_false_positive_rate=self.stage_size_false_positive_rate, heartbeat=beat)
        model.cascade = cascade
        model.kernels = _stage_kernels(pool, cascade)
        found = [n["found"] for n in stats.get("stage_negatives", [])]
        info: dict[str, Any] = {
            "base_size": int(base_size), "window_hw": list(window), "start_scale": start,
            "scan_stride": self.scan_stride(window),
            "negative_stride": self.negative_stride or self.scan_stride(window),
            # what bounds the training work (documented in the class docstring)
            "budgets": {"positives": self.max_positives, "jitter_copies_per_object": self.jitter,
                        "negatives_per_stage": self.negatives_per_stage,
                        "val_negatives_per_stage": self.val_negatives_per_stage,
                        "mined_negatives_per_image": self.mined_per_image(
                            self.negatives_per_stage + self.val_negatives_per_stage, len(greys)),
                        "mined_images_per_stage_at_least": min(len(greys), self.images_per_stage),
                        "stages": self.max_stages, "stumps_per_stage": self.max_stumps_per_stage,
                        "feature_pool": self.max_features},
            "reach": scale_reach(window, start, self.context, train, val, k),
            "windows_scanned_per_stage": stats.get("windows_scanned", []),
            "images_scanned_per_stage": stats.get("images_scanned", []),
            "mining_features_per_window": stats.get("mining_features_per_window", []),
            "feature_pool": len(pool),
            "feature_pool_from": f"uniform sample of the {full} Haar features of the window",
            "positives": int(pos.shape[1]), "val_positives": int(val_pos.shape[1]), "val_positives_from": source,
            "background_windows": stats.get("background", {}),
            "stages": len(cascade), "features_per_stage": cascade.stumps_per_stage,
            "stage_planned_features": [s["stumps_planned"] for s in stage_info],
            "stage_val_detection_rate": [round(s["detection_rate"], 4) for s in stage_info],
            "stage_val_false_positive_rate": [round(s["false_positive_rate"], 4) for s in stage_info],
            # per stage: the negatives asked of the source and found (bootstrapped: windows the cascade so far
            # passes); fewer than asked when the training images hold no more
            "stage_negatives_asked": [n["asked"] for n in stats.get("stage_negatives", [])],
            "stage_negatives_found": found,
            # the share of all training-image windows the cascade of the first 1, 2, ... stages passes
            "cascade_pass_rate_per_stage": [float(f"{r:.3g}") for r in stats.get("cascade_pass_rate", [])],
            "cascade_train_s": round(time.perf_counter() - t0, 2)}
        if not len(cascade):
            have = found[-1] if found else 0
            info["skipped"] = (f"no cascade stage trained: {have} background windows of {len(greys)} training "
                               f"images (at least {MIN_NEGATIVES} needed; every window overlaps "
                               f"an object of the class)" if have < MIN_NEGATIVES else
                               "no cascade stage trained")
            return None, info
        return model, info

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> ViolaJonesDetector:
        """Train a cascade per class and candidate base size with training boxes (see the module docstring),
        then choose per class on val the base size, the stages a detection may miss, the NMS IoU and the merging.
        Raises :class:`~benchsuite.errors.EmptyModelError` when no class gets a single stage (the reason per
        class in the message and in ``fit_info``)."""
        greys = [to_grey(im) for _, im in train.iter_images()]
        val_greys = [to_grey(im) for _, im in val.iter_images()]
        bases = self.candidate_base_sizes()
        trained: list[list[ClassModel]] = []  # per class with a cascade: one model per base size that got one
        infos: dict[str, dict[int, dict[str, Any]]] = {}
        for k in range(train.num_classes):
            name = train.classes[k]
            infos[name] = {}
            models = []
            for b in bases:
                model, info = self._fit_class(k, train, val, greys, val_greys, ctx, b)
                infos[name][b] = info
                if model is not None and len(model.cascade):
                    models.append(model)
            if models:
                trained.append(models)
        if not trained:
            ctx.record(classes={n: self._class_info(by_base, None) for n, by_base in infos.items()})
            why = "; ".join(f"{name}: {info.get('skipped', 'no stage')}" for name, by_base in infos.items()
                            for info in list(by_base.values())[:1])
            raise EmptyModelError(f"viola-jones learned nothing: no class has a cascade stage ({why})")
        self._stats = {"images": 0, "windows": 0, "features_evaluated": 0, "detect_s": 0.0,
                       "features_per_window_target": self.max_features_per_window}
        if len(val):
            choice = self._choose_on_val(val, val_greys, trained, ctx)
        else:  # nothing to choose on: each class keeps its first base size's cascade, whole, at the defaults
            self.models_, choice = [models[0] for models in trained], {}
        kept = {m.label: m for m in self.models_}
        ctx.record(classes={n: self._class_info(by_base, kept.get(train.classes.index(n)))
                            for n, by_base in infos.items()})
        if choice:
            log.info("viola-jones: %.2f Haar features per val window (target %s); base size and stages kept per "
                     "class: %s", choice["val_features_per_window"], self.max_features_per_window,
                     {n: (c["base_size"], c["stages_used"], c["stages_trained"]) for n, c in choice.items()
                      if isinstance(c, dict)})
        pool_total = sum(len(m.pool) for m in self.models_)
        ctx.record(chosen_on_val=choice,
                   stages={train.classes[m.label]: len(m.cascade) for m in self.models_},
                   features_per_stage={train.classes[m.label]: m.cascade.stumps_per_stage for m in self.models_},
                   feature_pool_size=pool_total,
                   # updated by detect(): the totals over every image the job detected on (features_per_window:
                   # the average number of Haar features evaluated per scanned window and class)
                   detect_stats=self._stats)
        return self

    @staticmethod
    def _class_info(by_base: dict[int, dict[str, Any]], kept: ClassModel | None) -> dict[str, Any]:
        """``fit_info.classes.<class>``: the facts of the base size kept (the first when none was), and with
        several candidates each one's window, stages and training seconds (``base_size_candidates``)."""
        out = dict(by_base[kept.base_size if kept is not None else next(iter(by_base))])
        if len(by_base) > 1:
            out["base_size_candidates"] = {
                str(b): {key: info.get(key) for key in ("window_hw", "stages", "cascade_train_s", "skipped")
                         if key in info} for b, info in by_base.items()}
        return out

    def _choose_on_val(self, val: DetectionSet, val_greys: list[np.ndarray], trained: list[list[ClassModel]],
                       ctx: Context) -> dict[str, Any]:
        """Per class: each candidate cascade cut to the feature budget (:meth:`_truncate`), then the base size,
        the stages a detection may miss, the NMS IoU and merging by val AP50, in one grid per class. One scan
        per val image, class and base size serves all of it (a second only when the budget cut stages);
        detection is then replayed as :meth:`detect` does it; each class's grid goes to
        ``fit_info.selection_per_class``. Sets ``models_`` (the kept cascade per class) and ``val_detections_``."""
        tally = {"windows": 0, "evaluated": 0}
        choice: dict[str, Any] = {}
        per_class: list[list[Detections]] = []
        self.models_ = []
        for models in trained:
            name = val.classes[models[0].label]
            beat = Heartbeat(f"viola-jones {name}: ")
            scanned: dict[int, tuple[ClassModel, dict[str, list], dict[str, Any], dict[str, int]]] = {}
            for model in models:
                counts = {"windows": 0, "evaluated": 0}
                scans, cut = self._scan_val(model, val_greys, beat, counts, truncate=True)
                if cut["stages_used"] < cut["stages_trained"]:
                    scans, _ = self._scan_val(model, val_greys, beat, None, truncate=False)
                scanned[model.base_size] = (model, scans, cut, counts)
            settings, score, dets, rule = self._choose_class_on_val(val, scanned, ctx)
            model, _, cut, counts = scanned[settings["base_size"]]
            per_class.append(dets)
            model.stages_missed, model.nms_iou = settings["stages_missed"], settings["nms_iou"]
            model.score_mode, model.merge = settings["score_mode"], settings["merge"]
            self.models_.append(model)
            tally["windows"] += counts["windows"]
            tally["evaluated"] += counts["evaluated"]
            choice[name] = {**settings, "val_ap50": -1.0 if score is None else score, **cut, **rule}
        # what detect() gives on the val images with the chosen settings (the task judges the floor on them)
        self.val_detections_ = [Detections(np.concatenate([d.boxes for d in ds]).astype(np.float32),
                                           np.concatenate([d.scores for d in ds]).astype(np.float32),
                                           np.concatenate([d.labels for d in ds]).astype(np.int64))
                                for ds in zip(*per_class, strict=True)]
        windows, evaluated = tally["windows"], tally["evaluated"]
        choice["val_features_per_window"] = evaluated / max(windows, 1)
        choice["val_windows_per_image_and_class"] = windows / max(len(val) * len(self.models_), 1)
        return choice

    def _scan_val(self, model: ClassModel, val_greys: list[np.ndarray], beat: Heartbeat,
                  tally: dict[str, int] | None, truncate: bool) -> tuple[dict[str, list], dict[str, Any]]:
        """Scan every val image once: per score mode, the candidates of every image (with the most stages
        missed that the grid holds); with ``truncate``, also cut ``model``'s cascade to the feature budget
        (:meth:`_truncate`, its facts returned; the candidates are then those of the whole cascade)."""
        most = max(self.stages_missed_values)
        scans: dict[str, list] = {mode: [] for mode in self.score_modes}
        sizes = np.array(model.cascade.stumps_per_stage, np.float64)
        reach = np.zeros(len(sizes))
        windows = evaluated = 0
        stride = self.scan_stride(model.window)
        for j, g in enumerate(val_greys):
            levels, nw, ne = scan(g, model, self.pyramid_step, stride, self.min_std,
                                  beat=lambda j=j: beat(lambda: f"val scan: image {j + 1} of {len(val_greys)}"))
            windows += nw
            evaluated += ne
            for lv in levels:
                reach += np.bincount(np.minimum(lv.passed, len(sizes) - 1), minlength=len(sizes))[::-1].cumsum()[::-1]
            for mode in self.score_modes:
                scans[mode].append(level_candidates(levels, model, self.context, most, self.max_candidates, mode))
            beat(lambda j=j, w=windows, e=evaluated: f"val scan: image {j + 1} of {len(val_greys)}, {w} windows, "
                                                     f"{e / max(w, 1):.2f} features per window")
        if tally is not None:
            tally["windows"] += windows
            tally["evaluated"] += evaluated
        return scans, (self._truncate(model, sizes, reach, windows) if truncate else {})

    def _truncate(self, model: ClassModel, sizes: np.ndarray, reach: np.ndarray, windows: int) -> dict[str, Any]:
        """Keep the longest prefix of ``model``'s cascade whose average cost on the val images is at most
        ``max_features_per_window`` Haar features per window (at least one stage); returns the facts.

        One scan with the whole cascade gives every prefix's cost: a window evaluates stage ``i`` exactly
        when it passed the ``i`` stages before it, so with ``reach[i]`` the windows that passed at least ``i``
        stages, the prefix of ``n`` stages costs ``sum_{i < n} sizes[i] * reach[i] / windows``.
        """
        cost = np.cumsum(sizes * reach) / max(windows, 1)  # cost[n - 1]: the first n stages
        keep = len(sizes)
        if self.max_features_per_window is not None and windows:
            keep = max(1, int(np.searchsorted(cost, self.max_features_per_window, side="right")))
        trained = len(model.cascade)
        if keep < trained:
            model.cascade = Cascade(model.cascade.stages[:keep])
            model.kernels = model.kernels[:keep]
        return {"stages_trained": trained, "stages_used": keep,
                "val_features_per_window_by_stages": [round(float(c), 2) for c in cost],
                # the share of val windows that reach stage i (pass the i stages before it): what each
                # stage costs is its size times this
                "val_share_reaching_stage": [float(f"{r / max(windows, 1):.3g}") for r in reach],
                "val_cost_per_stage": [round(float(c), 3) for c in sizes * reach / max(windows, 1)]}

    def _truncate_on_val(self, model: ClassModel, val_greys: list[np.ndarray]) -> dict[str, Any]:
        """:meth:`_truncate` after a scan of ``val_greys`` with the whole cascade; returns its facts."""
        return self._scan_val(model, val_greys, Heartbeat("viola-jones: "), None, truncate=True)[1]

    def _choose_class_on_val(self, val: DetectionSet, scanned: dict[int, tuple[ClassModel, dict[str, list], Any, Any]],
                             ctx: Context) -> tuple[dict[str, Any], float | None, list[Detections], dict[str, Any]]:
        """One class's base size and settings by its val AP50, from the candidates of :meth:`_scan_val` of each base
        size's model (``scanned``: base size -> ``(model, scans, ...)``, the first size first). The grid (base size x
        settings) is scored by the one selection rule; a cascade of another base size then replaces the first
        size's best only when its val gain is clear: the 95% interval of the paired bootstrap of the AP50 gain over
        val images (:func:`~benchsuite.metrics.bootstrap.map50_gain_resamples`, the floor verdict's statistic)
        lies above zero. A small val set cannot tell two cascades apart (Penn-Fudan's 20 images: +0.07 AP50 for a
        48-pixel window, interval reaching below zero). The choice is recorded per class with what was kept.

        Returns ``(settings, val AP50, the class's detections on every val image as detect() gives them, the rule's
        facts for fit_info)``."""
        label = next(iter(scanned.values()))[0].label
        name = val.classes[label]
        kept: dict[tuple, tuple[list, list]] = {}  # the latest (base, mode, NMS IoU, stages missed) -> passing, NMS

        def val_detections(s: dict[str, Any]) -> list[Detections]:
            base, mode, iou, missed = s["base_size"], s["score_mode"], s["nms_iou"], s["stages_missed"]
            model, scans = scanned[base][0], scanned[base][1]
            if (base, mode, iou, missed) not in kept:  # one NMS per stages-missed value serves every merge mode
                need = max(len(model.cascade) - missed, 1)
                passing = [(b[p >= need], sc[p >= need]) for b, sc, p in scans[mode]]
                kept.clear()
                kept[base, mode, iou, missed] = passing, [nms(b, sc, iou)[: self.max_detections] for b, sc in passing]
            passing, keeps = kept[base, mode, iou, missed]
            return [Detections(*kept_detections(b, sc, keep, iou, s["merge"]), np.full(len(keep), label))
                    for (b, sc), keep in zip(passing, keeps, strict=True)]

        def val_ap50(s: dict[str, Any]) -> float:
            return score_detections(val, val_detections(s), val.classes, ("voc",))["per_class"][name]["ap50"]

        grid = [{"base_size": int(base), "score_mode": str(mode), "stages_missed": int(missed), "nms_iou": float(iou),
                 "merge": str(merge)}
                for base in scanned
                for mode, iou, missed, merge in itertools.product(self.score_modes, self.nms_iou_values,
                                                                  self.stages_missed_values, self.merge_values)]
        first = next(iter(scanned))
        rule: dict[str, Any] = {}

        def clear_gain(best: dict[str, Any], default: dict[str, Any]) -> bool:
            gains = map50_gain_resamples(self._class_matches(val, val_detections(best), label),
                                         self._class_matches(val, val_detections(default), label), BASE_SIZE_RESAMPLES)
            iv = percentile_interval(gains) if len(gains) else None
            rule.update(base_size_best_on_val=best["base_size"],
                        base_size_gain_ci95=[round(v, 4) for v in iv] if iv else None)
            if iv is None or iv[0] <= 0.0:
                rule["base_size_kept"] = (f"the first base size {first}: base size {best['base_size']}'s val AP50 gain "
                                          f"is not clear (95% interval reaches zero)")
                return False
            return True

        best = ctx.select(grid, val_ap50, metric="val_ap50", for_class=name, prefer_first=("base_size", clear_gain))
        return best.settings, best.score, val_detections(best.settings), rule

    @staticmethod
    def _class_matches(val: DetectionSet, dets: list[Detections], label: int) -> Matches:
        """The devkit matching of one class's detections with that class's val objects (a one-class matching)."""
        gt = [(s.boxes[s.labels == label], s.difficult[s.labels == label]) for s in val]
        return match([b for b, _ in gt], [np.zeros(len(b), np.int64) for b, _ in gt], [d for _, d in gt],
                     [d.boxes for d in dets], [d.scores for d in dets], [np.zeros(len(d), np.int64) for d in dets], 1)

    # ------------------------------------------------------------------------------------------ detection

    def detect(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        grey = to_grey(image)
        boxes, scores, labels = [], [], []
        for model in self.models_:
            b, s, _, nw, ne = candidates(grey, model, self.pyramid_step, self.scan_stride(model.window),
                                         self.min_std, self.context,
                                         model.stages_missed, self.max_candidates, model.score_mode)
            kept_boxes, kept_scores = suppress(b, s, model.nms_iou, self.max_detections, model.merge)
            boxes.append(kept_boxes)
            scores.append(kept_scores)
            labels.append(np.full(len(kept_scores), model.label, np.int64))
            self._stats["windows"] += nw
            self._stats["features_evaluated"] += ne
        self._stats["images"] += 1
        self._stats["detect_s"] += time.perf_counter() - t0
        self._stats["features_per_window"] = self._stats["features_evaluated"] / max(self._stats["windows"], 1)
        self._stats["seconds_per_image"] = self._stats["detect_s"] / self._stats["images"]
        if not boxes:
            return Detections.empty()
        return Detections(np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
                          np.concatenate(labels))
