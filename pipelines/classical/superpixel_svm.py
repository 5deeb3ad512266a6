"""``superpixel-svm``: the classical segmenter, a region classifier over superpixels.

Each image is cut into superpixels (SLIC by default, or Felzenszwalb–Huttenlocher), every region is described by
its colour in CIE Lab (means, spreads, histograms), its texture (local binary patterns, Gaussian-derivative
histograms), the HOG of its enlarged box, its position and size and its neighbours' colour and texture
(:func:`benchsuite.ops.superpixels.featurise`), and a linear SVM per class (:mod:`benchsuite.ops.linear_svm`, one
shared L-BFGS run for the whole grid of C) scores it; each training region takes its majority class from the
mask and counts once (``weight_by_area``: weighted by its pixel count instead). The class scores are then smoothed over
the region adjacency graph, or not: ``average`` (label propagation with contrast-sensitive edges,
:func:`~benchsuite.ops.superpixels.smooth_scores`) or ``potts`` (a Potts model on the graph solved by iterated
conditional modes, :func:`~benchsuite.ops.superpixels.potts_icm`). C and the smoothing are chosen together on the
val split by mean IU (:meth:`benchsuite.api.Context.select`), then the SVM is fitted again with the chosen C on the
train and val regions (``refit``), as the suite's other linear-SVM pipelines do.

Images larger than ``max_side`` on their longer side (0: no limit) are shrunk before the superpixels are cut,
and the region labels are painted back at the image's full size.

The defaults are the settings of the best val mean IU on Penn-Fudan (80 train, 20 val images; each setting's own
C and smoothing chosen on val as above; test never looked at): images shrunk to 400 px (0.709 against 0.699 at full
size, a third of the featurisation time), regions counted once rather than by their pixels (0.709 against 0.699),
the ``layout`` prior on a 6 x 6 grid (0.713; 4 x 4: 0.705), 300 SLIC regions (500: 0.704), the HOG box twice the
region's (three times: 0.693), no class balancing (0.672).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context
from benchsuite.data.voc_segmentation import SegmentationSet
from benchsuite.errors import EmptyModelError
from benchsuite.metrics.segmentation import confusion_matrix, fcn_scores
from benchsuite.ops import superpixels as sp
from benchsuite.ops.linear_svm import LinearSVM, fit_svms
from benchsuite.tasks.segmentation import Segmenter

SMOOTHINGS = ("none", "average", "potts")
#: the score of a class that no training region had (never chosen)
ABSENT = -1e3


@dataclass
class Regions:
    """One image as regions: ``labels`` ``(h, w)`` int64 at the working size, the region features ``(R, D)``,
    the region graph, the regions' mean Lab colour ``(R, 3)`` and the image's full ``shape`` ``(H, W)``."""

    labels: np.ndarray
    features: np.ndarray
    graph: sp.RegionGraph
    lab: np.ndarray
    shape: tuple[int, int]


def working_size(shape: tuple[int, ...], max_side: int) -> tuple[int, int] | None:
    """``(width, height)`` to shrink an image of ``shape`` to so its longer side is ``max_side``; None to keep it."""
    h, w = shape[:2]
    if not max_side or max(h, w) <= max_side:
        return None
    scale = max_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


class SuperpixelSVM(Segmenter):
    """Superpixels, region features, a linear SVM per class with C chosen on val, smoothing over the region graph
    (``none``, ``average`` or ``potts``) chosen on val.

    Parameters:
        method: ``"slic"`` or ``"felzenszwalb"``; n_segments, compactness: SLIC's region count and compactness.
        max_side: the longer side images are shrunk to before the superpixels (0: full size).
        hog_context: the HOG feature's box is the region's box enlarged this many times about its centre.
        layout_grid: with a positive value, also the ``layout`` features (the centroid's cell of a grid this many
            cells a side, the area's octave; one-hot): a place and size prior (0: not used).
        c_grid: the values of C tried; smoothings: the smoothings tried (a subset of :data:`SMOOTHINGS`).
        alpha: the neighbours' weight in ``average``; beta: the Potts weight per pixel of shared boundary.
        contrast_sigma: the Lab distance (0..1 units) over which an edge stops passing scores on.
        weight_by_area: weigh each training region by its pixels (else every region counts once).
        class_weight: None, or ``"balanced"`` (each class's regions weigh as much in all, per one-vs-rest problem).
        refit: once C and the smoothing are chosen, fit the SVM again on the train and val regions (the record then
            has no val score: val is no longer held out).
        max_iter: L-BFGS iterations of the SVM grid.
    """

    id: ClassVar[str] = "superpixel-svm"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"n_segments": 120, "c_grid": (0.1, 1.0)},
    }

    def __init__(self, method: str = "slic", n_segments: int = 300, compactness: float = 10.0, max_side: int = 400,
                 hog_context: float = 2.0, layout_grid: int = 6, c_grid: tuple[float, ...] = (0.01, 0.1, 1.0),
                 smoothings: tuple[str, ...] = SMOOTHINGS,
                 alpha: float = 0.5, beta: float = 0.05, contrast_sigma: float = 0.05, weight_by_area: bool = False,
                 class_weight: str | None = None, refit: bool = True, max_iter: int = 300):
        self.method = method
        self.n_segments = n_segments
        self.compactness = compactness
        self.max_side = max_side
        self.hog_context = hog_context
        self.layout_grid = layout_grid
        self.c_grid = c_grid
        self.smoothings = smoothings
        self.alpha = alpha
        self.beta = beta
        self.contrast_sigma = contrast_sigma
        self.weight_by_area = weight_by_area
        self.class_weight = class_weight
        self.refit = refit
        self.max_iter = max_iter

    # ------------------------------------------------------------------------------------------ regions
    def _regions(self, image: np.ndarray) -> Regions:
        im = np.asarray(image)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        size = working_size(im.shape, int(self.max_side))
        work = cv2.resize(im, size, interpolation=cv2.INTER_AREA) if size else im
        one = sp.featurise(np.ascontiguousarray(work, np.uint8), self.method, int(self.n_segments),
                           float(self.compactness), config=self._feature_config())
        feats = one.features
        return Regions(one.labels, feats.features, one.graph, feats.features[:, feats.groups["lab"]][:, :3],
                       (int(im.shape[0]), int(im.shape[1])))

    def _feature_config(self) -> sp.FeatureConfig:
        layout = ("layout",) if int(self.layout_grid) > 0 else ()
        return sp.FeatureConfig(hog_context=float(self.hog_context), layout_grid=max(1, int(self.layout_grid)),
                                groups=(*sp.FEATURE_GROUPS, *layout))

    def _scores(self, svm: LinearSVM, regions: Regions) -> np.ndarray:
        """``(R, C)`` class scores of the regions (:data:`ABSENT` for classes no training region had)."""
        x = (regions.features - self.mean_) / self.scale_
        margins = svm.decision_function(x)
        scores = np.full((len(x), self.num_classes_), ABSENT, np.float64)
        if margins.ndim == 1:
            scores[:, svm.classes_[0]], scores[:, svm.classes_[1]] = -margins, margins
        else:
            scores[:, svm.classes_] = margins
        return scores

    def _labels(self, scores: np.ndarray, regions: Regions, smoothing: str) -> np.ndarray:
        """The ``(H, W)`` uint8 label map at the image's full size."""
        factors = sp.contrast_factors(regions.graph, regions.lab, float(self.contrast_sigma))
        if smoothing == "average":
            region_class = sp.smooth_scores(scores, regions.graph, float(self.alpha), 10, factors).argmax(1)
        elif smoothing == "potts":
            region_class = sp.potts_icm(-scores, regions.graph, float(self.beta), factors)
        else:
            region_class = scores.argmax(1)
        small = sp.paint(regions.labels, region_class.astype(np.uint8))
        h, w = regions.shape
        return small if small.shape == (h, w) else cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)

    # ------------------------------------------------------------------------------------------ fit
    def _rows(self, regions: Regions, mask: np.ndarray, num_classes: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The training rows of one image: region features ``(R', D)``, majority classes ``(R',)`` and pixel counts
        ``(R',)`` of its regions that hold a labelled pixel."""
        h, w = regions.labels.shape
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        classes, _ = sp.region_labels(regions.labels, mask, num_classes)
        keep = classes >= 0
        pixels = np.bincount(regions.labels.ravel(), minlength=len(classes))[keep].astype(np.float64)
        return regions.features[keep], classes[keep], pixels

    def _fit_svms(self, x: np.ndarray, y: np.ndarray, pixels: np.ndarray, c_values: list[float]) -> list[LinearSVM]:
        weights = pixels / pixels.mean() if self.weight_by_area else None
        return fit_svms((x - self.mean_) / self.scale_, y, c_values, max_iter=int(self.max_iter),
                        class_weight=self.class_weight, sample_weight=weights)

    def fit(self, train: SegmentationSet, val: SegmentationSet, ctx: Context) -> SuperpixelSVM:
        unknown = [s for s in self.smoothings if s not in SMOOTHINGS]
        if unknown or not self.smoothings or not self.c_grid:
            raise ValueError(f"{self.id}: smoothings {tuple(self.smoothings)} and c_grid {tuple(self.c_grid)}: "
                             f"expected some of {SMOOTHINGS} and at least one C")
        self.num_classes_ = train.num_classes
        rows = [self._rows(self._regions(train.load_image(i)), train.load_mask(i), train.num_classes)
                for i in ctx.progress(range(len(train)), desc=f"{self.id} train regions", total=len(train))]
        x, y, pixels = (np.concatenate(part) for part in zip(*rows)) if rows else (np.zeros((0, 0)),) * 3
        if len(np.unique(y)) < 2:
            raise EmptyModelError(f"{self.id}: the training regions hold {len(np.unique(y))} class(es); a classifier "
                                  f"needs regions of at least two classes")
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.maximum(x.std(axis=0), 1e-6)
        svms = self._fit_svms(x, y, pixels, [float(c) for c in self.c_grid])
        val_iou, val_rows = self._val_mean_iou(svms, val, ctx)
        by_c = {float(svm.C): svm for svm in svms}
        grid = [{"C": c, "smoothing": s} for c in by_c for s in self.smoothings]
        choice = ctx.select(grid, lambda g: (val_iou[(g["C"], g["smoothing"])], by_c[g["C"]]), metric="val_mean_iou")
        self.svm_, self.smoothing_ = choice.payload, choice.settings["smoothing"]
        trained_on = "train"
        if self.refit and val_rows:  # the chosen C on train + val (val's scores above are the choice's record)
            vx, vy, vpixels = (np.concatenate(part) for part in zip(*val_rows))
            self.svm_ = self._fit_svms(np.concatenate([x, vx]), np.concatenate([y, vy]),
                                       np.concatenate([pixels, vpixels]), [choice.settings["C"]])[0]
            trained_on = "train+val"
        ctx.record(trained_on=trained_on, train_regions=len(y), regions_per_image=round(len(y) / max(len(train), 1), 1),
                   feature_dim=int(x.shape[1]), svm_iterations=int(self.svm_.n_iter_), val_mean_iou=choice.score,
                   superpixels=self.method, max_side=int(self.max_side))
        return self

    def _val_mean_iou(self, svms: list[LinearSVM], val: SegmentationSet, ctx: Context
                      ) -> tuple[dict[tuple[float, str], float | None], list[tuple[np.ndarray, ...]]]:
        """Val mean IU of every (C, smoothing) (one featurisation of val serves them all; None without val), and
        val's training rows (:meth:`_rows`) for the refit."""
        keys = [(float(svm.C), s) for svm in svms for s in self.smoothings]
        total = np.zeros((len(keys), self.num_classes_, self.num_classes_), np.int64)
        rows = []
        for i in ctx.progress(range(len(val)), desc=f"{self.id} val", total=len(val)):
            regions, truth = self._regions(val.load_image(i)), val.load_mask(i)
            rows.append(self._rows(regions, truth, self.num_classes_))
            for c, svm in enumerate(svms):
                scores = self._scores(svm, regions)
                for k, smoothing in enumerate(self.smoothings):
                    pred = self._labels(scores, regions, smoothing)
                    total[c * len(self.smoothings) + k] += confusion_matrix(truth, pred, self.num_classes_)
        values = fcn_scores(total)["mean_iou"] if len(val) else np.full(len(keys), np.nan)
        return {key: (float(v) if np.isfinite(v) else None) for key, v in zip(keys, values)}, rows

    # ------------------------------------------------------------------------------------------ predict
    def segment(self, image: np.ndarray) -> np.ndarray:
        regions = self._regions(image)
        return self._labels(self._scores(self.svm_, regions), regions, self.smoothing_)
