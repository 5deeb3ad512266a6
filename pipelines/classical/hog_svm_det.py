"""``hog-svm-det``: Dalal & Triggs (2005) sliding-window detection, HOG + a linear SVM per class.

Training, for every class of the training split (one model each, nothing specific to pedestrians):

1. a window shape from the class's training boxes (:func:`benchsuite.ops.windows.choose_window`: tall
   for people, wide for cars, square for signs), holding the object plus a ``context`` margin;
2. positives: every non-difficult box cropped to the window, plus jittered copies and mirror images
   (tight crops work as well as objects in scenes: context past the border is mirrored, jitter stays in
   the image); negatives: background windows from :class:`benchsuite.ops.negatives.NegativeSource`, at
   the pyramid scales detection scans, from every image region overlapping no box of the class (objects
   of other classes are background; a window-sized background image is one window); when the images
   hold fewer than asked, all of them (``fit_info.negative_source`` gives the counts). A class without
   any background window is skipped; with none for any class, or an SVM with all-zero weights, ``fit``
   raises :class:`benchsuite.errors.EmptyModelError`. Objects much smaller than the window shrink it
   (its shorter side down to ``min_template_cells`` HOG cells, a floor that keeps enough features) and the
   pyramid starts upsampled (up to ``max_upscale``) to reach them;
3. HOG of each crop (8-pixel cells, 2 x 2-cell blocks, 9 unsigned bins, L2-Hys; one cell of margin
   around the window so the window's cells see the same pixels as on a whole image) and a linear SVM
   (:class:`benchsuite.ops.linear_svm.LinearSVM`, squared hinge);
4. hard-negative mining: the detector scans the training images, the highest-scoring windows that
   overlap no object of the class become negatives (their features read straight off the HOG map of
   the pyramid level), and the SVM is fitted again (``mining_rounds`` times, with the first C; the
   other candidate Cs are fitted on the final set of windows).

Detection: an image pyramid, one HOG block map per (padded) level, and every class's weight vector laid
out as a ``(blocks_y, blocks_x, 36)`` template applied to the whole map as a correlation
(:func:`benchsuite.ops.correlation.correlate_templates`: one matrix product and one strided sum per
level, never a classifier call per window). Window hits above a score threshold become boxes (the
window's object part, mapped back through the level's scale), NMS per class. Scores are SVM margins.

The SVM's C, the pyramid step, the window stride, the NMS IoU threshold and the score threshold are chosen
by AP50 on the validation split (never on test) and recorded in ``fit_info``; then, per class, the largest
pyramid scale its model scans (its upsampling, among ``upscale_caps`` and the scale its objects need) by the
class's val AP50. ``fit_info.reach`` gives per class the smallest object height the model can find and the
train and val objects below it, per size band (:data:`SIZE_BANDS`).

Cost is bounded by budgets, not by time: positives (``max_positives`` windows per class, the objects shared
equally between size bands, at most ``positives_per_image`` per image, ``fit_info.positive_budget``),
random negatives (``max_negatives``, ``negatives_per_image``; spread over images and pyramid levels) and hard
negatives (``hard_per_image`` and ``hard_per_round`` per class and round). Every phase writes a progress line
to the job's log at least every 30 s (:mod:`benchsuite.measure.progress`: windows collected, images scanned
in round k of n, val scans) and a line per SVM fit.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

from benchsuite.api import Choice, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.measure.progress import logged
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.correlation import correlate_templates
from benchsuite.ops.hog import hog_map
from benchsuite.ops.linear_svm import LinearSVM
from benchsuite.ops.negatives import NegativeSource, mine_sources, water_fill
from benchsuite.ops.size_bands import SIZE_BANDS, band_counts, band_names, size_bands
from benchsuite.ops.windows import (
    WindowSize,
    choose_window,
    class_detections,
    crop_windows,
    image_pyramid,
    local_maxima,
    object_boxes,
    positions_to_boxes,
    positive_crops,
    window_boxes,
)

log = logging.getLogger(__name__)

@functools.cache
def _blas_controller() -> ThreadpoolController:
    """One threadpoolctl controller per process (created after numpy has loaded its BLAS)."""
    return ThreadpoolController()


@dataclass
class ClassModel:
    """The detector of one class: its window and its linear template.

    Attributes:
        label: the class index in the data set.
        window: ``(height, width)`` of the window in pixels (multiples of the HOG cell).
        template: ``(blocks_y, blocks_x, block * block * bins)`` float32 SVM weights laid out as the HOG map.
        bias: the SVM intercept.
        max_scale: the largest pyramid scale the model scans (its upsampling, chosen on val): its template is
            correlated only on levels at or below it.
    """

    label: int
    window: WindowSize
    template: np.ndarray
    bias: float
    max_scale: float = math.inf


@dataclass
class _Hits:
    """Raw window hits of one class in one image (before NMS)."""

    boxes: np.ndarray  # (N, 4) object boxes, image pixels, not clipped
    scores: np.ndarray  # (N,) SVM margins
    where: np.ndarray  # (N, 3) int64 (level, block row, block col) of each window in the padded level map
    scale: np.ndarray  # (N,) the pyramid scale of each window's level

    def below(self, max_scale: float) -> _Hits:
        """The hits found on levels at scales up to ``max_scale``."""
        keep = self.scale <= max_scale + 1e-9
        return _Hits(self.boxes[keep], self.scores[keep], self.where[keep], self.scale[keep])


class HogSvmDetector(Detector):
    """Dalal-Triggs HOG + linear SVM sliding-window detector, one model per class.

    Parameters:
        cell, block, bins: HOG cell size (pixels), block size (cells) and unsigned orientation bins.
        base_size: the window's area is about ``base_size ** 2`` pixels (its shape comes from the class).
        context: margin around the object inside the window, as a fraction of the object's extent per side.
        max_aspect: window aspect ratios are clipped to ``[1 / max_aspect, max_aspect]``.
        jitter: jittered copies of each positive (each also mirrored).
        negatives_per_image: random negative windows per training image and class.
        max_positives: the positive windows per class (copies included); the objects behind them are shared
            equally between the size bands (:data:`SIZE_BANDS`, water-filling: a band with fewer objects gives
            them all, the others share the rest), at most ``positives_per_image`` objects of an image.
        positives_per_image: at most this many objects per training image and class become positives.
        max_negatives: the random negative windows per class (spread over images and pyramid levels by
            :meth:`benchsuite.ops.negatives.NegativeSource.sample_boxes`).
        negative_overlap: a window counts as background when its IoU with every box of the class is below this.
        mining_rounds: rounds of hard-negative mining on the training images.
        hard_per_image: at most this many hard negatives per image, class and round.
        hard_per_round: at most this many hard negatives per class and round (the best-scoring ones).
        mining_threshold: windows scoring above this margin are mining candidates.
        mining_step: pyramid step while mining.
        max_upscale: the pyramid may start above scale 1 (up to this) to find objects smaller than the window.
        upscale_caps: candidate largest pyramid scales per class, chosen on val (those below the start scale
            the class's objects need, plus that scale): a class whose small objects do not pay for the upsampled
            levels' false positives and time scans without them.
        pad_cells: each pyramid level is padded by this many cells (mirrored border) on every side, so
            windows may reach past the border (an object touching the border keeps its context).
        c_values: candidate SVM C (chosen on val); hard negatives are mined with the first one, then each
            C is fitted on the same final training windows.
        steps: candidate pyramid steps (chosen on val).
        strides: candidate window strides in pixels, multiples of ``cell`` (chosen on val).
        nms_thresholds, score_thresholds: candidates chosen on val.
        max_detections: at most this many detections per image (best scores).
        svm_max_iter: L-BFGS iterations per SVM fit.
        tune_images: at most this many val images (a fixed random subset) score the hyper-parameters.
        min_template_cells: the floor on a shrunk window: its shorter side keeps at least this many HOG cells
            (a window shrinks for objects the pyramid cannot reach within ``max_upscale``; a 3 x 3-block
            template has too few features to tell a face from background). Never above the unshrunk window.
        max_small_upscale: a training image smaller than the window gives one upscaled negative window
            when it needs at most this factor beyond the start scale (:mod:`benchsuite.ops.negatives`).
    """

    id: ClassVar[str] = "hog-svm-det"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "Dalal-Triggs HOG + linear SVM, hard negatives, HOG-pyramid template correlation"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"base_size": 48, "c_values": (0.1,), "steps": (1.2,), "negatives_per_image": 10, "mining_rounds": 1,
                  "hard_per_image": 20, "max_upscale": 1.5, "mining_step": 1.3, "nms_thresholds": (0.3,),
                  "min_template_cells": 4},
        "full": {"max_negatives": 10000, "tune_images": 500},
    }

    def __init__(self, cell: int = 8, block: int = 2, bins: int = 9, base_size: int = 80, context: float = 0.15,
                 max_aspect: float = 3.0, jitter: int = 1, negatives_per_image: int = 20,
                 max_positives: int = 6000, positives_per_image: int = 50, max_negatives: int = 20000,
                 negative_overlap: float = 0.3, mining_rounds: int = 2, hard_per_image: int = 50,
                 hard_per_round: int = 8000, mining_threshold: float = -1.0, mining_step: float = 1.2,
                 max_upscale: float = 3.0, upscale_caps: tuple[float, ...] = (1.0, 1.5, 2.0), pad_cells: int = 2,
                 c_values: tuple[float, ...] = (0.1, 1.0), steps: tuple[float, ...] = (1.05, 1.1),
                 strides: tuple[int, ...] = (8,), nms_thresholds: tuple[float, ...] = (0.3, 0.5),
                 score_thresholds: tuple[float, ...] = (-1.0, -0.5, 0.0), max_detections: int = 100,
                 svm_max_iter: int = 200, tune_images: int | None = 300, min_template_cells: int = 6,
                 max_small_upscale: float = 2.0):
        self.cell = cell
        self.block = block
        self.bins = bins
        self.base_size = base_size
        self.context = context
        self.max_aspect = max_aspect
        self.jitter = jitter
        self.negatives_per_image = negatives_per_image
        self.max_positives = max_positives
        self.positives_per_image = positives_per_image
        self.max_negatives = max_negatives
        self.negative_overlap = negative_overlap
        self.mining_rounds = mining_rounds
        self.hard_per_image = hard_per_image
        self.hard_per_round = hard_per_round
        self.mining_threshold = mining_threshold
        self.mining_step = mining_step
        self.max_upscale = max_upscale
        self.upscale_caps = upscale_caps
        self.pad_cells = pad_cells
        self.c_values = c_values
        self.steps = steps
        self.strides = strides
        self.nms_thresholds = nms_thresholds
        self.score_thresholds = score_thresholds
        self.max_detections = max_detections
        self.svm_max_iter = svm_max_iter
        self.tune_images = tune_images
        self.min_template_cells = min_template_cells
        self.max_small_upscale = max_small_upscale

    # ------------------------------------------------------------------------------------ features

    def _crop_features(self, crops: np.ndarray, window: WindowSize) -> np.ndarray:
        """Flattened HOG ``(N, th * tw * D)`` of crops holding the window plus one cell of margin."""
        th, tw = self._template_shape(window)
        out = []
        for s in range(0, len(crops), 512):
            maps = hog_map(crops[s:s + 512], self.cell, self.block, self.bins)
            out.append(maps[:, 1:1 + th, 1:1 + tw].reshape(len(maps), -1))
        d = th * tw * self.block * self.block * self.bins
        return np.concatenate(out) if out else np.zeros((0, d), np.float32)

    def _template_shape(self, window: WindowSize) -> tuple[int, int]:
        return window[0] // self.cell - self.block + 1, window[1] // self.cell - self.block + 1

    # ------------------------------------------------------------------------------------ scanning

    def _scan(self, image: np.ndarray, models: list[ClassModel], step: float, stride: int, threshold: float,
              keep_maps: bool = False, peaks_only: bool = False) -> tuple[list[_Hits], list[np.ndarray]]:
        """:meth:`_scan_pyramid` with BLAS on one thread: its matrix products are small, and a
        multi-threaded OpenBLAS spinning on a busy machine made them many times slower."""
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._scan_pyramid(image, models, step, stride, threshold, keep_maps, peaks_only)

    def _scan_pyramid(self, image: np.ndarray, models: list[ClassModel], step: float, stride: int,
                      threshold: float, keep_maps: bool = False, peaks_only: bool = False
                      ) -> tuple[list[_Hits], list[np.ndarray]]:
        """Window hits scoring above ``threshold`` for every model, over the whole pyramid of ``image``.

        With ``peaks_only`` a hit must also be a maximum of its 3 x 3 neighbourhood in the level's score
        map: its neighbours (one stride away) overlap it heavily, so the NMS would mostly drop them anyway,
        and the NMS then sees a few hundred boxes instead of tens of thousands.

        The HOG map of a level is computed once and every model that scans the level (its ``max_scale`` at or
        above the level's scale) is correlated with it.

        Returns one :class:`_Hits` per model and, with ``keep_maps``, the padded HOG map of every level (None
        for a level no model scans).
        """
        cell = self.cell
        pad = self.pad_cells * cell
        every = max(1, int(stride) // cell)
        min_h = min(m.window[0] for m in models)
        min_w = min(m.window[1] for m in models)
        # a level qualifies when the smallest window fits into it once padded
        fit_window = (max(cell, min_h - 2 * pad), max(cell, min_w - 2 * pad))
        levels = image_pyramid(image, fit_window, step, self.start_scale_) if models else []
        found: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in models]
        maps: list[np.ndarray | None] = []
        for li, lev in enumerate(levels):
            active = [k for k, m in enumerate(models) if lev.scale <= m.max_scale + 1e-9]
            if not active:
                maps.append(None)
                continue
            img = lev.image
            if pad:
                img = cv2.copyMakeBorder(np.ascontiguousarray(img), pad, pad, pad, pad, cv2.BORDER_REFLECT)
            fmap = hog_map(img[None], cell, self.block, self.bins)[0]
            maps.append(fmap if keep_maps else None)
            scored = correlate_templates(fmap, [models[k].template for k in active], [models[k].bias for k in active])
            for k, scores in zip(active, scored):
                if scores.size == 0:
                    continue
                sub = np.ascontiguousarray(scores[::every, ::every])
                keep = sub > threshold
                if peaks_only:
                    keep &= local_maxima(sub)
                ii, jj = np.nonzero(keep)
                if not len(ii):
                    continue
                ii, jj = ii * every, jj * every
                pos = np.stack([ii * cell - pad, jj * cell - pad], axis=1)
                win = positions_to_boxes(pos, models[k].window, lev.scale_y, lev.scale_x)
                found[k].append((object_boxes(win, self.context), scores[ii, jj],
                                 np.stack([np.full(len(ii), li), ii, jj], axis=1), np.full(len(ii), lev.scale)))
        hits = []
        for parts in found:
            if parts:
                hits.append(_Hits(*(np.concatenate([p[j] for p in parts]) for j in range(2)),
                                  np.concatenate([p[2] for p in parts]).astype(np.int64),
                                  np.concatenate([p[3] for p in parts])))
            else:
                hits.append(_Hits(np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros((0, 3), np.int64),
                                  np.zeros(0)))
        return hits, (maps if keep_maps else [])

    def _postprocess(self, hits: list[_Hits], labels: list[int], width: int, height: int, nms_threshold: float,
                     score_threshold: float) -> Detections:
        """NMS per class on hits above ``score_threshold``, clipped, best ``max_detections`` kept."""
        return Detections(*class_detections([(h.boxes, h.scores) for h in hits], labels, width, height, nms_threshold,
                                            score_threshold, self.max_detections))

    # ------------------------------------------------------------------------------------ training

    def _class_boxes(self, s: Any, k: int, with_difficult: bool) -> np.ndarray:
        keep = s.labels == k
        if not with_difficult:
            keep &= ~s.difficult
        return s.boxes[keep]

    def _fit_svm(self, pos: np.ndarray, neg: np.ndarray, c: float, window: WindowSize, label: int) -> ClassModel:
        x = np.concatenate([pos, neg])
        y = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
        svm = LinearSVM(C=c, max_iter=self.svm_max_iter).fit(x, y)
        if not np.any(svm.coef_[0]):
            raise EmptyModelError(f"hog-svm-det: the SVM of class {label} learned all-zero weights from "
                                  f"{len(pos)} positive and {len(neg)} negative windows")
        th, tw = self._template_shape(window)
        template = svm.coef_[0].reshape(th, tw, -1).astype(np.float32)
        return ClassModel(label, window, template, float(svm.intercept_[0]))

    def _fit_svms(self, pos: dict[int, np.ndarray], neg: dict[int, np.ndarray], c: float,
                  windows: dict[int, WindowSize], phase: str) -> list[ClassModel]:
        """One SVM per class (sorted labels), with a log line per class (its windows and seconds)."""
        models = []
        for k in sorted(windows):
            t = time.perf_counter()
            models.append(self._fit_svm(pos[k], neg[k], c, windows[k], k))
            log.info("%s: class %d, %d positive and %d negative windows of %d features, %.1f s", phase, k,
                     len(pos[k]), len(neg[k]), pos[k].shape[1], time.perf_counter() - t)
        return models

    def _mine(self, train: DetectionSet, models: list[ClassModel], sources: list[NegativeSource], ctx: Context,
              round_no: int) -> list[np.ndarray]:
        """Hard negatives per model: the best-scoring windows that overlap no box of the model's class, over
        every training image (one scan of each image for all classes,
        :func:`benchsuite.ops.negatives.mine_sources`); features read straight off the HOG map."""

        def scan(i: int, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, Any]]:
            hits, maps = self._scan(image, models, self.mining_step, self.cell, self.mining_threshold,
                                    keep_maps=True)

            def extractor(h: _Hits, m: ClassModel) -> Any:
                th, tw = m.template.shape[:2]
                return lambda idx: np.stack([maps[li][r:r + th, c:c + tw].reshape(-1) for li, r, c in h.where[idx]])

            return [(h.boxes, h.scores, extractor(h, m)) for h, m in zip(hits, models)]

        per_image = self.hard_per_image
        phase = f"hard negatives, round {round_no} of {self.mining_rounds}"
        mined = mine_sources(sources, scan, count=min(self.hard_per_round, per_image * max(1, len(train))),
                             per_image=per_image, threshold=self.mining_threshold,
                             progress=lambda it, desc: ctx.progress(logged(it, log, f"{phase}: images scanned",
                                                                           len(train)), desc=phase))
        return [h.features.astype(np.float32) if h.features is not None else np.zeros((0, m.template.size), np.float32)
                for h, m in zip(mined, models)]

    def _train_models(self, train: DetectionSet, windows: dict[int, WindowSize], pos: dict[int, np.ndarray],
                      neg: dict[int, np.ndarray], sources: dict[int, NegativeSource], c: float, ctx: Context
                      ) -> tuple[list[ClassModel], dict[int, np.ndarray], dict]:
        """SVMs at ``c`` with ``mining_rounds`` rounds of hard-negative mining: (models, negatives, facts)."""
        labels = sorted(windows)
        models = self._fit_svms(pos, neg, c, windows, f"SVMs at C={c:g} on random negatives")
        negs = {k: neg[k] for k in labels}
        mined: dict[str, list[int]] = {train.classes[k]: [] for k in labels}
        for r in range(1, self.mining_rounds + 1):
            hard = self._mine(train, models, [sources[k] for k in labels], ctx, r)
            for j, k in enumerate(labels):
                mined[train.classes[k]].append(len(hard[j]))
                if len(hard[j]):
                    negs[k] = np.concatenate([negs[k], hard[j]])
            log.info("hard negatives, round %d of %d: %s", r, self.mining_rounds,
                     ", ".join(f"{train.classes[k]} {len(hard[j])} (negatives now {len(negs[k])})"
                               for j, k in enumerate(labels)))
            models = self._fit_svms(pos, negs, c, windows, f"SVMs at C={c:g} after round {r}")
        return models, negs, {"hard_negatives_per_round": mined, "mined_with_C": c,
                              "negatives": {train.classes[k]: len(negs[k]) for k in labels}}

    def _negative_sources(self, train: DetectionSet, windows: dict[int, WindowSize]) -> dict[int, NegativeSource]:
        """One :class:`~benchsuite.ops.negatives.NegativeSource` per class: the background windows of the
        training images at the pyramid scales detection scans (other classes' objects are background)."""
        return {k: NegativeSource.from_dataset(train, k, win, max_overlap=self.negative_overlap,
                                               start_scale=self.start_scale_, step=self.mining_step,
                                               stride=self.cell, max_small_upscale=self.max_small_upscale)
                for k, win in windows.items()}

    def _positive_plan(self, train: DetectionSet, k: int, rng: np.random.Generator
                       ) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
        """The objects of class ``k`` that become positives, within the budgets: at most
        ``positives_per_image`` per image (a random subset), then ``max_positives / copies`` objects shared
        between the size bands by water-filling (a band with fewer objects gives them all). Returns
        ``{image index: indices into its non-difficult boxes of the class}`` and the budget's facts."""
        copies = (1 + self.jitter) * 2
        images, index, heights = [], [], []
        for i, s in enumerate(train):
            boxes = self._class_boxes(s, k, False)
            idx = np.arange(len(boxes))
            if len(idx) > self.positives_per_image:
                idx = np.sort(rng.choice(len(idx), self.positives_per_image, replace=False))
            images.append(np.full(len(idx), i))
            index.append(idx)
            heights.append(boxes[idx, 3] - boxes[idx, 1])
        image_of, box_of = np.concatenate(images).astype(np.int64), np.concatenate(index).astype(np.int64)
        bands = size_bands(np.concatenate(heights))
        available = np.bincount(bands, minlength=len(SIZE_BANDS) + 1)
        take = water_fill(available, max(1, self.max_positives // copies))
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(bands == b))[:t] for b, t in enumerate(take)]))
        plan = {int(i): box_of[keep][image_of[keep] == i] for i in np.unique(image_of[keep])}
        facts = {"objects_per_band": {n: [int(a), int(t)] for n, a, t in zip(band_names(), available, take)},
                 "positives_per_image": self.positives_per_image, "copies_per_object": copies}
        return plan, facts

    def _collect_windows(self, train: DetectionSet, windows: dict[int, WindowSize],
                         sources: dict[int, NegativeSource], ctx: Context
                         ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[str, dict[str, int]],
                                    dict[str, dict[str, Any]]]:
        """HOG features of the positive and random negative training windows per class (within the budgets:
        :meth:`_positive_plan`, ``max_negatives`` / ``negatives_per_image``), the negative source's counts
        per class and the positive budget's facts per class (for ``fit_info``)."""
        rng = ctx.rng(11)
        labels = sorted(windows)
        pos: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        neg: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        plan_rng = ctx.rng(13)  # its own stream: the negatives and jitter draw as they did before the budgets
        plans = {k: self._positive_plan(train, k, plan_rng) for k in labels}
        want = min(self.max_negatives, self.negatives_per_image * max(1, len(train)))
        t = time.perf_counter()
        sampled = {k: sources[k].sample_boxes(want, rng) for k in labels}
        log.info("training windows: %s random background windows drawn in %.1f s, positives planned: %s",
                 ", ".join(f"{train.classes[k]} {len(sampled[k])} of {want}" for k in labels),
                 time.perf_counter() - t, ", ".join(f"{train.classes[k]} {sum(map(len, plans[k][0].values()))} "
                                                   f"objects" for k in labels))

        def counts() -> dict[str, Any]:
            return {"positive_windows": sum(len(f) for k in labels for f in pos[k]),
                    "negative_windows": sum(len(f) for k in labels for f in neg[k])}

        images = logged(range(len(train)), log, "training windows: images read", facts=counts)
        for i in ctx.progress(images, total=len(train), desc="training windows"):
            s = train[i]
            chosen = {k: plans[k][0].get(i, np.zeros(0, np.int64)) for k in labels}
            if not any(len(c) for c in chosen.values()) and not any(len(sampled[k].of_image(i)) for k in labels):
                continue  # neither planned objects nor sampled background: nothing to read
            image = train.load_image(i)
            for k in labels:
                boxes = self._class_boxes(s, k, False)[chosen[k]]
                if len(boxes):
                    crops = positive_crops(image, boxes, windows[k], self.context, margin=self.cell, flip=True,
                                           jitter=self.jitter, rng=rng)
                    pos[k].append(self._crop_features(crops, windows[k]))
                nb = sampled[k].of_image(i)
                if len(nb):
                    neg[k].append(self._crop_features(crop_windows(image, nb, windows[k], self.cell), windows[k]))
        out_pos, out_neg = {}, {}
        for k in labels:
            d = int(np.prod(self._template_shape(windows[k]))) * self.block * self.block * self.bins
            out_pos[k] = np.concatenate(pos[k]) if pos[k] else np.zeros((0, d), np.float32)
            out_neg[k] = np.concatenate(neg[k]) if neg[k] else np.zeros((0, d), np.float32)
        return (out_pos, out_neg, {train.classes[k]: sampled[k].stats.as_dict() for k in labels},
                {train.classes[k]: plans[k][1] for k in labels})

    def _val_raw(self, val: DetectionSet, images: list[np.ndarray], models: list[ClassModel], step: float,
                 stride: int) -> list[list[_Hits]]:
        """Raw hits of every val image (at the lowest candidate score threshold), with a progress line."""
        low = min(self.score_thresholds)
        phase = f"val scan (pyramid step {step:g}, stride {stride})"
        return [self._scan(im, models, step, stride, low, peaks_only=True)[0] for im in logged(images, log, phase)]

    def _val_choice(self, val: DetectionSet, raw: list[list[_Hits]], models: list[ClassModel], ctx: Context
                    ) -> Choice:
        """The NMS and score thresholds with the best val mAP50 for raw hits (an inner, unrecorded choice: its
        settings join the candidate's that made the hits)."""
        labels = [m.label for m in models]

        def val_map50(s: dict[str, Any]) -> float:
            dets = [self._postprocess(r, labels, v.width, v.height, s["nms_threshold"], s["score_threshold"])
                    for r, v in zip(raw, val)]
            return score_detections(val, dets, val.classes, ("voc",))["map50"]

        # score thresholds descending: on a tie the higher threshold wins
        grid = [{"nms_threshold": float(t_nms), "score_threshold": float(t_score)} for t_nms in self.nms_thresholds
                for t_score in sorted(self.score_thresholds, reverse=True)]
        return ctx.select(grid, val_map50, metric="val_map50", record=False)

    def _window_and_start(self, boxes: np.ndarray) -> tuple[WindowSize, float]:
        """The window of a class and the pyramid scale its smaller objects (10th percentile of the window
        boxes' heights) need to fill it. When that scale would exceed ``max_upscale`` (tiny objects) the
        window shrinks instead, so the pyramid reaches them, but its shorter side keeps at least
        ``min_template_cells`` cells (never more than the unshrunk window's)."""

        def h10(win: WindowSize) -> float:
            heights = np.diff(window_boxes(boxes, win, self.context)[:, 1::2], axis=1)
            return max(1.0, float(np.percentile(heights, 10)))

        win = choose_window(boxes, self.base_size, self.cell, max_aspect=self.max_aspect)
        if win[0] / h10(win) > self.max_upscale:
            floor = min(min(win), self.min_template_cells * self.cell)
            base = min(float(self.base_size), self.base_size * self.max_upscale * h10(win) / win[0])
            while True:
                small = choose_window(boxes, max(1, round(base)), self.cell, max_aspect=self.max_aspect)
                if min(small) >= floor or base >= self.base_size:
                    break
                base = min(float(self.base_size), base * 1.1 + 1)
            win = small
        return win, win[0] / h10(win)

    def _min_reach(self, model: ClassModel) -> float:
        """The smallest object height (image pixels) the model can find: at its largest pyramid scale, the
        window's object box centred on a smaller object overlaps it with IoU under 0.5 (IoU of nested boxes of
        the same shape is the area ratio, so the height ratio must be at least 1 / sqrt(2))."""
        object_h = model.window[0] / (1 + 2 * self.context)
        return object_h / min(model.max_scale, self.start_scale_) / math.sqrt(2)

    def _reach(self, data: DetectionSet, models: list[ClassModel]) -> dict[str, dict[str, Any]]:
        """Per class: the smallest reachable object height, and the non-difficult objects of ``data`` below it
        per size band (of all objects per band)."""
        out = {}
        for m in models:
            boxes = [self._class_boxes(s, m.label, False) for s in data]
            heights = np.concatenate([b[:, 3] - b[:, 1] for b in boxes]) if boxes else np.zeros(0)
            reach = self._min_reach(m)
            out[data.classes[m.label]] = {"min_height_px": round(reach, 1), "max_scale": round(
                min(m.max_scale, self.start_scale_), 3), "objects": band_counts(heights),
                "below_reach": band_counts(heights[heights < reach])}
        return out

    def _choose_upscale(self, val: DetectionSet, raw: list[list[_Hits]], needs: dict[int, float], ctx: Context
                        ) -> None:
        """Each model's largest pyramid scale, chosen on val by the class's AP50 among ``upscale_caps`` below
        the scale its objects need (and that scale), with the chosen NMS and score thresholds; then the pyramid
        starts at the largest level any model scans (the same levels as before, fewer of them)."""
        for j, m in enumerate(self.models_):
            name = val.classes[m.label]
            caps = sorted({float(c) for c in self.upscale_caps if c < needs[m.label]} | {needs[m.label]})

            def class_ap(s: dict[str, Any], j: int = j, m: ClassModel = m, name: str = name) -> float:
                dets = [self._postprocess([r[j].below(s["max_scale"])], [m.label], v.width, v.height,
                                          self.nms_threshold_, self.score_threshold_) for r, v in zip(raw, val)]
                return score_detections(val, dets, val.classes, ("voc",))["per_class"][name]["ap50"]

            if len(caps) > 1:
                m.max_scale = float(ctx.select([{"max_scale": c} for c in caps], class_ap, metric="val_ap50",
                                               for_class=name).settings["max_scale"])
            else:
                m.max_scale = caps[0]
        top = max(m.max_scale for m in self.models_)
        while self.start_scale_ > top + 1e-9:  # the same levels: pyramid_scales divides by the step
            self.start_scale_ /= self.step_

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> HogSvmDetector:
        if any(int(s) % self.cell for s in self.strides):
            raise ValueError(f"hog-svm-det: strides {self.strides} must be multiples of the cell ({self.cell} px)")
        t0 = time.perf_counter()
        windows: dict[int, WindowSize] = {}
        needs: dict[int, float] = {}  # the pyramid scale each class's smaller objects need, within max_upscale
        for k in range(train.num_classes):
            boxes = [self._class_boxes(s, k, False) for s in train]
            boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
            if not len(boxes):
                continue
            windows[k], start = self._window_and_start(boxes)
            needs[k] = float(min(self.max_upscale, max(1.0, start)))
        self.start_scale_ = max([1.0, *needs.values()])
        self.classes_ = tuple(train.classes)
        if not windows:
            raise EmptyModelError(f"hog-svm-det: no training boxes for any class in {len(train)} training images")
        sources = self._negative_sources(train, windows)
        log.info("windows %s, pyramid from scale %.2f (%s)", {train.classes[k]: list(w) for k, w in windows.items()},
                 self.start_scale_, ", ".join(f"{train.classes[k]} needs {v:.2f}" for k, v in needs.items()))
        pos, neg, neg_stats, pos_budget = self._collect_windows(train, windows, sources, ctx)
        skipped = {train.classes[k]: "no background windows in the training images" for k in list(windows)
                   if not len(neg[k])}
        for k in [k for k in windows if not len(neg[k])]:
            del windows[k]
        if not windows:
            first = next(iter(neg_stats.values()))
            raise EmptyModelError(
                f"hog-svm-det: no background windows to train against ({first['images']} training images, "
                f"{first['images_with_background']} with background at the window's scales, "
                f"{first['small_images_skipped']} too small for the window)")
        t_windows = time.perf_counter() - t0
        tuned_on_all_val = self.tune_images is None or len(val) <= self.tune_images
        if not tuned_on_all_val:
            val = val.subset(np.sort(ctx.rng(12).choice(len(val), self.tune_images, replace=False)))
        val_images = [val.load_image(i) for i in range(len(val))]

        # 1) hard negatives mined with the first C; every C is then fitted on the final training set and
        #    scored on val at the first step / stride candidates
        step0, stride0 = float(self.steps[0]), int(self.strides[0])
        c0 = float(self.c_values[0])
        mined_models, negs, facts = self._train_models(train, windows, pos, neg, sources, c0, ctx)

        def with_c(s: dict[str, Any]) -> tuple[float | None, tuple[list[ClassModel], list]]:
            models = mined_models if s["C"] == c0 else self._fit_svms(pos, negs, s["C"], windows,
                                                                      f"SVMs at C={s['C']:g}")
            raw = self._val_raw(val, val_images, models, step0, stride0)
            return self._val_choice(val, raw, models, ctx).score, (models, raw)

        by_c = ctx.select([{"C": float(c), "pyramid_step": step0, "stride": stride0} for c in self.c_values], with_c,
                          metric="val_map50")
        self.C_ = by_c.settings["C"]
        self.models_, raw0 = by_c.payload

        # 2) pyramid step, stride, NMS and score thresholds for that model
        raws: dict[tuple[float, int], list[list[_Hits]]] = {(step0, stride0): raw0}

        def with_scan(s: dict[str, Any]) -> Choice:
            key = (s["pyramid_step"], s["stride"])
            if key not in raws:
                raws[key] = self._val_raw(val, val_images, self.models_, s["pyramid_step"], s["stride"])
            return self._val_choice(val, raws[key], self.models_, ctx)

        best = ctx.select([{"C": self.C_, "pyramid_step": float(step), "stride": int(stride)} for step in self.steps
                           for stride in self.strides], with_scan, metric="val_map50")
        self.step_, self.stride_ = best.settings["pyramid_step"], best.settings["stride"]
        self.nms_threshold_, self.score_threshold_ = best.settings["nms_threshold"], best.settings["score_threshold"]
        # 3) per class, the largest pyramid scale it scans (its upsampling)
        raw = raws[(self.step_, self.stride_)]
        self._choose_upscale(val, raw, needs, ctx)
        labels = [m.label for m in self.models_]
        final = [self._postprocess([h.below(m.max_scale) for h, m in zip(r, self.models_)], labels, v.width,
                                   v.height, self.nms_threshold_, self.score_threshold_) for r, v in zip(raw, val)]
        val_ap = float(score_detections(val, final, val.classes, ("voc",))["map50"] or 0.0)
        # the chosen model's detections of every val image (what ``detect`` gives them), for the floor's verdict
        self.val_detections_ = final if tuned_on_all_val else None
        reach = {"train": self._reach(train, self.models_), "val": self._reach(val, self.models_)}
        for split, per_class in reach.items():
            for name, r in per_class.items():
                if sum(r["below_reach"].values()):
                    log.info("%s %s: %d of %d objects below reach (under %.1f px high): %s", split, name,
                             sum(r["below_reach"].values()), sum(r["objects"].values()), r["min_height_px"],
                             r["below_reach"])
        ctx.record(
            classes_trained=[train.classes[k] for k in sorted(windows)],
            windows={train.classes[k]: list(w) for k, w in windows.items()},
            template_blocks={train.classes[m.label]: list(m.template.shape) for m in self.models_},
            positives={train.classes[k]: len(pos[k]) for k in sorted(windows)}, positive_budget=pos_budget,
            hard_per_round=self.hard_per_round, reach=reach,
            random_negatives={train.classes[k]: len(neg[k]) for k in sorted(windows)},
            negative_source=neg_stats, classes_skipped=skipped,
            **facts,
            C=self.C_, pyramid_step=self.step_, stride=self.stride_, nms_threshold=self.nms_threshold_,
            score_threshold=self.score_threshold_, start_scale=self.start_scale_, val_map50=round(val_ap, 4),
            window_collection_s=round(t_windows, 2),
        )
        return self

    # ------------------------------------------------------------------------------------ inference

    def detect(self, image: np.ndarray) -> Detections:
        if not self.models_:
            return Detections.empty()
        hits, _ = self._scan(image, self.models_, self.step_, self.stride_, self.score_threshold_, peaks_only=True)
        return self._postprocess(hits, [m.label for m in self.models_], image.shape[1], image.shape[0],
                                 self.nms_threshold_, self.score_threshold_)

