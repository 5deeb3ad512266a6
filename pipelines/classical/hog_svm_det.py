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
   (down to ``min_base_size``) and the pyramid starts upsampled (up to ``max_upscale``) to reach them;
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
by AP50 on the validation split (never on test) and recorded in ``fit_info``.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

from benchsuite.api import Choice, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.correlation import correlate_templates
from benchsuite.ops.hog import hog_map
from benchsuite.ops.linear_svm import LinearSVM
from benchsuite.ops.negatives import NegativeSource, mine_sources
from benchsuite.ops.windows import (
    WindowSize,
    class_detections,
    class_window,
    crop_windows,
    image_pyramid,
    local_maxima,
    object_boxes,
    positions_to_boxes,
    positive_crops,
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
    """

    label: int
    window: WindowSize
    template: np.ndarray
    bias: float


@dataclass
class _Hits:
    """Raw window hits of one class in one image (before NMS)."""

    boxes: np.ndarray  # (N, 4) object boxes, image pixels, not clipped
    scores: np.ndarray  # (N,) SVM margins
    where: np.ndarray  # (N, 3) int64 (level, block row, block col) of each window in the padded level map


class HogSvmDetector(Detector):
    """Dalal-Triggs HOG + linear SVM sliding-window detector, one model per class.

    Parameters:
        cell, block, bins: HOG cell size (pixels), block size (cells) and unsigned orientation bins.
        base_size: the window's area is about ``base_size ** 2`` pixels (its shape comes from the class).
        context: margin around the object inside the window, as a fraction of the object's extent per side.
        max_aspect: window aspect ratios are clipped to ``[1 / max_aspect, max_aspect]``.
        jitter: jittered copies of each positive (each also mirrored).
        negatives_per_image: random negative windows per training image and class.
        max_positives, max_negatives: caps on the training windows per class (random subsets).
        negative_overlap: a window counts as background when its IoU with every box of the class is below this.
        mining_rounds: rounds of hard-negative mining on the training images.
        hard_per_image: at most this many hard negatives per image, class and round.
        mining_threshold: windows scoring above this margin are mining candidates.
        mining_step: pyramid step while mining.
        max_upscale: the pyramid may start above scale 1 (up to this) to find objects smaller than the window.
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
        min_base_size: the smallest ``base_size`` the window may shrink to for tiny objects (when the
            pyramid would need more than ``max_upscale`` to reach them).
        max_small_upscale: a training image smaller than the window gives one upscaled negative window
            when it needs at most this factor beyond the start scale (:mod:`benchsuite.ops.negatives`).
    """

    id: ClassVar[str] = "hog-svm-det"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "Dalal-Triggs HOG + linear SVM, hard negatives, HOG-pyramid template correlation"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"base_size": 48, "c_values": (0.1,), "steps": (1.2,), "negatives_per_image": 10, "mining_rounds": 1,
                  "hard_per_image": 20, "max_upscale": 1.5, "mining_step": 1.3, "nms_thresholds": (0.3,)},
        "full": {"max_negatives": 10000, "tune_images": 500},
    }

    def __init__(self, cell: int = 8, block: int = 2, bins: int = 9, base_size: int = 80, context: float = 0.15,
                 max_aspect: float = 3.0, jitter: int = 1, negatives_per_image: int = 20,
                 max_positives: int = 6000, max_negatives: int = 20000, negative_overlap: float = 0.3,
                 mining_rounds: int = 2, hard_per_image: int = 50, mining_threshold: float = -1.0,
                 mining_step: float = 1.2, max_upscale: float = 2.0, pad_cells: int = 2,
                 c_values: tuple[float, ...] = (0.1, 1.0), steps: tuple[float, ...] = (1.05, 1.1),
                 strides: tuple[int, ...] = (8,), nms_thresholds: tuple[float, ...] = (0.3, 0.5),
                 score_thresholds: tuple[float, ...] = (-1.0, -0.5, 0.0), max_detections: int = 100,
                 svm_max_iter: int = 200, tune_images: int | None = 300, min_base_size: int = 32,
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
        self.max_negatives = max_negatives
        self.negative_overlap = negative_overlap
        self.mining_rounds = mining_rounds
        self.hard_per_image = hard_per_image
        self.mining_threshold = mining_threshold
        self.mining_step = mining_step
        self.max_upscale = max_upscale
        self.pad_cells = pad_cells
        self.c_values = c_values
        self.steps = steps
        self.strides = strides
        self.nms_thresholds = nms_thresholds
        self.score_thresholds = score_thresholds
        self.max_detections = max_detections
        self.svm_max_iter = svm_max_iter
        self.tune_images = tune_images
        self.min_base_size = min_base_size
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

        Returns one :class:`_Hits` per model and, with ``keep_maps``, the padded HOG map of every level.
        """
        cell = self.cell
        pad = self.pad_cells * cell
        every = max(1, int(stride) // cell)
        min_h = min(m.window[0] for m in models)
        min_w = min(m.window[1] for m in models)
        # a level qualifies when the smallest window fits into it once padded
        fit_window = (max(cell, min_h - 2 * pad), max(cell, min_w - 2 * pad))
        levels = image_pyramid(image, fit_window, step, self.start_scale_) if models else []
        found: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in models]
        maps = []
        templates = [m.template for m in models]
        biases = [m.bias for m in models]
        for li, lev in enumerate(levels):
            img = lev.image
            if pad:
                img = cv2.copyMakeBorder(np.ascontiguousarray(img), pad, pad, pad, pad, cv2.BORDER_REFLECT)
            fmap = hog_map(img[None], cell, self.block, self.bins)[0]
            if keep_maps:
                maps.append(fmap)
            for k, scores in enumerate(correlate_templates(fmap, templates, biases)):
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
                                 np.stack([np.full(len(ii), li), ii, jj], axis=1)))
        hits = []
        for parts in found:
            if parts:
                hits.append(_Hits(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                                  np.concatenate([p[2] for p in parts]).astype(np.int64)))
            else:
                hits.append(_Hits(np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros((0, 3), np.int64)))
        return hits, maps

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
        mined = mine_sources(sources, scan, count=per_image * max(1, len(train)), per_image=per_image,
                             threshold=self.mining_threshold,
                             progress=lambda it, desc: ctx.progress(it, desc=f"{desc}, round {round_no}"))
        return [h.features.astype(np.float32) if h.features is not None else np.zeros((0, m.template.size), np.float32)
                for h, m in zip(mined, models)]

    def _train_models(self, train: DetectionSet, windows: dict[int, WindowSize], pos: dict[int, np.ndarray],
                      neg: dict[int, np.ndarray], sources: dict[int, NegativeSource], c: float, ctx: Context
                      ) -> tuple[list[ClassModel], dict[int, np.ndarray], dict]:
        """SVMs at ``c`` with ``mining_rounds`` rounds of hard-negative mining: (models, negatives, facts)."""
        labels = sorted(windows)
        models = [self._fit_svm(pos[k], neg[k], c, windows[k], k) for k in labels]
        negs = {k: neg[k] for k in labels}
        mined: dict[str, list[int]] = {train.classes[k]: [] for k in labels}
        for r in range(1, self.mining_rounds + 1):
            hard = self._mine(train, models, [sources[k] for k in labels], ctx, r)
            for j, k in enumerate(labels):
                mined[train.classes[k]].append(len(hard[j]))
                if len(hard[j]):
                    negs[k] = np.concatenate([negs[k], hard[j]])
            models = [self._fit_svm(pos[k], negs[k], c, windows[k], k) for k in labels]
        return models, negs, {"hard_negatives_per_round": mined, "mined_with_C": c,
                              "negatives": {train.classes[k]: len(negs[k]) for k in labels}}

    def _negative_sources(self, train: DetectionSet, windows: dict[int, WindowSize]) -> dict[int, NegativeSource]:
        """One :class:`~benchsuite.ops.negatives.NegativeSource` per class: the background windows of the
        training images at the pyramid scales detection scans (other classes' objects are background)."""
        return {k: NegativeSource.from_dataset(train, k, win, max_overlap=self.negative_overlap,
                                               start_scale=self.start_scale_, step=self.mining_step,
                                               stride=self.cell, max_small_upscale=self.max_small_upscale)
                for k, win in windows.items()}

    def _collect_windows(self, train: DetectionSet, windows: dict[int, WindowSize],
                         sources: dict[int, NegativeSource], ctx: Context
                         ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[str, dict[str, int]]]:
        """HOG features of the positive and random negative training windows per class, and the negative
        source's counts per class (for ``fit_info``)."""
        rng = ctx.rng(11)
        labels = sorted(windows)
        pos: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        neg: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        want = min(self.max_negatives, self.negatives_per_image * max(1, len(train)))
        sampled = {k: sources[k].sample_boxes(want, rng) for k in labels}
        for i in ctx.progress(range(len(train)), desc="training windows"):
            s = train[i]
            if not len(s.labels) and not any((sampled[k].image_index == i).any() for k in labels):
                continue  # neither objects nor sampled background: nothing to read
            image = train.load_image(i)
            for k in labels:
                boxes = self._class_boxes(s, k, False)
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
            p = np.concatenate(pos[k]) if pos[k] else np.zeros((0, d), np.float32)
            n = np.concatenate(neg[k]) if neg[k] else np.zeros((0, d), np.float32)
            if len(p) > self.max_positives:
                p = p[np.sort(rng.choice(len(p), self.max_positives, replace=False))]
            out_pos[k], out_neg[k] = p, n
        return out_pos, out_neg, {train.classes[k]: sampled[k].stats.as_dict() for k in labels}

    def _val_raw(self, val: DetectionSet, images: list[np.ndarray], models: list[ClassModel], step: float,
                 stride: int) -> list[list[_Hits]]:
        low = min(self.score_thresholds)
        return [self._scan(im, models, step, stride, low, peaks_only=True)[0] for im in images]

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
        """The window of a class and the pyramid scale its smaller objects need (:func:`class_window`)."""
        return class_window(boxes, self.base_size, self.cell, self.context, self.max_aspect, self.max_upscale,
                            self.min_base_size)

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> HogSvmDetector:
        if any(int(s) % self.cell for s in self.strides):
            raise ValueError(f"hog-svm-det: strides {self.strides} must be multiples of the cell ({self.cell} px)")
        t0 = time.perf_counter()
        windows: dict[int, WindowSize] = {}
        starts = []
        for k in range(train.num_classes):
            boxes = [self._class_boxes(s, k, False) for s in train]
            boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
            if not len(boxes):
                continue
            windows[k], start = self._window_and_start(boxes)
            starts.append(start)
        self.start_scale_ = float(min(self.max_upscale, max([1.0, *starts])))
        self.classes_ = tuple(train.classes)
        if not windows:
            raise EmptyModelError(f"hog-svm-det: no training boxes for any class in {len(train)} training images")
        sources = self._negative_sources(train, windows)
        pos, neg, neg_stats = self._collect_windows(train, windows, sources, ctx)
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
        if self.tune_images is not None and len(val) > self.tune_images:
            val = val.subset(np.sort(ctx.rng(12).choice(len(val), self.tune_images, replace=False)))
        val_images = [val.load_image(i) for i in range(len(val))]

        # 1) hard negatives mined with the first C; every C is then fitted on the final training set and
        #    scored on val at the first step / stride candidates
        step0, stride0 = float(self.steps[0]), int(self.strides[0])
        c0 = float(self.c_values[0])
        mined_models, negs, facts = self._train_models(train, windows, pos, neg, sources, c0, ctx)

        def with_c(s: dict[str, Any]) -> tuple[float | None, tuple[list[ClassModel], list]]:
            models = mined_models if s["C"] == c0 else [
                self._fit_svm(pos[k], negs[k], s["C"], windows[k], k) for k in sorted(windows)]
            raw = self._val_raw(val, val_images, models, step0, stride0)
            return self._val_choice(val, raw, models, ctx).score, (models, raw)

        by_c = ctx.select([{"C": float(c), "pyramid_step": step0, "stride": stride0} for c in self.c_values], with_c,
                          metric="val_map50")
        self.C_ = by_c.settings["C"]
        self.models_, raw0 = by_c.payload

        # 2) pyramid step, stride, NMS and score thresholds for that model
        def with_scan(s: dict[str, Any]) -> Choice:
            first = s["pyramid_step"] == step0 and s["stride"] == stride0
            raw = raw0 if first else self._val_raw(val, val_images, self.models_, s["pyramid_step"], s["stride"])
            return self._val_choice(val, raw, self.models_, ctx)

        best = ctx.select([{"C": self.C_, "pyramid_step": float(step), "stride": int(stride)} for step in self.steps
                           for stride in self.strides], with_scan, metric="val_map50")
        self.step_, self.stride_ = best.settings["pyramid_step"], best.settings["stride"]
        self.nms_threshold_, self.score_threshold_ = best.settings["nms_threshold"], best.settings["score_threshold"]
        val_ap = best.score or 0.0
        ctx.record(
            classes_trained=[train.classes[k] for k in sorted(windows)],
            windows={train.classes[k]: list(w) for k, w in windows.items()},
            template_blocks={train.classes[m.label]: list(m.template.shape) for m in self.models_},
            positives={train.classes[k]: len(pos[k]) for k in sorted(windows)},
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

