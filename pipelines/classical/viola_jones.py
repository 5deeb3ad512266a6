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
the log of the group's size, its "neighbours") are chosen on val (AP50 per class).
``fit_info.detect_stats.features_per_window`` is the average number of Haar features evaluated per scanned
window (and class) over every image the job detected on, the cost the attentional cascade exists to cut
(Viola & Jones report about 10 for their face detector).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Choice, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.boosting import Cascade, train_cascade
from benchsuite.ops.boosting import NegativeSource as NegativeSourceFn
from benchsuite.ops.boxes import merge_suppressed, nms
from benchsuite.ops.haar import HaarFeatures, count_haar_features, haar_values, sample_haar_features
from benchsuite.ops.integral import integral_image, window_integrals, window_mean_std
from benchsuite.ops.negatives import NegativeSource
from benchsuite.ops.windows import (
    choose_window,
    crop_windows,
    image_pyramid,
    object_boxes,
    positions_to_boxes,
    positive_crops,
    window_boxes,
    window_positions,
)

log = logging.getLogger(__name__)

#: windows per gather block when a stage is evaluated on a pyramid level
GATHER_BLOCK = 8192
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


def scan(grey: np.ndarray, model: ClassModel, pyramid_step: float, stride: int, min_std: float,
         max_levels: int | None = None) -> tuple[list[_Level], int, int]:
    """Run ``model``'s cascade over every window of a grey image pyramid, with early rejection.

    Returns ``(levels, windows, features_evaluated)``.
    """
    wh, ww = model.window
    levels: list[_Level] = []
    n_windows = 0
    n_evaluated = 0
    for level in image_pyramid(grey, model.window, pyramid_step, model.start_scale, max_levels):
        img = level.image
        ii = integral_image(img)
        ii2 = integral_image(img, squared=True)
        pos = window_positions(img.shape[0], img.shape[1], model.window, stride)
        if not len(pos):
            continue
        _, std = window_mean_std(ii, ii2, pos[:, 0], pos[:, 1], wh, ww)
        std = np.maximum(std, min_std)
        row = ii.shape[1]
        base = pos[:, 0] * row + pos[:, 1]
        flat = ii.reshape(-1)

        def values(i: int, samples: np.ndarray, base=base, flat=flat, std=std, row=row) -> np.ndarray:
            k = model.kernels[i]
            off = k.dy * row + k.dx
            out = np.empty((len(k.starts), len(samples)))
            for s in range(0, len(samples), GATHER_BLOCK):
                idx = samples[s : s + GATHER_BLOCK]
                g = flat[base[idx][:, None] + off[None, :]] * k.weights[None, :]
                out[:, s : s + GATHER_BLOCK] = np.add.reduceat(g, k.starts, axis=1).T / std[idx][None, :]
            return out

        passed, margin, evaluated, margin_sum = model.cascade.evaluate(values, len(pos))
        n_windows += len(pos)
        n_evaluated += evaluated
        levels.append(_Level(level.scale_y, level.scale_x, ii, pos, std, passed, margin, margin_sum))
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
    if score_mode not in SCORE_MODES:
        raise ValueError(f"viola-jones: score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
    levels, n_windows, n_eval = scan(grey, model, pyramid_step, stride, min_std)
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
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), n_windows, n_eval
    b, s, p = np.concatenate(boxes), np.concatenate(scores), np.concatenate(passed)
    if len(s) > max_candidates:
        top = np.argpartition(-s, max_candidates - 1)[:max_candidates]
        b, s, p = b[top], s[top], p[top]
    return b, s, p, n_windows, n_eval


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
            densely (1.1, one pixel): with the cascade a window costs a few tens of features, and a coarse grid
            misses the IoU 0.5 overlap on thin windows (Penn-Fudan val AP50 0.38 with 1.2 / 2 px and a
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
            window is kept (at least one stage); None keeps every stage.
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
        "smoke": {"base_size": 24, "max_stages": 6, "max_features": 1000, "jitter": 1, "negatives_per_stage": 300,
                  "val_negatives_per_stage": 150, "max_stumps_per_stage": 15, "stride": 4, "pyramid_step": 1.5,
                  "max_upscale": 1.0, "stages_missed_values": (0, 1), "nms_iou_values": (0.3,),
                  "score_modes": ("last",)},
        "full": {"max_stages": 16, "max_features": 16000, "negatives_per_stage": 4000,
                 "val_negatives_per_stage": 2000, "max_stumps_per_stage": 100, "pyramid_step": 1.1},
    }

    def __init__(self, base_size: int = 32, window_multiple: int = 2, min_window_side: int = 8, context: float = 0.1,
                 max_features: int = 8000, jitter: int = 2, max_positives: int = 3000, max_stages: int = 18,
                 detection_rate: float = 0.92, false_positive_rate: float = 0.5, max_stumps_per_stage: int = 60,
                 target_false_positive_rate: float = 1e-5, negatives_per_stage: int = 1500,
                 val_negatives_per_stage: int = 750, pyramid_step: float = 1.1, stride: int = 1,
                 scale_slack: float = 0.8, max_upscale: float = 2.0, min_std: float = 1.0,
                 stages_missed_values: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
                 nms_iou_values: tuple[float, ...] = (0.3, 0.5),
                 score_modes: tuple[str, ...] = SCORE_MODES, max_candidates: int = 4000, max_detections: int = 100,
                 boosting: str = "discrete", stage_sizes: tuple[int, ...] | None = (2, 4, 6, 8, 10, 12, 15, 20, 25, 30),
                 negative_overlap: float = 0.3, positive_weight: float = 1.0,
                 max_features_per_window: float | None = 40.0, negative_stride: int | None = 1,
                 merge_values: tuple[str, ...] = MERGE_MODES):
        self.base_size = base_size
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
                         rng: np.random.Generator, stats: dict[str, Any]) -> NegativeSourceFn:
        """The negatives of every stage, as ``(F, M)`` pool values (see :func:`benchsuite.ops.boosting.train_cascade`).

        All come from the background windows of the training images (:class:`~benchsuite.ops.negatives.
        NegativeSource`: every window of the detection pyramid, at every scale and the detection stride, that
        overlaps no box of the class; other classes are background; an image smaller than the window gives
        its one upscaled window). Stage 1 gets a random sample of them; every later stage gets random
        windows among those the cascade so far passes (bootstrapping: its false positives), from images
        visited in random order, at most ``2 * count / images`` per image so that they come from many.
        ``stats`` collects, per stage, the windows scanned, the share of them the cascade passed and the
        negatives found; ``stats["background"]`` the source's counts.
        """
        corner = model.pool.corner_matrix()
        wh, ww = model.window
        source = NegativeSource.from_images(
            greys, [s.boxes[s.labels == k] for s in data.samples], model.window, max_overlap=self.negative_overlap,
            start_scale=model.start_scale, step=self.pyramid_step, stride=self.negative_stride or self.stride)

        def first(count: int) -> np.ndarray:
            neg = source.sample(count, rng)
            stats["background"] = neg.stats.as_dict()
            stats.setdefault("stage_negatives", []).append({"asked": count, "found": len(neg)})
            crops = neg.crops if neg.crops is not None else np.zeros((0, wh, ww), np.uint8)
            return crop_samples(crops.reshape(len(crops), wh, ww), corner, self.min_std)

        def bootstrap(cascade: Cascade, count: int) -> np.ndarray:
            model.cascade = cascade
            model.kernels = _stage_kernels(model.pool, cascade)
            tally = {"windows": 0, "passing": 0}

            def scan_image(i: int, grey: np.ndarray):
                levels, n_win, _ = scan(grey, model, self.pyramid_step, self.negative_stride or self.stride,
                                        self.min_std)
                tally["windows"] += n_win
                where = [(li, np.flatnonzero(lv.passed == len(cascade))) for li, lv in enumerate(levels)]
                where = [(li, ok) for li, ok in where if len(ok)]
                if not levels:  # smaller than the window: its one upscaled window, if the source has it
                    return self._small_window(source, i, grey, cascade, corner, tally)
                tally["passing"] += sum(len(ok) for _, ok in where)
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

            per_image = max(8, int(np.ceil(2 * count / max(len(greys), 1))))
            hard = source.mine(scan_image, count, per_image=per_image, order="random", rng=rng)
            stats.setdefault("windows_scanned", []).append(tally["windows"])
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

    def _fit_class(self, k: int, train: DetectionSet, val: DetectionSet, greys: list[np.ndarray],
                   val_greys: list[np.ndarray], ctx: Context) -> tuple[ClassModel | None, dict[str, Any]]:
        """One class's window, pool and cascade; ``(None, info with "skipped": reason)`` when it has none."""
        name = train.classes[k]
        boxes, _ = train.boxes_of_class(k)
        if len(boxes) == 0:
            return None, {"skipped": "no training boxes"}
        rng = ctx.rng(1000 + k)
        window = choose_window(boxes, self.base_size, self.window_multiple, self.context,
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
        model = ClassModel(k, window, pool, Cascade(), [], start)
        stats: dict[str, Any] = {}
        negatives = self._negative_source(greys, train, k, model, rng, stats)
        t0 = time.perf_counter()
        cascade, stage_info = train_cascade(
            pos, val_pos, negatives, self.max_stages, self.detection_rate, self.false_positive_rate,
            self.target_false_positive_rate, self.max_stumps_per_stage, self.negatives_per_stage,
            self.val_negatives_per_stage, MIN_NEGATIVES,
            progress=lambda it, **kw: ctx.progress(it, desc=f"{name} stages"), boosting=self.boosting,
            stage_sizes=self.stage_sizes, positive_weight=self.positive_weight)
        model.cascade = cascade
        model.kernels = _stage_kernels(pool, cascade)
        found = [n["found"] for n in stats.get("stage_negatives", [])]
        info: dict[str, Any] = {
            "window_hw": list(window), "start_scale": start, "feature_pool": len(pool),
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
        """Train a cascade per class with training boxes (see the module docstring), then choose the
        stages a detection may miss and the NMS IoU on val. Raises :class:`~benchsuite.errors.EmptyModelError`
        when no class gets a single stage (the reason per class in the message and in ``fit_info``)."""
        greys = [to_grey(im) for _, im in train.iter_images()]
        val_greys = [to_grey(im) for _, im in val.iter_images()]
        self.models_: list[ClassModel] = []
        per_class: dict[str, Any] = {}
        for k in range(train.num_classes):
            model, info = self._fit_class(k, train, val, greys, val_greys, ctx)
            per_class[train.classes[k]] = info
            if model is not None and len(model.cascade):
                self.models_.append(model)
        ctx.record(classes=per_class)
        if not self.models_:
            why = "; ".join(f"{name}: {info.get('skipped', 'no stage')}" for name, info in per_class.items())
            raise EmptyModelError(f"viola-jones learned nothing: no class has a cascade stage ({why})")
        self._stats = {"images": 0, "windows": 0, "features_evaluated": 0, "detect_s": 0.0}
        choice = self._choose_on_val(val, val_greys, ctx) if len(val) else {}
        pool_total = sum(len(m.pool) for m in self.models_)
        ctx.record(chosen_on_val=choice,
                   stages={train.classes[m.label]: len(m.cascade) for m in self.models_},
                   features_per_stage={train.classes[m.label]: m.cascade.stumps_per_stage for m in self.models_},
                   feature_pool_size=pool_total,
                   # updated by detect(): the totals over every image the job detected on (features_per_window:
                   # the average number of Haar features evaluated per scanned window and class)
                   detect_stats=self._stats)
        return self

    def _choose_on_val(self, val: DetectionSet, val_greys: list[np.ndarray], ctx: Context) -> dict[str, Any]:
        """Stages a detection may miss, the NMS IoU and merging, per class, by val AP50 (one scan per image,
        class and score mode gives the candidates of every stages-missed value; detection is then replayed as
        :meth:`detect` does it); each class's grid goes to ``fit_info.selection_per_class``."""
        tally = {"windows": 0, "evaluated": 0}
        choice: dict[str, Any] = {}
        truncation = {val.classes[m.label]: self._truncate_on_val(m, val_greys) for m in self.models_}
        for model in self.models_:
            name = val.classes[model.label]
            best = self._choose_class_on_val(model, val, val_greys, tally, ctx)
            model.stages_missed, model.nms_iou = best.settings["stages_missed"], best.settings["nms_iou"]
            model.score_mode, model.merge = best.settings["score_mode"], best.settings["merge"]
            choice[name] = {**best.settings, "val_ap50": -1.0 if best.score is None else best.score,
                            **truncation[name]}
        windows, evaluated = tally["windows"], tally["evaluated"]
        choice["val_features_per_window"] = evaluated / max(windows, 1)
        choice["val_windows_per_image_and_class"] = windows / max(len(val) * len(self.models_), 1)
        return choice

    def _choose_class_on_val(self, model: ClassModel, val: DetectionSet, val_greys: list[np.ndarray],
                             tally: dict[str, int], ctx: Context) -> Choice:
        """One class's settings by its val AP50 (recorded per class); ``tally`` counts the windows scanned and the
        features evaluated with the first score mode."""
        name = val.classes[model.label]
        most = max(self.stages_missed_values)
        scans: dict[str, list] = {}  # the latest score mode -> per image (boxes, scores, stages passed)
        kept: dict[tuple, tuple[list, list]] = {}  # the latest (mode, NMS IoU, stages missed) -> passing, NMS

        def val_ap50(s: dict[str, Any]) -> float:
            mode, iou, missed = s["score_mode"], s["nms_iou"], s["stages_missed"]
            if mode not in scans:  # one scan per image, class and score mode serves every other setting
                scans.clear()
                scans[mode] = []
                for g in val_greys:
                    b, sc, p, nw, ne = candidates(g, model, self.pyramid_step, self.stride, self.min_std,
                                                  self.context, most, self.max_candidates, mode)
                    scans[mode].append((b, sc, p))
                    if mode == self.score_modes[0]:
                        tally["windows"] += nw
                        tally["evaluated"] += ne
            if (mode, iou, missed) not in kept:  # one NMS per stages-missed value serves every merge mode
                need = max(len(model.cascade) - missed, 1)
                passing = [(b[p >= need], sc[p >= need]) for b, sc, p in scans[mode]]
                kept.clear()
                kept[mode, iou, missed] = passing, [nms(b, sc, iou)[: self.max_detections] for b, sc in passing]
            passing, keeps = kept[mode, iou, missed]
            dets = [Detections(*kept_detections(b, sc, keep, iou, s["merge"]), np.full(len(keep), model.label))
                    for (b, sc), keep in zip(passing, keeps, strict=True)]
            return score_detections(val, dets, val.classes, ("voc",))["per_class"][name]["ap50"]

        grid = [{"score_mode": str(mode), "stages_missed": int(missed), "nms_iou": float(iou), "merge": str(merge)}
                for mode, iou, missed, merge in itertools.product(self.score_modes, self.nms_iou_values,
                                                                  self.stages_missed_values, self.merge_values)]
        return ctx.select(grid, val_ap50, metric="val_ap50", for_class=name)

    def _truncate_on_val(self, model: ClassModel, val_greys: list[np.ndarray]) -> dict[str, Any]:
        """Keep the longest prefix of ``model``'s cascade whose average cost on the val images is at most
        ``max_features_per_window`` Haar features per window (at least one stage); returns the facts.

        One scan with the whole cascade gives every prefix's cost: a window evaluates stage ``i`` exactly
        when it passed the ``i`` stages before it, so the prefix of ``n`` stages costs
        ``sum_{i < n} size_i * #(windows that passed >= i stages)``.
        """
        sizes = np.array(model.cascade.stumps_per_stage, np.float64)
        reach = np.zeros(len(sizes))
        windows = 0
        for g in val_greys:
            levels, nw, _ = scan(g, model, self.pyramid_step, self.stride, self.min_std)
            windows += nw
            for lv in levels:
                reach += np.bincount(np.minimum(lv.passed, len(sizes) - 1), minlength=len(sizes))[::-1].cumsum()[::-1]
        cost = np.cumsum(sizes * reach) / max(windows, 1)  # cost[n - 1]: the first n stages
        keep = len(sizes)
        if self.max_features_per_window is not None and windows:
            keep = max(1, int(np.searchsorted(cost, self.max_features_per_window, side="right")))
        trained = len(model.cascade)
        if keep < trained:
            model.cascade = Cascade(model.cascade.stages[:keep])
            model.kernels = model.kernels[:keep]
        return {"stages_trained": trained, "stages_used": keep,
                "val_features_per_window_by_stages": [round(float(c), 2) for c in cost]}

    # ------------------------------------------------------------------------------------------ detection

    def detect(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        grey = to_grey(image)
        boxes, scores, labels = [], [], []
        for model in self.models_:
            b, s, _, nw, ne = candidates(grey, model, self.pyramid_step, self.stride, self.min_std, self.context,
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
