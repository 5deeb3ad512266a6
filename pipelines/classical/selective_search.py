"""``selective-search``: the suite's own selective search (Uijlings, van de Sande, Gevers & Smeulders,
"Selective Search for Object Recognition", IJCV 2013).

For every *strategy* (a colour space, a Felzenszwalb-Huttenlocher scale ``k`` and a similarity
combination): segment the image in that colour space (``skimage.segmentation.felzenszwalb``, sigma 0.8,
minimum region size ``k``), group the regions hierarchically (:mod:`benchsuite.ops.region_grouping`),
and keep the box of every region formed. Segmentations and region features are shared by the strategies
that differ only in their similarity combination.

Ranking, as in the paper: within a strategy's hierarchy the whole-image region has position 1 and the
position grows towards the initial regions (the later a region is formed, the smaller its position);
each box's position is multiplied by a random number in ``[0, 1)``, the boxes of all strategies are
sorted by that value (smallest first), and duplicate boxes are removed, keeping the first.

Presets (the paper's Table 5):

``single``   HSV; k = 100; C+T+S+F.
``fast``     HSV, Lab; k = 50, 100; C+T+S+F, T+S+F (8 strategies).
``quality``  HSV, Lab, rgI, H, I; k = 50, 100, 150, 300; C+T+S+F, T+S+F, F, S (80 strategies).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb

from benchsuite.api import Context, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.ops.region_grouping import (
    colour_bin_image,
    describe_regions,
    hierarchical_grouping,
    relabel,
    similarity_weights,
    texture_bin_image,
)
from benchsuite.proposal_cache import default_workers, parallel_map, store_proposals

#: the smoke profile's parameters of selective-search, shared by the proposers of ss-hog-svm and rcnn (the same
#: proposer parameters share the proposal cache): images shrunk to 200 px, one scale
SS_SMOKE: dict[str, Any] = {"preset": "fast", "ks": (100,), "max_side": 200}

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, tuple[Any, ...]]] = {
    "single": {"colour_spaces": ("hsv",), "ks": (100,), "similarities": ("CTSF",)},
    "fast": {"colour_spaces": ("hsv", "lab"), "ks": (50, 100), "similarities": ("CTSF", "TSF")},
    "quality": {"colour_spaces": ("hsv", "lab", "rgi", "h", "i"), "ks": (50, 100, 150, 300),
                "similarities": ("CTSF", "TSF", "F", "S")},
}
COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")


def convert_colour(image: np.ndarray, space: str) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB in colour space ``space``: uint8, ``(H, W, 3)`` or ``(H, W)`` for the
    one-channel spaces. ``hsv`` uses the full 0..255 hue range; ``rgi`` is normalised r, g (times 255)
    and intensity; ``h`` the hue alone; ``i`` the intensity alone."""
    if space == "rgb":
        return image
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    if space == "h":
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)[:, :, 0])
    if space == "i":
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if space == "rgi":
        x = image.astype(np.float32)
        total = x.sum(axis=2)
        total[total == 0] = 1
        out = np.empty_like(image)
        out[:, :, 0] = np.clip(np.rint(x[:, :, 0] / total * 255), 0, 255)
        out[:, :, 1] = np.clip(np.rint(x[:, :, 1] / total * 255), 0, 255)
        out[:, :, 2] = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return out
    raise ValueError(f"unknown colour space {space!r}; expected one of {COLOUR_SPACES}")


SEGMENTERS = ("skimage", "opencv")


def segment(image: np.ndarray, k: float, sigma: float = 0.8, segmenter: str = "skimage") -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation of a uint8 ``(H, W[, C])`` image with scale ``k`` (pixel
    values in 0..255 units, as in the paper) and minimum region size ``k``: ``(H, W)`` labels 0..R-1.

    ``segmenter``: ``"skimage"`` (``skimage.segmentation.felzenszwalb``) or ``"opencv"``
    (``cv2.ximgproc.segmentation.createGraphSegmentation``, the same algorithm, about twice as fast).
    """
    if segmenter == "skimage":
        labels = felzenszwalb(image, scale=float(k), sigma=sigma, min_size=int(k),
                              channel_axis=-1 if image.ndim == 3 else None)
    elif segmenter == "opencv":
        labels = cv2.ximgproc.segmentation.createGraphSegmentation(sigma, float(k), int(k)).processImage(image)
    else:
        raise ValueError(f"unknown segmenter {segmenter!r}; expected one of {SEGMENTERS}")
    return relabel(labels)[0]


def selective_search(image: np.ndarray, colour_spaces: tuple[str, ...], ks: tuple[float, ...],
                     similarities: tuple[str, ...], sigma: float = 0.8, seed: int = 0,
                     segmenter: str = "skimage") -> np.ndarray:
    """Ranked, de-duplicated proposals ``(N, 4)`` float32 x1y1x2y2 pixels for an ``(H, W, 3)`` uint8 RGB image.

    One strategy per (colour space, k, similarity combination); see the module docstring for the ranking.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"selective_search: expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                         f"{image.dtype}")
    weights = [similarity_weights(s) for s in similarities]
    rng = np.random.default_rng(seed)
    boxes, values = [], []
    for space in colour_spaces:
        converted = convert_colour(image, space)
        colour_bins = colour_bin_image(converted)
        texture_bins = texture_bin_image(converted)
        for k in ks:
            labels = segment(converted, k, sigma, segmenter)
            regions = describe_regions(labels, colour_bins, texture_bins)
            for w in weights:
                hierarchy = hierarchical_grouping(regions, w)
                n = len(hierarchy.boxes)
                position = n - np.arange(n, dtype=np.float64)  # last formed (whole image) = 1
                boxes.append(hierarchy.boxes)
                values.append(position * rng.random(n))
    allb = np.concatenate(boxes)
    order = np.argsort(np.concatenate(values), kind="stable")
    ranked = allb[order]
    _, first = np.unique(ranked, axis=0, return_index=True)
    return ranked[np.sort(first)].astype(np.float32)


class SelectiveSearch(Proposer):
    """Selective search (Uijlings et al. 2013): hierarchical grouping of Felzenszwalb-Huttenlocher regions
    over several colour spaces, scales and similarity combinations; boxes ranked as in the paper.

    Parameters:
        preset: ``"fast"``, ``"quality"`` or ``"single"`` (the paper's settings; module docstring).
        colour_spaces, ks, similarities: override the preset's (``similarities`` as letter codes, e.g.
            ``("CTSF", "TSF")``).
        sigma: Gaussian smoothing of the Felzenszwalb-Huttenlocher segmentation.
        segmenter: ``"skimage"`` or ``"opencv"`` implementation of that segmentation (:func:`segment`).
        max_side: when set, images whose longer side exceeds it are shrunk first (boxes are scaled back).
        seed: seed of the random part of the ranking.
        n_jobs: processes for :meth:`propose_batch` (None: the job's ``ctx.num_threads`` after ``fit``,
            else all CPUs). Does not change the proposals.
    """

    id: ClassVar[str] = "selective-search"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "Selective search after Uijlings et al. (IJCV 2013), the suite's implementation"
    propose_batch_size: ClassVar[int] = 16
    cache_ignored_params: ClassVar[tuple[str, ...]] = ("n_jobs",)
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": SS_SMOKE,
    }

    def __init__(self, preset: str = "fast", colour_spaces: tuple[str, ...] | None = None,
                 ks: tuple[float, ...] | None = None, similarities: tuple[str, ...] | None = None,
                 sigma: float = 0.8, segmenter: str = "skimage", max_side: int | None = None, seed: int = 0,
                 n_jobs: int | None = None):
        self.preset = preset
        self.colour_spaces = colour_spaces
        self.ks = ks
        self.similarities = similarities
        self.sigma = sigma
        self.segmenter = segmenter
        self.max_side = max_side
        self.seed = seed
        self.n_jobs = n_jobs

    def strategies(self) -> dict[str, tuple[Any, ...]]:
        """The colour spaces, ks and similarity combinations in effect (preset plus overrides)."""
        if self.preset not in PRESETS:
            raise ValueError(f"selective-search: unknown preset {self.preset!r}; expected one of {list(PRESETS)}")
        out = dict(PRESETS[self.preset])
        for name in ("colour_spaces", "ks", "similarities"):
            value = getattr(self, name)
            if value is not None:
                out[name] = tuple(value)
        for space in out["colour_spaces"]:
            if space not in COLOUR_SPACES:
                raise ValueError(f"selective-search: unknown colour space {space!r}; expected {COLOUR_SPACES}")
        for s in out["similarities"]:
            similarity_weights(s)
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"selective-search: unknown segmenter {self.segmenter!r}; expected {SEGMENTERS}")
        return out

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> SelectiveSearch:
        st = self.strategies()
        self.workers_ = default_workers(self.n_jobs if self.n_jobs is not None else ctx.num_threads)
        self.cache_dir_ = Path(ctx.cache_dir)
        ctx.record(strategies=len(st["colour_spaces"]) * len(st["ks"]) * len(st["similarities"]),
                   colour_spaces=list(st["colour_spaces"]), ks=list(st["ks"]),
                   similarities=list(st["similarities"]), segmenter=self.segmenter, workers=self.workers_)
        return self

    def propose(self, image: np.ndarray) -> np.ndarray:
        st = self.strategies()
        h, w = image.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        boxes = selective_search(image, st["colour_spaces"], st["ks"], st["similarities"], self.sigma, self.seed,
                                 self.segmenter)
        if scale != 1.0:
            boxes = boxes / np.float32(scale)
            boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float32))
        return boxes

    def propose_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Proposals for several images over ``n_jobs`` processes (both cores on the reference machine).

        Always computed (never read from the proposal cache, so the proposals task times real work); after
        ``fit`` the results are also stored in the cache for the detectors that classify proposals.
        """
        workers = getattr(self, "workers_", None) or default_workers(self.n_jobs)
        out = parallel_map(self.propose, images, workers)
        cache_dir = getattr(self, "cache_dir_", None)
        if cache_dir is not None:
            store_proposals(images, out, self, cache_dir)
        return out
