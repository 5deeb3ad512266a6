"""Superpixels and what a region classifier needs of them: features per region, the region adjacency graph,
region labels from a mask, and smoothing of class scores over the graph.

**Superpixels** (:func:`superpixels`): SLIC (Achanta et al. 2012, scikit-image's, k-means in Lab + position,
connected regions enforced) or Felzenszwalb–Huttenlocher graph segmentation (OpenCV's, the segmentation selective
search starts from); either way a contiguous ``(H, W)`` int64 label image ``0 .. R-1``.

**Region features** (:func:`region_features`), one row per region, in named groups (:attr:`RegionFeatures.groups`):

``lab``        mean and standard deviation of CIE Lab (OpenCV's 8-bit Lab, divided by 255): 6 values;
``lab_hist``   L1-normalised histograms of L, a and b, ``colour_bins`` bins each;
``lbp``        L1-normalised histograms of uniform local binary patterns (8 neighbours) of the grey image at
               radii 1 and 3 (10 bins each): micro-texture;
``gradient``   selective search's texture histograms (:func:`benchsuite.ops.region_grouping.texture_bin_image` of the
               grey image: Gaussian derivatives in 8 orientations, 10 magnitude bins each), L1-normalised;
``hog``        HOG (:mod:`benchsuite.ops.hog`: 8 px cells, 2x2 blocks, 9 bins, L2-Hys) of the region's box enlarged
               ``hog_context`` times about its centre (clipped to the image), resized to ``hog_size`` square, grey;
``position``   centroid ``x / W, y / H``, box ``x1 / W, y1 / H, x2 / W, y2 / H``, area fraction and its square
               root: 8 values;
``context``    the ``lab``, ``lab_hist`` and ``lbp`` groups averaged over the region's neighbours, weighted by the
               shared boundary length (zeros for a region without neighbours);
``layout``     (not a default group) the centroid's cell of a ``layout_grid`` x ``layout_grid`` grid over the image
               and the area fraction's octave (8 bins from 2^-14), one-hot: a place and size prior that a linear
               classifier cannot draw from ``position``'s raw coordinates.

**The region graph** (:func:`region_graph`): regions are adjacent when two 4-neighbouring pixels carry their labels;
an edge's weight is the number of such pixel pairs (the length of the shared boundary in pixels).

**Smoothing** over the graph, two ways:

- :func:`smooth_scores`: iterated weighted neighbour averaging of class scores, ``s <- (1 - alpha) s0 + alpha P s``
  (label propagation, Zhou et al. 2004), ``P`` giving each neighbour its share of the region's boundary length;
  edges may be made contrast-sensitive with :func:`contrast_factors` (``exp(-|lab_a - lab_b|^2 / 2 sigma^2)``, the
  pairwise term of a CRF): the share of the boundary they cut stays with the region's own scores
  (:func:`smoothing_matrix`), so scores flow within uniform areas and not across colour edges;
- :func:`potts_icm`: the labelling minimising ``sum_r cost[r, y_r] + beta sum_(a,b) w_ab [y_a != y_b]`` (a Potts
  model on the region graph, ``w`` the boundary length, optionally times the contrast factors), found by iterated
  conditional modes from the per-region best label: regions are visited in order and each takes its best label
  given its neighbours', until a sweep changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import sparse
from skimage.feature import local_binary_pattern
from skimage.segmentation import slic

from benchsuite.ops.hog import hog_features
from benchsuite.ops.region_grouping import (
    TEXTURE_BINS,
    colour_bin_image,
    region_boxes,
    region_histograms,
    relabel,
    texture_bin_image,
)

VOID = 255
SUPERPIXEL_METHODS = ("slic", "felzenszwalb")
LBP_POINTS = 8
LBP_RADII = (1.0, 3.0)
FEATURE_GROUPS = ("lab", "lab_hist", "lbp", "gradient", "hog", "position", "context")
#: the groups :class:`FeatureConfig` may name: the default ones and ``layout``
KNOWN_GROUPS = (*FEATURE_GROUPS, "layout")
LAYOUT_SIZE_BINS = 8


# --------------------------------------------------------------------------------------------- superpixels
def superpixels(image: np.ndarray, method: str = "slic", n_segments: int = 300, compactness: float = 10.0,
                k: float = 100.0, sigma: float = 0.8) -> np.ndarray:
    """``(H, W)`` int64 contiguous region labels ``0 .. R-1`` of an ``(H, W, 3)`` uint8 RGB image.

    ``slic``: about ``n_segments`` regions of compactness ``compactness`` (Lab distance against pixel distance);
    ``felzenszwalb``: scale ``k`` (pixel value units) and minimum region size ``k`` pixels, Gaussian ``sigma``.
    """
    im = np.asarray(image)
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
        raise ValueError(f"superpixels: expected an (H, W, 3) uint8 RGB image, got {im.shape} {im.dtype}")
    if method == "slic":
        labels = slic(im, n_segments=int(n_segments), compactness=float(compactness), start_label=0,
                      channel_axis=-1, convert2lab=True)
    elif method == "felzenszwalb":
        labels = cv2.ximgproc.segmentation.createGraphSegmentation(float(sigma), float(k), int(k)).processImage(im)
    else:
        raise ValueError(f"unknown superpixel method {method!r}; expected one of {SUPERPIXEL_METHODS}")
    return relabel(labels)[0]


# -------------------------------------------------------------------------------------------------- graph
@dataclass
class RegionGraph:
    """Adjacent regions: ``pairs`` ``(E, 2)`` int64 ``a < b`` sorted, ``weights`` ``(E,)`` float64 the shared
    boundary length in 4-neighbour pixel pairs, ``num_regions`` R."""

    pairs: np.ndarray
    weights: np.ndarray
    num_regions: int

    def matrix(self, weights: np.ndarray | None = None) -> sparse.csr_matrix:
        """The symmetric ``(R, R)`` weight matrix (``weights`` replaces the boundary lengths)."""
        w = self.weights if weights is None else np.asarray(weights, np.float64)
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        return sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                                 shape=(self.num_regions, self.num_regions))


def region_graph(labels: np.ndarray) -> RegionGraph:
    """The region adjacency graph of a contiguous label image (4-connectivity, boundary-length weights)."""
    lab = np.asarray(labels, np.int64)
    r = int(lab.max()) + 1 if lab.size else 0
    codes = []
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :])):
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        codes.append(lo * r + hi)
    allc = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    unique, counts = np.unique(allc, return_counts=True)
    return RegionGraph(np.stack([unique // max(r, 1), unique % max(r, 1)], axis=1).reshape(-1, 2),
                       counts.astype(np.float64), r)


# ----------------------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureConfig:
    """What :func:`region_features` computes (the module docstring); ``groups`` selects and orders the groups."""

    colour_bins: int = 8
    hog_size: int = 32
    hog_context: float = 2.0
    layout_grid: int = 4
    groups: tuple[str, ...] = FEATURE_GROUPS

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in KNOWN_GROUPS]
        if unknown or not self.groups:
            raise ValueError(f"unknown feature groups {unknown or self.groups}; expected some of {KNOWN_GROUPS}")
        if self.hog_size < 16 or self.hog_size % 8:
            raise ValueError(f"hog_size {self.hog_size}: expected a multiple of 8, at least 16 (2x2 cells of 8 px)")


@dataclass
class RegionFeatures:
    """``features`` ``(R, D)`` float32 and ``groups``: name -> the column slice of that group."""

    features: np.ndarray
    groups: dict[str, slice] = field(default_factory=dict)


def _region_mean(labels: np.ndarray, values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``(R, F)`` mean of ``values`` ``(H, W, F)`` over every region."""
    r = len(sizes)
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    idx = labels.reshape(-1)
    sums = np.stack([np.bincount(idx, weights=flat[:, f], minlength=r) for f in range(flat.shape[1])], axis=1)
    return sums / np.maximum(sizes, 1)[:, None]


def _box_hog(grey: np.ndarray, boxes: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """HOG of every region's enlarged box, resized to ``hog_size`` square: ``(R, D)`` float32."""
    h, w = grey.shape
    size = config.hog_size
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * config.hog_context / 2
    lo = np.clip(np.floor(centre - half), 0, [w - 1, h - 1]).astype(np.int64)
    hi = np.clip(np.ceil(centre + half), lo + 1, [w, h]).astype(np.int64)
    crops = np.empty((len(boxes), size, size), np.uint8)
    for i, ((x1, y1), (x2, y2)) in enumerate(zip(lo, hi)):
        crop = grey[y1:y2, x1:x2]
        shrink = crop.shape[0] > size and crop.shape[1] > size
        crops[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return hog_features(crops, cell=8, block=2, bins=9)


def region_features(image: np.ndarray, labels: np.ndarray, config: FeatureConfig | None = None,
                    graph: RegionGraph | None = None) -> RegionFeatures:
    """Features of every region of ``labels`` (contiguous ``(H, W)``) in ``image`` (``(H, W, 3)`` uint8 RGB), the
    groups of ``config.groups`` in that order (the module docstring). ``graph``: the region graph, when already
    computed (the ``context`` group needs it)."""
    cfg = config or FeatureConfig()
    im = np.asarray(image)
    lab_image = cv2.cvtColor(im, cv2.COLOR_RGB2Lab)
    grey = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
    labels = np.asarray(labels, np.int64)
    h, w = labels.shape
    r = int(labels.max()) + 1
    sizes = np.bincount(labels.reshape(-1), minlength=r).astype(np.float64)
    parts: dict[str, np.ndarray] = {}
    need = set(cfg.groups) | ({"lab", "lab_hist", "lbp"} if "context" in cfg.groups else set())
    if "lab" in need:
        x = lab_image.astype(np.float64) / 255.0
        mean = _region_mean(labels, x, sizes)
        var = np.maximum(_region_mean(labels, x * x, sizes) - mean * mean, 0.0)
        parts["lab"] = np.concatenate([mean, np.sqrt(var)], axis=1)
    if "lab_hist" in need:
        parts["lab_hist"] = region_histograms(labels, colour_bin_image(lab_image, cfg.colour_bins), cfg.colour_bins, r)
    if "lbp" in need:
        codes = np.stack([local_binary_pattern(grey, LBP_POINTS, radius, method="uniform").astype(np.int64)
                          for radius in LBP_RADII], axis=-1)
        parts["lbp"] = region_histograms(labels, codes, LBP_POINTS + 2, r)
    if "gradient" in need:
        parts["gradient"] = region_histograms(labels, texture_bin_image(grey), TEXTURE_BINS, r)
    boxes = region_boxes(labels, r)
    if "hog" in need:
        parts["hog"] = _box_hog(grey, boxes, cfg)
    area = sizes / (h * w)
    if need & {"position", "layout"}:
        yy, xx = np.mgrid[0:h, 0:w]
        centroid = _region_mean(labels, np.stack([xx / w, yy / h], axis=-1), sizes)
    if "position" in need:
        parts["position"] = np.concatenate([centroid, boxes / [w, h, w, h], area[:, None], np.sqrt(area)[:, None]],
                                           axis=1)
    if "layout" in need:
        g = int(cfg.layout_grid)
        cell = np.minimum((centroid * g).astype(np.int64), g - 1)
        octave = np.clip(np.floor(np.log2(np.maximum(area, 2.0**-20))) + 14, 0, LAYOUT_SIZE_BINS - 1)
        layout = np.zeros((r, g * g + LAYOUT_SIZE_BINS))
        layout[np.arange(r), cell[:, 1] * g + cell[:, 0]] = 1.0
        layout[np.arange(r), g * g + octave.astype(np.int64)] = 1.0
        parts["layout"] = layout
    if "context" in need:
        g = graph if graph is not None else region_graph(labels)
        m = g.matrix()
        degree = np.asarray(m.sum(axis=1)).reshape(-1)
        own = np.concatenate([parts["lab"], parts["lab_hist"], parts["lbp"]], axis=1)
        parts["context"] = (m @ own) / np.maximum(degree, 1e-12)[:, None]
    columns, groups, start = [], {}, 0
    for name in cfg.groups:
        block = np.asarray(parts[name], np.float32)
        columns.append(block)
        groups[name] = slice(start, start + block.shape[1])
        start += block.shape[1]
    return RegionFeatures(np.concatenate(columns, axis=1), groups)


# -------------------------------------------------------------------------------------------------- labels
def region_labels(labels: np.ndarray, mask: np.ndarray, num_classes: int, void: int = VOID
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, purity)`` of every region of ``labels`` from a truth label map ``mask`` (``(H, W)``, ``void`` never
    counted): ``classes`` ``(R,)`` int64 the most frequent non-void class (ties: the smaller index; -1 for a region of
    void pixels only), ``purity`` ``(R,)`` float64 the share of its non-void pixels of that class (0 where -1)."""
    lab = np.asarray(labels, np.int64).reshape(-1)
    m = np.asarray(mask).astype(np.int64).reshape(-1)
    if lab.shape != m.shape:
        raise ValueError(f"labels {np.shape(labels)} and mask {np.shape(mask)}: expected one shape")
    r = int(lab.max()) + 1 if lab.size else 0
    keep = m != void
    if keep.any() and (m[keep].min() < 0 or m[keep].max() >= num_classes):
        raise ValueError(f"mask values outside 0..{num_classes - 1} and not void ({void})")
    counts = np.bincount(lab[keep] * num_classes + m[keep], minlength=r * num_classes).reshape(r, num_classes)
    total = counts.sum(axis=1)
    classes = np.where(total > 0, np.argmax(counts, axis=1), -1)
    purity = np.where(total > 0, counts.max(axis=1, initial=0) / np.maximum(total, 1), 0.0)
    return classes.astype(np.int64), purity


def paint(labels: np.ndarray, region_values: np.ndarray) -> np.ndarray:
    """Per-pixel values from per-region ones: ``region_values[labels]`` (``(H, W)`` for ``(R,)`` class indices,
    ``(H, W, C)`` for ``(R, C)`` scores)."""
    return np.asarray(region_values)[np.asarray(labels, np.int64)]


# ----------------------------------------------------------------------------------------------- smoothing
def contrast_factors(graph: RegionGraph, lab_means: np.ndarray, sigma: float = 0.05) -> np.ndarray:
    """``(E,)`` edge factors in ``(0, 1]``: ``exp(-|lab_a - lab_b|^2 / (2 sigma^2))`` from ``(R, 3)`` mean Lab colours
    (in the 0..1 units of the ``lab`` feature group): near 1 between regions of one colour, near 0 across an edge."""
    lab = np.asarray(lab_means, np.float64)
    d2 = ((lab[graph.pairs[:, 0]] - lab[graph.pairs[:, 1]]) ** 2).sum(axis=1)
    return np.exp(-d2 / (2.0 * sigma * sigma))


def _edge_weights(graph: RegionGraph, factors: np.ndarray | None) -> np.ndarray:
    if factors is None:
        return graph.weights
    f = np.asarray(factors, np.float64)
    if f.shape != graph.weights.shape or (f < 0).any() or (f > 1).any():
        raise ValueError(f"edge factors {f.shape}: expected ({len(graph.weights)},) values in [0, 1]")
    return graph.weights * f


def smoothing_matrix(graph: RegionGraph, factors: np.ndarray | None = None) -> sparse.csr_matrix:
    """``(R, R)`` row-stochastic ``P``: edge ``(a, b)`` gets ``length_ab f_ab / L_a`` with ``L_a`` region ``a``'s whole
    boundary length with its neighbours, and the diagonal the rest, ``1 - sum_b length_ab f_ab / L_a``: the share of
    the boundary that ``factors`` cut keeps the region's own scores. A region without neighbours keeps its own."""
    lengths = np.asarray(graph.matrix().sum(axis=1)).reshape(-1)
    w = graph.matrix(_edge_weights(graph, factors))
    inv = np.where(lengths > 0, 1.0 / np.where(lengths > 0, lengths, 1), 0.0)
    keep = 1.0 - np.asarray(w.sum(axis=1)).reshape(-1) * inv
    return (sparse.diags(inv) @ w + sparse.diags(keep)).tocsr()


def smooth_scores(scores: np.ndarray, graph: RegionGraph, alpha: float = 0.5, iterations: int = 10,
                  factors: np.ndarray | None = None) -> np.ndarray:
    """``(R, C)`` class scores after ``iterations`` steps of ``s <- (1 - alpha) s0 + alpha P s`` with ``P`` from
    :func:`smoothing_matrix` (``factors``: e.g. :func:`contrast_factors`; None: every edge by its length).
    ``alpha`` in ``[0, 1)``: 0 leaves the scores as they are, larger values let neighbours weigh more."""
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha {alpha}: expected 0 <= alpha < 1")
    s0 = np.asarray(scores, np.float64)
    p = smoothing_matrix(graph, factors)
    s = s0.copy()
    for _ in range(int(iterations)):
        s = (1.0 - alpha) * s0 + alpha * (p @ s)
    return s


def potts_icm(costs: np.ndarray, graph: RegionGraph, beta: float, factors: np.ndarray | None = None,
              max_sweeps: int = 20) -> np.ndarray:
    """``(R,)`` int64 labels minimising ``sum_r costs[r, y_r] + beta sum_edges w [y_a != y_b]`` (``w`` the boundary
    length times ``factors``) by iterated conditional modes (the module docstring), starting from ``argmin costs``;
    ties keep the current label, then go to the smaller index."""
    c = np.asarray(costs, np.float64)
    m = graph.matrix(_edge_weights(graph, factors)).tocsr()
    y = np.argmin(c, axis=1)
    for _ in range(int(max_sweeps)):
        changed = False
        for r in range(len(y)):
            lo, hi = m.indptr[r], m.indptr[r + 1]
            nbr, w = m.indices[lo:hi], m.data[lo:hi]
            agree = np.bincount(y[nbr], weights=w, minlength=c.shape[1])
            energy = c[r] + beta * (w.sum() - agree)
            best = int(np.argmin(energy))
            if energy[best] < energy[y[r]]:
                y[r] = best
                changed = True
        if not changed:
            break
    return y.astype(np.int64)


def potts_energy(costs: np.ndarray, graph: RegionGraph, labels: np.ndarray, beta: float,
                 factors: np.ndarray | None = None) -> float:
    """The energy :func:`potts_icm` minimises, for a labelling ``labels`` ``(R,)``."""
    y = np.asarray(labels, np.int64)
    w = _edge_weights(graph, factors)
    unary = float(np.asarray(costs, np.float64)[np.arange(len(y)), y].sum())
    return unary + beta * float(w[y[graph.pairs[:, 0]] != y[graph.pairs[:, 1]]].sum())


# ------------------------------------------------------------------------------------------------ one call
@dataclass
class SuperpixelImage:
    """One image as regions: ``labels`` ``(H, W)`` int64, ``features`` (:class:`RegionFeatures`), ``graph``."""

    labels: np.ndarray
    features: RegionFeatures
    graph: RegionGraph

    @property
    def num_regions(self) -> int:
        return self.graph.num_regions


def featurise(image: np.ndarray, method: str = "slic", n_segments: int = 300, compactness: float = 10.0,
              k: float = 100.0, config: FeatureConfig | None = None) -> SuperpixelImage:
    """Superpixels, their graph and their features for one ``(H, W, 3)`` uint8 RGB image."""
    labels = superpixels(image, method, n_segments, compactness, k)
    graph = region_graph(labels)
    return SuperpixelImage(labels, region_features(image, labels, config, graph), graph)
