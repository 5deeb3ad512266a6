"""``ism``: the implicit shape model (Leibe, Leonardis & Schiele), part-based Hough voting for detection.

Training, per class: SIFT features (OpenCV, grey image, RootSIFT-normalised descriptors) are computed
at interest points of every training image. The descriptors of features lying inside the class's boxes
are clustered into a codebook (mini-batch k-means). Every such feature becomes an *occurrence* of its
nearest codebook entry, recording where the object was relative to the feature: the offset to the box
centre in units of the feature's size, the log of the box height over the feature's size, and the box
aspect (width / height). Optionally (``discriminative``) each entry is weighted by how specific it is to
the class, ``p(object | entry)`` estimated from how many training features inside and outside the
class's boxes it attracts (a balanced prior).

Detection: every test feature is matched softly to its nearest codebook entries (the ``match_k`` nearest
within ``match_ratio`` times the nearest distance) and each match casts one vote per occurrence of the
entry, into the continuous space ``(x, y, log height)``, with weight ``p(entry | feature) * weight(entry)
/ |occurrences(entry)|``. Maxima are seeded from a fine-binned vote map smoothed with a scale-adaptive
Gaussian (spatial sigma ``bandwidth * height``, log-scale sigma ``scale_bandwidth``) and refined by
mean-shift over the votes themselves. A maximum becomes a box whose centre and height are the mode and
whose aspect is the kernel-weighted mean aspect of the supporting votes (the back-projection of the
votes onto the box size), scored by its vote mass ``sum(weight * kernel)``; NMS removes duplicates.

Everything per image is array code: votes are expanded from the occurrence table with ``np.repeat``,
the vote map is one ``np.bincount``, mean-shift is a (modes x votes) kernel matrix.

Bounded, visible training (``fit_info.budgets``): SIFT keeps at most ``sift_features`` keypoints per image (0:
all); per class the codebook is clustered from at most ``max_descriptors`` object descriptors, the entry
weights are estimated from at most ``4 x max_descriptors`` background descriptors, and at most
``max_occurrences`` occurrences are kept (random subsets when there are more; ``fit_info.occurrences_available``
says how many there were). Feature extraction and the selection on val log a progress line at least every 30 s
(:mod:`benchsuite.measure.progress`). Scale reach (``fit_info.reach``, per class and split, objects per size
band, :func:`benchsuite.ops.size_bands.reach_counts`): an object whose height in working pixels lies outside
the vote heights the model allows (``log_height_range``) is ``below_reach`` or ``above_reach``; one without a
single SIFT keypoint inside its box gets no vote from it (``no_features``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from scipy import ndimage

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.measure.progress import ProgressLog, logged
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.boxes import clip_boxes, nms
from benchsuite.ops.size_bands import reach_counts

log = logging.getLogger(__name__)


@dataclass
class Features:
    """Local features of one image, in working-image pixels.

    Attributes:
        xy: ``(N, 2)`` float32 keypoint positions ``x, y``.
        size: ``(N,)`` float32 keypoint diameters (OpenCV's ``KeyPoint.size``).
        desc: ``(N, D)`` float32 RootSIFT descriptors (unit L2 norm).
    """

    xy: np.ndarray
    size: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return len(self.size)


def working_scale(height: int, width: int, max_side: int | None) -> float:
    """The factor images are resized by before feature extraction (<= 1: only shrinking)."""
    if not max_side:
        return 1.0
    return min(1.0, float(max_side) / max(height, width))


def sift_features(image: np.ndarray, scale: float, sift: cv2.SIFT) -> Features:
    """RootSIFT features of a ``(H, W, 3)`` uint8 RGB image resized by ``scale`` (coordinates in the resized
    image)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"ism: expected a (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    keypoints, desc = sift.detectAndCompute(grey, None)
    if desc is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 128), np.float32))
    xy = cv2.KeyPoint_convert(keypoints).astype(np.float32).reshape(-1, 2)
    size = np.fromiter((k.size for k in keypoints), np.float32, len(keypoints))
    desc = desc.astype(np.float32)
    desc /= desc.sum(axis=1, keepdims=True) + 1e-7  # RootSIFT: L1-normalise, then square root
    np.sqrt(desc, out=desc)
    return Features(xy, size, desc)


def features_in_boxes(xy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N, M)`` bool: point ``i`` lies inside box ``j`` (``x1 <= x < x2``, same for y)."""
    x, y = xy[:, 0:1], xy[:, 1:2]
    return (x >= boxes[None, :, 0]) & (x < boxes[None, :, 2]) & (y >= boxes[None, :, 1]) & (y < boxes[None, :, 3])


def nearest_entries(desc: np.ndarray, codebook: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest codebook entries of each descriptor: ``(index (N, k) int64, squared distance (N, k)
    float32)``, nearest first."""
    k = min(k, len(codebook))
    d2 = (desc * desc).sum(1, keepdims=True) - 2.0 * desc @ codebook.T + (codebook * codebook).sum(1)[None]
    np.maximum(d2, 0, out=d2)
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.tile(np.arange(k), (len(d2), 1))
    part = np.take_along_axis(d2, idx, axis=1)
    order = np.argsort(part, axis=1)
    return np.take_along_axis(idx, order, axis=1).astype(np.int64), np.take_along_axis(part, order, axis=1)


@dataclass
class ClassModel:
    """The implicit shape model of one class.

    Attributes:
        codebook: ``(K, D)`` float32 cluster centres.
        weight: ``(K,)`` float32 class specificity of each entry (1 when not discriminative).
        occ_start: ``(K + 1,)`` int64: occurrences of entry ``c`` are rows ``occ_start[c]:occ_start[c + 1]``.
        occ: ``(O, 4)`` float32 occurrences ``dx, dy`` (box centre minus feature position, over the feature
            size), ``log(box height / feature size)``, ``box width / box height``.
        log_height_range: ``(lo, hi)`` log box heights (working pixels) a vote may have.
        background_features: training features outside every box of the class (the negatives the entry
            weights were estimated from; objects of other classes count as background).
        occurrences_available: object features (occurrences) before the ``max_occurrences`` budget.
    """

    codebook: np.ndarray
    weight: np.ndarray
    occ_start: np.ndarray
    occ: np.ndarray
    log_height_range: tuple[float, float]
    background_features: int = 0
    occurrences_available: int = 0

    @property
    def size(self) -> int:
        return len(self.codebook)


def occurrences(feats: Features, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occurrence rows for every (feature, box) pair with the feature inside the box.

    Returns ``(feature index (P,) int64, occurrences (P, 4) float32)`` as in :class:`ClassModel`.
    """
    inside = features_in_boxes(feats.xy, boxes)
    fi, bi = np.nonzero(inside)
    b = boxes[bi]
    s = np.maximum(feats.size[fi], 1.0)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    h = b[:, 3] - b[:, 1]
    occ = np.stack([(cx - feats.xy[fi, 0]) / s, (cy - feats.xy[fi, 1]) / s, np.log(h / s),
                    (b[:, 2] - b[:, 0]) / h], axis=1).astype(np.float32)
    return fi.astype(np.int64), occ


def build_class_model(per_image: list[tuple[Features, np.ndarray, np.ndarray]], codebook_size: int,
                      discriminative: bool, max_descriptors: int, rng: np.random.Generator,
                      max_occurrences: int | None = None) -> ClassModel | None:
    """Codebook, occurrences and entry weights of one class.

    Args:
        per_image: for each training image ``(features, boxes of the class (M, 4), boxes to keep out of the
            background statistics (L, 4))`` in working pixels.
        codebook_size: clusters (fewer when there are fewer object features).
        discriminative: weight entries by ``p(object | entry)``.
        max_descriptors: the clustering sees at most this many object descriptors (a random subset).
        max_occurrences: at most this many occurrences are kept (a random subset; None: all): voting cost
            grows with them.
    """
    from sklearn.cluster import MiniBatchKMeans

    obj_desc, obj_occ, bg_desc, heights = [], [], [], []
    for feats, boxes, keep_out in per_image:
        if len(boxes):
            fi, occ = occurrences(feats, boxes)
            obj_desc.append(feats.desc[fi])
            obj_occ.append(occ)
            heights.append(boxes[:, 3] - boxes[:, 1])
        if len(feats):
            near = features_in_boxes(feats.xy, np.concatenate([boxes, keep_out])).any(1) if (
                len(boxes) + len(keep_out)) else np.zeros(len(feats), bool)
            bg_desc.append(feats.desc[~near])
    if not obj_desc or sum(len(d) for d in obj_desc) < 2:
        return None
    desc = np.concatenate(obj_desc)
    occ = np.concatenate(obj_occ)
    available = len(desc)
    if max_occurrences is not None and len(desc) > max_occurrences:
        keep = np.sort(rng.choice(len(desc), max_occurrences, replace=False))
        desc, occ = desc[keep], occ[keep]
    k = int(min(codebook_size, max(1, len(np.unique(desc[:5000], axis=0)) // 2)))
    sample = desc if len(desc) <= max_descriptors else desc[rng.choice(len(desc), max_descriptors, replace=False)]
    # random initialisation: k-means++ seeding of hundreds of centres costs ten times the clustering itself
    km = MiniBatchKMeans(n_clusters=k, init="random", batch_size=2048, n_init=2, max_iter=15,
                         random_state=int(rng.integers(2**31 - 1)), compute_labels=False).fit(sample)
    codebook = km.cluster_centers_.astype(np.float32)
    assign = nearest_entries(desc, codebook, 1)[0][:, 0]
    order = np.argsort(assign, kind="stable")
    counts = np.bincount(assign, minlength=k)
    occ_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    weight = np.ones(k, np.float32)
    bg = np.concatenate(bg_desc) if bg_desc else np.zeros((0, desc.shape[1]), np.float32)
    if discriminative and len(bg):
        if len(bg) > 4 * max_descriptors:
            bg = bg[rng.choice(len(bg), 4 * max_descriptors, replace=False)]
        n_bg = np.bincount(nearest_entries(bg, codebook, 1)[0][:, 0], minlength=k).astype(np.float64)
        n_obj = counts.astype(np.float64)
        # p(object | entry) under a balanced prior, with one pseudo-count on each side
        ratio = len(desc) / len(bg)
        weight = ((n_obj + 1) / (n_obj + 1 + ratio * (n_bg + 1))).astype(np.float32)
    h = np.concatenate(heights)
    lo, hi = float(np.log(max(h.min() * 0.6, 8.0))), float(np.log(h.max() * 1.5))
    return ClassModel(codebook, weight, occ_start, occ[order], (lo, hi), int(sum(len(b) for b in bg_desc)),
                      available)


@dataclass
class Votes:
    """The votes cast in one image for one class: ``(V,)`` float32 arrays ``x, y, log_h, aspect, weight``."""

    x: np.ndarray
    y: np.ndarray
    log_h: np.ndarray
    aspect: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.weight)


def cast_votes(model: ClassModel, feats: Features, width: float, height: float, match_k: int,
               match_ratio: float) -> Votes:
    """Soft-match every feature to the codebook and expand each match into one vote per occurrence.

    A feature matches its ``match_k`` nearest entries whose distance is within ``match_ratio`` times the
    nearest one, each with ``p(entry | feature) = 1 / matches``. Votes whose centre falls outside the
    image or whose height is outside the model's range are dropped.
    """
    empty = np.zeros(0, np.float32)
    if not len(feats):
        return Votes(empty, empty, empty, empty, empty)
    idx, d2 = nearest_entries(feats.desc, model.codebook, match_k)
    ok = d2 <= d2[:, :1] * (match_ratio**2) + 1e-9
    n_match = ok.sum(1)
    f_idx = np.nonzero(ok)[0]
    entry = idx[ok]
    w_match = (1.0 / n_match[f_idx]) * model.weight[entry]
    start = model.occ_start[entry]
    n_occ = model.occ_start[entry + 1] - start
    keep = n_occ > 0
    f_idx, entry, w_match, start, n_occ = f_idx[keep], entry[keep], w_match[keep], start[keep], n_occ[keep]
    total = int(n_occ.sum())
    if total == 0:
        return Votes(empty, empty, empty, empty, empty)
    rep = np.repeat(np.arange(len(entry)), n_occ)
    offsets = np.concatenate([[0], np.cumsum(n_occ)[:-1]])
    occ = model.occ[start[rep] + np.arange(total) - offsets[rep]]
    fr = f_idx[rep]
    s = feats.size[fr]
    x = feats.xy[fr, 0] + occ[:, 0] * s
    y = feats.xy[fr, 1] + occ[:, 1] * s
    log_h = np.log(np.maximum(s, 1.0)) + occ[:, 2]
    w = (w_match / n_occ)[rep].astype(np.float32)
    lo, hi = model.log_height_range
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (log_h >= lo) & (log_h <= hi)
    return Votes(x[inside].astype(np.float32), y[inside].astype(np.float32), log_h[inside].astype(np.float32),
                 occ[inside, 3].astype(np.float32), w[inside])


def seed_modes(votes: Votes, width: float, height: float, log_range: tuple[float, float], bandwidth: float,
               scale_bandwidth: float, cell: float, scale_step: float, max_modes: int) -> np.ndarray:
    """Local maxima of the smoothed vote map: ``(M, 3)`` float32 ``x, y, log_h`` (strongest first).

    The map has ``cell``-pixel bins in x and y and ``scale_step`` bins in log height; each scale slice is
    smoothed with a Gaussian of sigma ``bandwidth * height`` pixels, then the scale axis with sigma
    ``scale_bandwidth``; the kernel is unnormalised so the map reads as vote mass.
    """
    lo, hi = log_range
    ns = max(1, int(np.ceil((hi - lo) / scale_step)) + 1)
    nx, ny = max(1, int(np.ceil(width / cell))), max(1, int(np.ceil(height / cell)))
    ix = np.clip((votes.x / cell).astype(np.int64), 0, nx - 1)
    iy = np.clip((votes.y / cell).astype(np.int64), 0, ny - 1)
    iz = np.clip(np.rint((votes.log_h - lo) / scale_step).astype(np.int64), 0, ns - 1)
    vol = np.bincount((iz * ny + iy) * nx + ix, weights=votes.weight, minlength=ns * ny * nx).reshape(ns, ny, nx)
    heights = np.exp(lo + scale_step * np.arange(ns))
    for z in range(ns):  # one Gaussian per scale slice: the spatial kernel grows with the object
        sigma = max(bandwidth * heights[z] / cell, 0.5)
        vol[z] = ndimage.gaussian_filter(vol[z], sigma, mode="constant", truncate=3.0) * (2 * np.pi * sigma**2)
    s_sigma = scale_bandwidth / scale_step
    if ns > 1:
        vol = ndimage.gaussian_filter1d(vol, s_sigma, axis=0, mode="constant", truncate=3.0)
    vol *= np.sqrt(2 * np.pi) * s_sigma
    peaks = (vol == ndimage.maximum_filter(vol, size=3, mode="constant")) & (vol > 0)
    z, y, x = np.nonzero(peaks)
    if not len(z):
        return np.zeros((0, 3), np.float32)
    strength = vol[z, y, x]
    top = np.argsort(-strength, kind="stable")[:max_modes]
    return np.stack([(x[top] + 0.5) * cell, (y[top] + 0.5) * cell, lo + z[top] * scale_step], 1).astype(np.float32)


def kernel_matrix(modes: np.ndarray, votes: Votes, bandwidth: float, scale_bandwidth: float) -> np.ndarray:
    """``(M, V)`` float32 unnormalised Gaussian kernel between modes ``(M, 3)`` and votes, spatial sigma
    ``bandwidth * exp(mode log_h)``, log-scale sigma ``scale_bandwidth``."""
    sig = bandwidth * np.exp(modes[:, 2:3])
    dx = (votes.x[None] - modes[:, 0:1]) / sig
    dy = (votes.y[None] - modes[:, 1:2]) / sig
    ds = (votes.log_h[None] - modes[:, 2:3]) / scale_bandwidth
    return np.exp(-0.5 * (dx * dx + dy * dy + ds * ds)).astype(np.float32)


def refine_modes(modes: np.ndarray, votes: Votes, bandwidth: float, scale_bandwidth: float, iterations: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-shift from the seeds over the weighted votes.

    Returns ``(modes (M, 3) x, y, log_h, mass (M,), aspect (M,))``: the converged modes, their vote mass
    ``sum(weight * kernel)`` and the kernel-weighted mean aspect of the supporting votes.
    """
    modes = modes.astype(np.float32).copy()
    mass = np.zeros(len(modes), np.float32)
    aspect = np.ones(len(modes), np.float32)
    chunk = max(1, int(4e6 // max(1, len(votes))))
    for s in range(0, len(modes), chunk):
        m = modes[s:s + chunk]
        for it in range(iterations + 1):
            k = kernel_matrix(m, votes, bandwidth, scale_bandwidth) * votes.weight[None]
            tot = k.sum(1)
            if it == iterations:
                mass[s:s + chunk] = tot
                safe = np.maximum(tot, 1e-12)
                aspect[s:s + chunk] = np.where(tot > 0, (k @ votes.aspect) / safe, 1.0)
                break
            safe = np.maximum(tot, 1e-12)[:, None]
            new = np.stack([k @ votes.x, k @ votes.y, k @ votes.log_h], 1) / safe
            m = np.where(tot[:, None] > 0, new, m).astype(np.float32)
        modes[s:s + chunk] = m
    return modes, mass, aspect


def modes_to_boxes(modes: np.ndarray, aspect: np.ndarray) -> np.ndarray:
    """``(M, 4)`` boxes centred on the modes, height ``exp(log_h)``, width ``height * aspect``."""
    h = np.exp(modes[:, 2])
    w = h * aspect
    return np.stack([modes[:, 0] - w / 2, modes[:, 1] - h / 2, modes[:, 0] + w / 2, modes[:, 1] + h / 2], 1)


@dataclass
class _ImageFeatures:
    feats: Features
    scale: float
    width: float  # working pixels
    height: float


class ImplicitShapeModel(Detector):
    """Implicit shape model: SIFT codebook, occurrence votes in (x, y, log scale), mean-shift maxima.

    Parameters:
        codebook_sizes: candidate codebook sizes per class; the best on val (AP50) is kept.
        bandwidths: candidate spatial kernel sigmas, as a fraction of the object height; chosen on val.
        scale_bandwidth: kernel sigma in log height.
        match_k, match_ratio: soft matching, the ``match_k`` nearest entries within ``match_ratio`` times
            the nearest distance.
        discriminative: weight codebook entries by ``p(object | entry)`` from the training backgrounds.
        specificity_powers: candidate exponents for those weights (higher: background-like entries vote
            less); chosen on val.
        max_side: images are shrunk so that their longer side is at most this (None: native size).
        sift_features: keypoints per image kept by SIFT (0: all).
        contrast_threshold: SIFT's contrast threshold (lower: more keypoints).
        cell, scale_step: vote-map bins (working pixels, log height).
        max_modes: maxima refined per image and class; ``mean_shift_iterations`` mean-shift steps each.
        min_score: hypotheses with less vote mass are dropped.
        nms_iou: IoU above which a weaker box is suppressed.
        max_descriptors: object descriptors the clustering sees at most (per class; the entry weights see at
            most four times as many background descriptors).
        max_occurrences: occurrences kept at most per class (a random subset of the object features).
        min_object_height, max_upscale: when the smaller training objects (10th percentile) are below
            ``min_object_height`` working pixels, every image (train, val and test alike) is enlarged by up
            to ``max_upscale`` so that they reach it (``fit_info.upscale``): tiny objects get keypoints.
        min_object_heights: candidate ``min_object_height`` values; the upsampling each gives is chosen on val
            with the other settings (one grid; features are extracted once per distinct upsampling, the smallest
            first, which wins a tie). None: ``min_object_height`` only. At quick (48, 96): where the objects
            are at least 96 working pixels tall (Penn-Fudan) both give 1 and nothing is computed twice.

    A training set with no object features (no codebook) or, with ``discriminative``, no background
    features (no negatives) makes ``fit`` raise :class:`benchsuite.errors.EmptyModelError`.
    """

    id: ClassVar[str] = "ism"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "implicit shape model: SIFT codebook, Hough votes, mean-shift maxima"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        # tiny objects: 2x, not 3x (under half the pixels; val 0.92 vs 0.96)
        "smoke": {"codebook_sizes": (150,), "bandwidths": (0.1,), "specificity_powers": (3.0,), "max_side": None,
                  "max_upscale": 2.0, "min_object_heights": None},
    }

    def __init__(self, codebook_sizes: tuple[int, ...] = (300, 600), bandwidths: tuple[float, ...] = (0.05, 0.07),
                 scale_bandwidth: float = 0.15, match_k: int = 3, match_ratio: float = 1.15,
                 discriminative: bool = True, specificity_powers: tuple[float, ...] = (3.0, 6.0),
                 max_side: int | None = 320, sift_features: int = 0,
                 contrast_threshold: float = 0.02, cell: float = 3.0, scale_step: float = 0.08,
                 max_modes: int = 40, mean_shift_iterations: int = 3, min_score: float = 0.0,
                 nms_iou: float = 0.45, max_descriptors: int = 40000, min_object_height: float = 48.0,
                 max_upscale: float = 3.0, max_occurrences: int | None = 200_000,
                 min_object_heights: tuple[float, ...] | None = (48.0, 96.0)):
        self.codebook_sizes = codebook_sizes
        self.bandwidths = bandwidths
        self.scale_bandwidth = scale_bandwidth
        self.match_k = match_k
        self.match_ratio = match_ratio
        self.discriminative = discriminative
        self.specificity_powers = specificity_powers
        self.max_side = max_side
        self.sift_features = sift_features
        self.contrast_threshold = contrast_threshold
        self.cell = cell
        self.scale_step = scale_step
        self.max_modes = max_modes
        self.mean_shift_iterations = mean_shift_iterations
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.max_descriptors = max_descriptors
        self.min_object_height = min_object_height
        self.max_upscale = max_upscale
        self.min_object_heights = min_object_heights
        self.max_occurrences = max_occurrences

    # ------------------------------------------------------------------ features
    def _sift(self) -> cv2.SIFT:
        return cv2.SIFT_create(nfeatures=int(self.sift_features), contrastThreshold=float(self.contrast_threshold))

    def _image_features(self, image: np.ndarray, sift: cv2.SIFT) -> _ImageFeatures:
        h, w = image.shape[:2]
        scale = working_scale(h, w, self.max_side) * getattr(self, "upscale_", 1.0)
        return _ImageFeatures(sift_features(image, scale, sift), scale, w * scale, h * scale)

    def _features_of(self, data: DetectionSet, ctx: Context, desc: str) -> list[_ImageFeatures]:
        """SIFT features of every image of ``data`` (a progress line at least every 30 s: images, features)."""
        sift = self._sift()
        out: list[_ImageFeatures] = []
        for i in logged(ctx.progress(range(len(data)), desc=desc, total=len(data)), log, desc, len(data),
                        facts=lambda: {"features": sum(len(f.feats) for f in out)}):
            out.append(self._image_features(data.load_image(i), sift))
        return out

    # ------------------------------------------------------------------ fitting
    def _class_models(self, train: DetectionSet, feats: list[_ImageFeatures], codebook_size: int, seed: int
                      ) -> list[ClassModel | None]:
        models = []
        for k in range(train.num_classes):
            per_image = []
            for s, f in zip(train, feats):
                sel = (s.labels == k) & ~s.difficult
                per_image.append((f.feats, s.boxes[sel] * f.scale, s.boxes[(s.labels == k) & s.difficult] * f.scale))
            models.append(build_class_model(per_image, codebook_size, self.discriminative, self.max_descriptors,
                                            np.random.default_rng([seed, k, codebook_size]), self.max_occurrences))
        return models

    def _detect_features(self, f: _ImageFeatures, models: list[ClassModel | None], bandwidth: float,
                         votes_cache: list[Votes] | None = None) -> tuple[Detections, int]:
        boxes, scores, labels, n_votes = [], [], [], 0
        for k, model in enumerate(models):
            if model is None:
                continue
            votes = votes_cache[k] if votes_cache is not None else cast_votes(
                model, f.feats, f.width, f.height, self.match_k, self.match_ratio)
            n_votes += len(votes)
            if not len(votes):
                continue
            seeds = seed_modes(votes, f.width, f.height, model.log_height_range, bandwidth, self.scale_bandwidth,
                               self.cell, self.scale_step, self.max_modes)
            modes, mass, aspect = refine_modes(seeds, votes, bandwidth, self.scale_bandwidth,
                                               self.mean_shift_iterations)
            b = clip_boxes(modes_to_boxes(modes, aspect), f.width, f.height) / f.scale
            ok = (mass > self.min_score) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b, mass = b[ok], mass[ok]
            keep = nms(b, mass, self.nms_iou)
            boxes.append(b[keep])
            scores.append(mass[keep])
            labels.append(np.full(len(keep), k, np.int64))
        if not boxes:
            return Detections.empty(), n_votes
        return Detections(np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
                          np.concatenate(labels)), n_votes

    def _upscale_for(self, train: DetectionSet, min_object_height: float | None = None) -> float:
        """The factor every image is enlarged by on top of :func:`working_scale`, so that the smaller
        training objects (10th percentile of the non-difficult box heights, in working pixels) are at
        least ``min_object_height`` (default: the parameter's) pixels tall: SIFT finds too few keypoints on
        smaller objects. 1 when the objects are large enough; at most ``max_upscale``."""
        min_h = self.min_object_height if min_object_height is None else min_object_height
        heights = [(s.boxes[~s.difficult, 3] - s.boxes[~s.difficult, 1]) * working_scale(s.height, s.width,
                                                                                        self.max_side)
                   for s in train if len(s.boxes)]
        h = np.concatenate(heights) if heights else np.zeros(0)
        if not len(h) or not min_h:
            return 1.0
        h10 = max(1.0, float(np.percentile(h, 10)))
        return float(np.clip(min_h / h10, 1.0, self.max_upscale))

    def _check_trainable(self, train: DetectionSet, feats: list[_ImageFeatures]) -> None:
        """Raise :class:`EmptyModelError` when no class could learn a codebook (no object features) or, with
        ``discriminative``, when the training images hold no background features at all (every feature
        inside an object of its class: e.g. only tight crops and no background images)."""
        n_obj, n_bg = np.zeros(train.num_classes, np.int64), np.zeros(train.num_classes, np.int64)
        for s, f in zip(train, feats):
            if not len(f.feats):
                continue
            for k in range(train.num_classes):
                boxes = s.boxes[s.labels == k] * f.scale  # difficult ones included: they are not background
                inside = features_in_boxes(f.feats.xy, boxes).any(1) if len(boxes) else np.zeros(len(f.feats), bool)
                n_bg[k] += int((~inside).sum())
                keep = (s.labels == k) & ~s.difficult
                if keep.any():
                    n_obj[k] += int(features_in_boxes(f.feats.xy, s.boxes[keep] * f.scale).any(1).sum())
        if not (n_obj >= 2).any():
            raise EmptyModelError(f"ism: no codebook: {int(n_obj.sum())} SIFT features inside the training objects "
                                  f"of {len(train)} images")
        if self.discriminative and not n_bg[n_obj >= 2].any():
            raise EmptyModelError(f"ism: no background features in the {len(train)} training images (every "
                                  f"feature lies inside an object of its class): no negatives to weight the codebook")

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> ImplicitShapeModel:
        if not len(train):
            raise ValueError("ism: the training split is empty")
        start = time.perf_counter()
        heights = self.min_object_heights or (self.min_object_height,)
        upscales = sorted({self._upscale_for(train, h) for h in heights})
        # per distinct upsampling: (train features, val features, val feature seconds)
        feats: dict[float, tuple[list[_ImageFeatures], list[_ImageFeatures], float]] = {}
        untrainable: list[EmptyModelError] = []
        for up in upscales:
            self.upscale_ = up
            where = f" (upsampling x{up:.2f})" if len(upscales) > 1 else ""
            train_feats = self._features_of(train, ctx, f"ism train features{where}")
            t_val = time.perf_counter()
            val_feats = self._features_of(val, ctx, f"ism val features{where}") if len(val) else []
            val_feature_s = time.perf_counter() - t_val
            try:
                self._check_trainable(train, train_feats)
            except EmptyModelError as e:
                untrainable.append(e)
                continue
            feats[up] = train_feats, val_feats, val_feature_s
        if not feats:
            raise untrainable[0]
        raw: dict[tuple[float, int], list[ClassModel | None]] = {}  # (upscale, size) -> models before weighting
        weighted: dict[tuple, tuple[list[ClassModel | None], list]] = {}  # the latest (models, votes)
        powers = self.specificity_powers if self.discriminative else (1.0,)
        grid = [{"upscale": up, "codebook_size": int(size), "specificity_power": float(power), "bandwidth": float(bw)}
                for up in feats for size in self.codebook_sizes for power in powers for bw in self.bandwidths]
        progress = ProgressLog(log, "ism selection on val: settings", len(grid))
        tried = [0]

        def val_map50(s: dict[str, Any]) -> tuple[float | None, tuple[list[ClassModel | None], list[Detections]]]:
            up, size, power = s["upscale"], s["codebook_size"], s["specificity_power"]
            train_feats, val_feats, _ = feats[up]
            if (up, size) not in raw:
                progress.update(tried[0], building=f"codebooks of {size} entries")
                raw[up, size] = self._class_models(train, train_feats, size, ctx.seed)
            if (up, size, power) not in weighted:
                models = [dataclasses.replace(m, weight=m.weight ** power) if m is not None else None
                          for m in raw[up, size]]
                weighted.clear()
                votes = []
                for j, f in enumerate(val_feats):
                    progress.update(tried[0], voting=f"val image {j + 1} of {len(val_feats)}")
                    votes.append([cast_votes(m, f.feats, f.width, f.height, self.match_k, self.match_ratio)
                                  if m is not None else None for m in models])
                weighted[up, size, power] = models, votes
            models, votes = weighted[up, size, power]
            dets = []
            for j, (f, v) in enumerate(zip(val_feats, votes)):
                progress.update(tried[0], detecting=f"val image {j + 1} of {len(val_feats)}")
                dets.append(self._detect_features(f, models, s["bandwidth"], v)[0])
            tried[0] += 1
            score = score_detections(val, dets, val.classes, ("voc",))["map50"] if val_feats else None
            progress.update(tried[0], last_val_map50=None if score is None else round(score, 4))
            return score, (models, dets)

        choice = ctx.select(grid, val_map50, metric="val_map50")
        progress.finish(tried[0], chosen=choice.settings)
        self.upscale_ = choice.settings["upscale"]
        train_feats, val_feats, val_feature_s = feats[self.upscale_]
        raw.clear()
        weighted.clear()
        self.codebook_size_ = choice.settings["codebook_size"]
        self.specificity_power_, self.bandwidth_ = choice.settings["specificity_power"], choice.settings["bandwidth"]
        self.models_, val_dets = choice.payload
        if val_feats:  # what detect() gives on the val images (the task judges the floor on them)
            self.val_detections_ = val_dets
        val_ap = choice.score or 0.0
        ctx.record(upscale=round(self.upscale_, 3),
                   upscale_candidates={f"{h:g}": round(self._upscale_for(train, h), 3) for h in heights},
                   background_features={train.classes[k]: m.background_features
                                        for k, m in enumerate(self.models_) if m is not None},
                   # what bounds the training work (the class docstring)
                   budgets={"sift_features_per_image": self.sift_features or None,
                            "codebook_descriptors_per_class": self.max_descriptors,
                            "background_descriptors_per_class": 4 * self.max_descriptors,
                            "occurrences_per_class": self.max_occurrences},
                   occurrences_available={train.classes[k]: m.occurrences_available
                                          for k, m in enumerate(self.models_) if m is not None},
                   reach={"train": self._reach(train, train_feats), "val": self._reach(val, val_feats)})
        ctx.record(codebook_size=self.codebook_size_, bandwidth=self.bandwidth_,
                   specificity_power=self.specificity_power_, val_map50=round(val_ap, 4),
                   codebook_sizes={train.classes[k]: m.size for k, m in enumerate(self.models_) if m is not None},
                   occurrences=int(sum(len(m.occ) for m in self.models_ if m is not None)),
                   train_features_per_image=round(float(np.mean([len(f.feats) for f in train_feats])), 1),
                   fit_s=round(time.perf_counter() - start, 2))
        if val_feats:  # votes and time per image of the chosen model, measured on val
            t0 = time.perf_counter()
            n_votes = [self._detect_features(f, self.models_, self.bandwidth_)[1] for f in val_feats]
            vote_s = time.perf_counter() - t0
            ctx.record(votes_per_image=round(float(np.mean(n_votes)), 1),
                       seconds_per_image=round((val_feature_s + vote_s) / len(val_feats), 4))
        return self

    def _reach(self, data: DetectionSet, feats: list[_ImageFeatures]) -> dict[str, Any]:
        """Per class with a model: the non-difficult objects of ``data`` per size band (image pixels), and
        those outside the vote heights (``below_reach`` / ``above_reach``) or without a keypoint inside
        (``no_features``), with the vote heights in working pixels (see the module docstring)."""
        out: dict[str, Any] = {}
        if not feats:
            return out
        for k, m in enumerate(self.models_):
            if m is None:
                continue
            heights, working, bare = [], [], []
            for s, f in zip(data, feats):
                boxes = s.boxes[(s.labels == k) & ~s.difficult]
                if not len(boxes):
                    continue
                heights.append(boxes[:, 3] - boxes[:, 1])
                working.append((boxes[:, 3] - boxes[:, 1]) * f.scale)
                bare.append(~features_in_boxes(f.feats.xy, boxes * f.scale).any(0) if len(f.feats)
                            else np.ones(len(boxes), bool))
            if not heights:
                continue
            h, hw, no_feat = np.concatenate(heights), np.concatenate(working), np.concatenate(bare)
            lo, hi = (float(np.exp(v)) for v in m.log_height_range)
            out[data.classes[k]] = {"vote_heights_working_px": [round(lo, 1), round(hi, 1)],
                                    **reach_counts(h, below_reach=hw < lo, above_reach=hw > hi, no_features=no_feat)}
        return out

    # ------------------------------------------------------------------ detection
    def detect(self, image: np.ndarray) -> Detections:
        f = self._image_features(image, self._sift())
        return self._detect_features(f, self.models_, self.bandwidth_)[0]
