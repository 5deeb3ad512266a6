"""Hierarchical grouping of regions, the core of selective search (Uijlings et al., IJCV 2013).

Starting from an initial segmentation (a label image), the two most similar *neighbouring* regions are
merged, again and again, until one region is left; every region ever formed is a proposal. The
similarity of regions ``a`` and ``b`` is a sum of up to four terms, each in ``[0, 1]``:

``colour``  histogram intersection ``sum(min(c_a, c_b))`` of L1-normalised colour histograms (25 bins
            per channel);
``texture`` histogram intersection of L1-normalised texture histograms (Gaussian derivatives in 8
            orientations, 10 bins each, per channel);
``size``    ``1 - (size_a + size_b) / size_image``: small regions merge first;
``fill``    ``1 - (size(BB_ab) - size_a - size_b) / size_image``: regions that fill each other's gaps merge
            first (``BB_ab`` is the box around both).

A merged region's histograms are the size-weighted average of its parts', its size the sum, its box the
union. Region ids: the initial regions are ``0 .. R-1`` (labels of the label image), the region formed by
the ``m``-th merge is ``R + m``.

The merge loop keeps the similarities of neighbouring pairs in a heap with lazy deletion: a merge marks
its two regions dead, and computes (in one vectorised step) only the similarities of the new region
with its neighbours; heap entries naming a dead region are skipped when popped. Total work is
``O(E log E)`` for ``E`` adjacencies instead of rescanning all pairs per merge. Ties pop in ascending
``(a, b)`` order.

Pixel-level features are vectorised: histograms of all regions at once with ``np.bincount``, adjacency
from the label image shifted by one pixel (8-connectivity), boxes with ``scipy.ndimage.find_objects``.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

#: the four similarity measures, in the order of a weight vector
SIMILARITIES = ("colour", "texture", "size", "fill")
COLOUR_BINS = 25
TEXTURE_ORIENTATIONS = 8
TEXTURE_BINS = 10


# ------------------------------------------------------------------------------------------- pixels


def colour_bin_image(image: np.ndarray, bins: int = COLOUR_BINS) -> np.ndarray:
    """``(H, W, C)`` int64 colour bin of every pixel and channel, ``0 .. bins-1`` (uint8 input, equal bins
    over ``0 .. 255``); a 2-D image is treated as one channel."""
    im = np.asarray(image)
    if im.dtype != np.uint8:
        raise ValueError(f"colour_bin_image: expected a uint8 image, got {im.dtype}")
    if im.ndim == 2:
        im = im[:, :, None]
    return (im.astype(np.int64) * bins) >> 8


def texture_bin_image(image: np.ndarray, orientations: int = TEXTURE_ORIENTATIONS, bins: int = TEXTURE_BINS,
                      sigma: float = 1.0) -> np.ndarray:
    """``(H, W, C * orientations)`` int64 texture bin of every pixel, channel and orientation.

    Per channel: Gaussian derivatives ``gx, gy`` at scale ``sigma``; the response in orientation
    ``theta_j = 2 pi j / orientations`` is ``max(0, cos(theta_j) gx + sin(theta_j) gy)`` (so opposite
    orientations are distinct); responses are divided by the channel's largest response in the image and
    quantised into ``bins`` equal bins over ``[0, 1]``. Layout of the last axis: channel-major.
    """
    im = np.asarray(image)
    if im.ndim == 2:
        im = im[:, :, None]
    x = im.astype(np.float32)
    h, w, c = x.shape
    if orientations % 2:
        raise ValueError(f"texture_bin_image: orientations must be even, got {orientations}")
    blurred = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    blurred = blurred.reshape(h, w, c)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REFLECT).reshape(h, w, c)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REFLECT).reshape(h, w, c)
    # orientation j + half is orientation j flipped: its response is the negative part of orientation j's
    half = orientations // 2
    out = np.empty((h, w, c, orientations), np.int64)
    for ch in range(c):
        signed = [np.float32(np.cos(2 * np.pi * j / orientations)) * gx[:, :, ch]
                  + np.float32(np.sin(2 * np.pi * j / orientations)) * gy[:, :, ch] for j in range(half)]
        top = max(float(np.abs(s).max()) for s in signed)
        scale = np.float32(bins / top) if top > 0 else np.float32(0)
        for j, s in enumerate(signed):
            q = np.minimum((np.abs(s) * scale).astype(np.int64), bins - 1)
            positive = s > 0
            out[:, :, ch, j] = np.where(positive, q, 0)
            out[:, :, ch, j + half] = np.where(positive, 0, q)
    return out.reshape(h, w, c * orientations)


def region_histograms(labels: np.ndarray, bin_image: np.ndarray, bins: int, num_regions: int) -> np.ndarray:
    """``(num_regions, F * bins)`` float64 L1-normalised histograms of every region.

    ``bin_image`` is ``(H, W, F)``: for each of ``F`` features (channels, orientations) the bin of each
    pixel. Feature ``f`` fills columns ``f * bins .. (f + 1) * bins - 1``; each row sums to 1.
    """
    f = bin_image.shape[2]
    width = f * bins
    index = labels.reshape(-1, 1).astype(np.int64) * width + (np.arange(f) * bins)[None, :] \
        + bin_image.reshape(-1, f)
    hist = np.bincount(index.ravel(), minlength=num_regions * width).reshape(num_regions, width).astype(np.float64)
    total = hist.sum(axis=1, keepdims=True)
    hist /= np.where(total > 0, total, 1)
    return hist


def region_adjacency(labels: np.ndarray) -> np.ndarray:
    """``(E, 2)`` int64 unique pairs ``a < b`` of labels that touch (8-connectivity), sorted."""
    lab = np.asarray(labels, np.int64)
    pairs = []
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :]),
                 (lab[:-1, :-1], lab[1:, 1:]), (lab[:-1, 1:], lab[1:, :-1])):
        diff = a != b
        pairs.append(np.stack([np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])], axis=1))
    allp = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    if not len(allp):
        return np.zeros((0, 2), np.int64)
    n = int(lab.max()) + 1
    codes = np.unique(allp[:, 0] * n + allp[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


def region_boxes(labels: np.ndarray, num_regions: int) -> np.ndarray:
    """``(num_regions, 4)`` float64 x1y1x2y2 pixel boxes of every label (no +1: a one-pixel region at
    ``(0, 0)`` is ``(0, 0, 1, 1)``)."""
    slices = ndimage.find_objects(np.asarray(labels, np.int64) + 1, max_label=num_regions)
    out = np.zeros((num_regions, 4), np.float64)
    for i, sl in enumerate(slices):
        if sl is not None:
            out[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return out


@dataclass
class RegionSet:
    """The initial regions of a label image and their features.

    Attributes:
        sizes: ``(R,)`` float64 pixel counts.
        boxes: ``(R, 4)`` float64 x1y1x2y2 boxes.
        colour: ``(R, Dc)`` float64 L1-normalised colour histograms.
        texture: ``(R, Dt)`` float64 L1-normalised texture histograms.
        adjacency: ``(E, 2)`` int64 neighbouring pairs ``a < b``.
        image_size: pixels in the image.
    """

    sizes: np.ndarray
    boxes: np.ndarray
    colour: np.ndarray
    texture: np.ndarray
    adjacency: np.ndarray
    image_size: float

    def __len__(self) -> int:
        return len(self.sizes)


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels made contiguous ``0 .. R-1`` (in order of the original values); returns ``(labels, R)``."""
    lab = np.asarray(labels)
    if lab.size == 0:
        return lab.astype(np.int64), 0
    top = int(lab.max())
    present = np.bincount(lab.ravel(), minlength=top + 1) > 0 if lab.min() >= 0 else None
    if present is not None and present.all():
        return lab.astype(np.int64, copy=False), top + 1
    _, inverse = np.unique(lab, return_inverse=True)
    inverse = inverse.reshape(lab.shape).astype(np.int64)
    return inverse, int(inverse.max()) + 1


def describe_regions(labels: np.ndarray, colour_bins: np.ndarray, texture_bins: np.ndarray) -> RegionSet:
    """Features of the regions of a contiguous label image ``(H, W)`` (see :func:`relabel`) from the
    per-pixel bins of :func:`colour_bin_image` and :func:`texture_bin_image`."""
    labels = np.asarray(labels, np.int64)
    r = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels.ravel(), minlength=r).astype(np.float64)
    return RegionSet(
        sizes=sizes,
        boxes=region_boxes(labels, r),
        colour=region_histograms(labels, colour_bins, COLOUR_BINS, r),
        texture=region_histograms(labels, texture_bins, TEXTURE_BINS, r),
        adjacency=region_adjacency(labels),
        image_size=float(labels.size),
    )


# --------------------------------------------------------------------------------------------- grouping


@dataclass
class Hierarchy:
    """The result of grouping: every region ever formed.

    Attributes:
        boxes: ``(R + M, 4)`` float64 boxes of all regions in creation order (initial ones first).
        merges: ``(M, 2)`` int64 the two regions merged by each step (region ``R + m`` is their union).
        similarities: ``(M,)`` float64 the similarity of each merged pair.
        num_initial: ``R``.
    """

    boxes: np.ndarray
    merges: np.ndarray
    similarities: np.ndarray
    num_initial: int


class _Regions:
    """Growable region features (preallocated for ``2R - 1`` regions) and the similarity of pairs."""

    def __init__(self, regions: RegionSet, weights: np.ndarray):
        r = len(regions)
        cap = max(1, 2 * r - 1)
        self.n = r
        self.sizes = np.zeros(cap)
        self.sizes[:r] = regions.sizes
        self.boxes = np.zeros((cap, 4))
        self.boxes[:r] = regions.boxes
        self.colour = np.zeros((cap, regions.colour.shape[1]))
        self.colour[:r] = regions.colour
        self.texture = np.zeros((cap, regions.texture.shape[1]))
        self.texture[:r] = regions.texture
        self.area = float(regions.image_size)
        self.weights = np.asarray(weights, np.float64)

    def similarity(self, a: np.ndarray | int, b: np.ndarray) -> np.ndarray:
        """``(len(b),)`` similarity of region(s) ``a`` (an index or an array like ``b``) with regions ``b``."""
        wc, wt, ws, wf = self.weights
        b = np.asarray(b, np.int64)
        s = np.zeros(len(b))
        if wc:
            s += wc * np.minimum(self.colour[a], self.colour[b]).sum(axis=-1)
        if wt:
            s += wt * np.minimum(self.texture[a], self.texture[b]).sum(axis=-1)
        size_ab = self.sizes[a] + self.sizes[b]
        if ws:
            s += ws * (1.0 - size_ab / self.area)
        if wf:
            ba, bb = self.boxes[a], self.boxes[b]
            bw = np.maximum(ba[..., 2], bb[..., 2]) - np.minimum(ba[..., 0], bb[..., 0])
            bh = np.maximum(ba[..., 3], bb[..., 3]) - np.minimum(ba[..., 1], bb[..., 1])
            s += wf * (1.0 - (bw * bh - size_ab) / self.area)
        return s

    def merge(self, i: int, j: int) -> int:
        """Form region ``n`` from ``i`` and ``j`` (size-weighted histograms, union box); returns ``n``."""
        t = self.n
        self.n += 1
        si, sj = self.sizes[i], self.sizes[j]
        st = si + sj
        self.sizes[t] = st
        self.colour[t] = (si * self.colour[i] + sj * self.colour[j]) / st
        self.texture[t] = (si * self.texture[i] + sj * self.texture[j]) / st
        bi, bj = self.boxes[i], self.boxes[j]
        self.boxes[t] = (min(bi[0], bj[0]), min(bi[1], bj[1]), max(bi[2], bj[2]), max(bi[3], bj[3]))
        return t


def similarity_weights(names: Sequence[str] | str) -> np.ndarray:
    """``(4,)`` weights from similarity names (``("colour", "fill")``) or letters (``"CTSF"``)."""
    if isinstance(names, str):
        letters = {"C": "colour", "T": "texture", "S": "size", "F": "fill"}
        bad = [ch for ch in names if ch.upper() not in letters]
        if bad or not names:
            raise ValueError(f"similarity combination {names!r}: expected letters from C, T, S, F")
        names = [letters[ch.upper()] for ch in names]
    unknown = [n for n in names if n not in SIMILARITIES]
    if unknown or not names:
        raise ValueError(f"unknown similarities {unknown or names}; expected some of {SIMILARITIES}")
    return np.array([1.0 if s in names else 0.0 for s in SIMILARITIES])


def hierarchical_grouping(regions: RegionSet, weights: np.ndarray | Sequence[str] | str) -> Hierarchy:
    """Greedy hierarchical grouping of ``regions`` by the weighted similarity (see the module docstring).

    Args:
        regions: initial regions and their features (:func:`describe_regions`).
        weights: ``(4,)`` weights of colour, texture, size, fill, or names/letters for
            :func:`similarity_weights`.

    Returns:
        The :class:`Hierarchy`: every region's box in creation order and the merge sequence.
    """
    w = similarity_weights(weights) if isinstance(weights, str) or (
        len(weights) and isinstance(weights[0], str)) else np.asarray(weights, np.float64)
    reg = _Regions(regions, w)
    r = len(regions)
    adj = regions.adjacency
    neighbours: list[set[int] | None] = [set() for _ in range(r)]
    for a, b in adj.tolist():
        neighbours[a].add(b)  # type: ignore[union-attr]
        neighbours[b].add(a)  # type: ignore[union-attr]
    alive = [True] * r
    if len(adj):
        sims = reg.similarity(adj[:, 0], adj[:, 1])
        heap = list(zip((-sims).tolist(), adj[:, 0].tolist(), adj[:, 1].tolist()))
        heapq.heapify(heap)
    else:
        heap = []
    merges: list[tuple[int, int]] = []
    merge_sims: list[float] = []
    push = heapq.heappush
    pop = heapq.heappop
    while heap:
        neg, i, j = pop(heap)
        if not (alive[i] and alive[j]):
            continue  # lazy deletion: a pair with a merged-away region
        t = reg.merge(i, j)
        merges.append((i, j))
        merge_sims.append(-neg)
        ni, nj = neighbours[i], neighbours[j]
        assert ni is not None and nj is not None
        nb = ni | nj
        nb.discard(i)
        nb.discard(j)
        alive[i] = alive[j] = False
        alive.append(True)
        neighbours[i] = neighbours[j] = None
        neighbours.append(nb)
        if nb:
            ks = sorted(nb)
            for k in ks:
                nk = neighbours[k]
                assert nk is not None
                nk.discard(i)
                nk.discard(j)
                nk.add(t)
            s = reg.similarity(t, np.asarray(ks, np.int64))
            for k, v in zip(ks, (-s).tolist()):
                push(heap, (v, k, t))
    m = len(merges)
    return Hierarchy(boxes=reg.boxes[: r + m].copy(), merges=np.asarray(merges, np.int64).reshape(m, 2),
                     similarities=np.asarray(merge_sims, np.float64), num_initial=r)


def brute_force_grouping(regions: RegionSet, weights: np.ndarray | Sequence[str] | str) -> Hierarchy:
    """The same grouping by rescanning every neighbouring pair at each merge (``O(R * E)``): a slow,
    obviously correct reference for tests. Ties go to the smallest ``(a, b)``, as in the heap version."""
    w = similarity_weights(weights) if isinstance(weights, str) or (
        len(weights) and isinstance(weights[0], str)) else np.asarray(weights, np.float64)
    reg = _Regions(regions, w)
    r = len(regions)
    pairs = {(int(a), int(b)) for a, b in regions.adjacency}
    merges: list[tuple[int, int]] = []
    merge_sims: list[float] = []
    while pairs:
        ordered = sorted(pairs)
        arr = np.asarray(ordered, np.int64)
        sims = reg.similarity(arr[:, 0], arr[:, 1])
        best = int(np.argmax(sims))  # first maximum: the smallest pair among ties
        i, j = ordered[best]
        t = reg.merge(i, j)
        merges.append((i, j))
        merge_sims.append(float(sims[best]))
        new = set()
        for a, b in pairs:
            if {a, b} & {i, j}:
                other = b if a in (i, j) else a
                if other not in (i, j):
                    new.add((other, t))
            else:
                new.add((a, b))
        pairs = new
    m = len(merges)
    return Hierarchy(boxes=reg.boxes[: r + m].copy(), merges=np.asarray(merges, np.int64).reshape(m, 2),
                     similarities=np.asarray(merge_sims, np.float64), num_initial=r)
