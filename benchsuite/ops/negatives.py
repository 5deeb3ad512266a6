"""One source of background (negative) windows for every classical detector.

A :class:`NegativeSource` holds, for one class, the training images (their sizes, and a loader for the
pixels) and the boxes to avoid in each (every box of the class, difficult ones included). Objects of
*other* classes are not avoided: for this class they are background. The background windows of an
image are every window of the detector's pyramid (the scales :func:`benchsuite.ops.windows.pyramid_scales`
gives for ``start_scale`` and ``step``, positions on a ``stride``-pixel grid of each level) whose IoU with
every avoided box is below ``max_overlap``. So:

- images of any size at or above the window give background windows at every scale the detector scans
  (with ``start_scale > 1`` the upsampled levels too, so objects below the window size have negatives
  at their scale);
- an image exactly the window's size (at the start scale) gives exactly one window: the whole image;
- an image smaller than the window at every scanned scale gives one window when the largest
  window-shaped box inside it (centred) needs at most ``max_small_upscale`` times more upsampling than
  the start scale: that box, upscaled to the window (a window-sized background image that is a little
  smaller than this detector's window is still a negative); a smaller image is skipped and counted in
  :attr:`NegativeStats.small_images_skipped`;
- a tight crop whose object fills the image gives none at scales where every window overlaps it.

Sampling (:meth:`NegativeSource.sample_boxes`, :meth:`NegativeSource.sample`) spreads ``count`` windows
over the images as evenly as their supply allows (water-filling: an image with only one background
window gives it, the rest is shared equally among the others) and, inside an image, gives every
pyramid level the same chance (so the small scales, which have many more positions, do not crowd out
the large ones). When the images hold fewer background windows than asked, all of them come back and
:class:`NegativeStats` says how many (put :meth:`NegativeStats.as_dict` in ``fit_info``).

Hard negatives (:meth:`NegativeSource.mine`): the detector scans each training image (its own fast
scan, given as a callback) and the best-scoring (or random) windows that overlap no avoided box become
negatives; every image of the source is scanned, background-only images included.

Boxes are float ``(N, 4)`` ``x1, y1, x2, y2`` image pixels, windows ``(height, width)`` pixels; IoU comes
from :mod:`benchsuite.ops.boxes`, pyramids and crops from :mod:`benchsuite.ops.windows`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from benchsuite.measure.progress import ProgressLog
from benchsuite.ops.boxes import as_boxes
from benchsuite.ops.windows import (
    WindowSize,
    crop_windows,
    hard_negatives,
    level_size,
    max_iou,
    positions_to_boxes,
    pyramid_scales,
    window_positions,
)

log = logging.getLogger(__name__)

#: ``scan(i, image) -> (boxes (K, 4), scores (K,), extract)``; ``extract(indices (J,) int64)`` returns the
#: caller's features (or anything indexable, ``(J, ...)``) of those windows. See :meth:`NegativeSource.mine`.
ScanFn = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]]


# ------------------------------------------------------------------------------------- pure helpers


def background_windows(height: int, width: int, window: WindowSize, avoid: np.ndarray | None = None,
                       start_scale: float = 1.0, step: float = 1.2, stride: int = 8, max_overlap: float = 0.3,
                       max_levels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every background window of a ``height x width`` image: ``(boxes (K, 4) float64, level (K,) int64)``.

    The windows are those of the pyramid at :func:`~benchsuite.ops.windows.pyramid_scales` (``start_scale``,
    ``step``), at ``stride`` level pixels, mapped to image pixels with each level's exact factors, whose
    IoU with every box in ``avoid`` (``(M, 4)`` image pixels) is below ``max_overlap``. ``level`` is the
    index of the pyramid level each window comes from (0 = the largest scale). Empty when the image is
    smaller than the window at every scale (see :func:`small_image_window`).
    """
    boxes, levels = [], []
    for li, s in enumerate(pyramid_scales(height, width, window, step, start_scale, max_levels)):
        h, w = level_size(height, width, s)
        pos = window_positions(h, w, window, stride)
        b = positions_to_boxes(pos, window, h / height, w / width)
        if avoid is not None and len(avoid):
            b = b[max_iou(b, avoid) < max_overlap]
        boxes.append(b)
        levels.append(np.full(len(b), li, np.int64))
    if not boxes:
        return np.zeros((0, 4), np.float64), np.zeros(0, np.int64)
    return np.concatenate(boxes), np.concatenate(levels)


def small_image_window(height: int, width: int, window: WindowSize, start_scale: float = 1.0,
                       max_small_upscale: float = 2.0) -> np.ndarray:
    """The one window of an image smaller than ``window`` at ``start_scale``: ``(1, 4)`` or ``(0, 4)`` float64.

    It is the largest box of the window's aspect ratio inside the image, centred; it is returned only
    when the image is too small for any pyramid window (otherwise :func:`background_windows` covers it)
    and the box needs at most ``max_small_upscale`` times the start scale's upsampling to fill the
    window, i.e. its height is at least ``window[0] / (start_scale * max_small_upscale)`` pixels.
    """
    if pyramid_scales(height, width, window, 1.2, start_scale, max_levels=1):
        return np.zeros((0, 4), np.float64)
    aspect = window[1] / window[0]
    bh = min(float(height), width / aspect)
    bw = bh * aspect
    if bh <= 0 or bh * start_scale * max_small_upscale < window[0]:
        return np.zeros((0, 4), np.float64)
    x1, y1 = (width - bw) / 2, (height - bh) / 2
    return np.array([[x1, y1, x1 + bw, y1 + bh]], np.float64)


def water_fill(capacity: np.ndarray, count: int) -> np.ndarray:
    """``(N,)`` int64 takes per image: as even as ``capacity`` allows, ``take <= capacity``, summing to
    ``min(count, capacity.sum())``. Images below the common share give everything they have; the others
    get the share (the remainder goes to the first of them, in index order)."""
    cap = np.asarray(capacity, np.int64).reshape(-1)
    total = int(cap.sum())
    if count <= 0 or total == 0:
        return np.zeros(len(cap), np.int64)
    if total <= count:
        return cap.copy()
    lo, hi = 0, int(cap.max())  # the largest share t with sum(min(cap, t)) <= count
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(cap, mid).sum()) <= count:
            lo = mid
        else:
            hi = mid - 1
    take = np.minimum(cap, lo)
    rest = count - int(take.sum())
    more = np.flatnonzero(cap > lo)[:rest]  # rest < len(cap > lo), since share lo + 1 overshoots
    take[more] += 1
    return take


# ------------------------------------------------------------------------------------------ results


@dataclass
class NegativeStats:
    """What a negative source had and gave, for ``fit_info``.

    Attributes:
        requested: windows asked for.
        found: windows given (``< requested`` when the images hold fewer background windows).
        images: images in the source.
        images_with_background: images with at least one background window.
        images_used: images that gave at least one window.
        available: background windows in all images together (at the source's stride and scales).
        small_images_upscaled: images smaller than the window that gave their one upscaled window.
        small_images_skipped: images too small even for that (no negatives from them).
    """

    requested: int = 0
    found: int = 0
    images: int = 0
    images_with_background: int = 0
    images_used: int = 0
    available: int = 0
    small_images_upscaled: int = 0
    small_images_skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


@dataclass
class Negatives:
    """Sampled background windows.

    Attributes:
        boxes: ``(K, 4)`` float64 window boxes, image pixels (window-shaped).
        image_index: ``(K,)`` int64 the source image of each window (sorted ascending).
        crops: ``(K, h + 2m, w + 2m[, C])`` the windows resized to the window plus ``margin`` (image dtype);
            ``None`` from :meth:`NegativeSource.sample_boxes`.
        stats: counts, see :class:`NegativeStats`.
    """

    boxes: np.ndarray
    image_index: np.ndarray
    crops: np.ndarray | None = None
    stats: NegativeStats = field(default_factory=NegativeStats)

    def __len__(self) -> int:
        return len(self.boxes)

    def of_image(self, i: int) -> np.ndarray:
        """``(K_i, 4)`` boxes from image ``i``."""
        return self.boxes[self.image_index == i]


@dataclass
class HardNegatives:
    """Mined windows: false positives of a detector on the source's images.

    Attributes:
        features: ``(K, ...)`` what the scan's ``extract`` returned for the chosen windows, stacked
            (``None`` when nothing was found and no extract result fixed the shape).
        boxes: ``(K, 4)`` float64 the boxes the scan reported for them (image pixels).
        scores: ``(K,)`` float64 their scores.
        image_index: ``(K,)`` int64 their images.
        scanned_images: images scanned.
        candidates: windows above the threshold that overlap no avoided box, before any cap.
    """

    features: np.ndarray | None
    boxes: np.ndarray
    scores: np.ndarray
    image_index: np.ndarray
    scanned_images: int = 0
    candidates: int = 0

    def __len__(self) -> int:
        return len(self.boxes)


# ------------------------------------------------------------------------------------------- source


class NegativeSource:
    """Background windows of one class over a set of images (see the module docstring).

    Args:
        sizes: ``(N, 2)`` ``(height, width)`` pixels of the images.
        avoid: ``N`` arrays ``(M_i, 4)`` image-pixel boxes no negative may overlap (every box of the class,
            difficult ones included; other classes' boxes are *not* avoided).
        load: ``load(i) -> image`` ``(H, W)`` or ``(H, W, C)`` array of image ``i`` (called only for images
            a sample or a scan needs).
        window: ``(height, width)`` of the detector's window in pixels.
        max_overlap: a window is background when its IoU with every avoided box is below this.
        start_scale, step: the detector's pyramid (first scale, ratio between scales); negatives come
            from the same levels it scans.
        stride: window grid in level pixels (a finer grid only adds near-duplicates).
        max_levels: at most this many pyramid levels per image (None: all that fit).
        max_small_upscale: an image smaller than the window at ``start_scale`` gives one upscaled window
            when it needs at most this factor more (see :func:`small_image_window`); 0 skips them all.
    """

    def __init__(self, sizes: Sequence[tuple[int, int]] | np.ndarray, avoid: Sequence[np.ndarray],
                 load: Callable[[int], np.ndarray], window: WindowSize, *, max_overlap: float = 0.3,
                 start_scale: float = 1.0, step: float = 1.2, stride: int = 8, max_levels: int | None = None,
                 max_small_upscale: float = 2.0):
        self.sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
        self.avoid = [as_boxes(a) for a in avoid]
        if len(self.avoid) != len(self.sizes):
            raise ValueError(f"NegativeSource: {len(self.sizes)} images but {len(self.avoid)} avoid lists")
        self.load = load
        self.window: WindowSize = (int(window[0]), int(window[1]))
        self.max_overlap = float(max_overlap)
        self.start_scale = float(start_scale)
        self.step = float(step)
        self.stride = int(stride)
        self.max_levels = max_levels
        self.max_small_upscale = float(max_small_upscale)
        self._capacity: np.ndarray | None = None
        self._small = np.zeros(len(self.sizes), bool)

    # -------------------------------------------------------------------------------- constructors

    @classmethod
    def from_dataset(cls, data: Any, label: int, window: WindowSize, *,
                     load: Callable[[int], np.ndarray] | None = None, **kwargs: Any) -> NegativeSource:
        """The source of class ``label`` over a :class:`~benchsuite.data.detection.DetectionSet`: avoids every
        box of that class (difficult included), loads pixels with ``data.load_image`` (or ``load``, e.g. a
        grey-scale cache). ``kwargs`` go to the constructor."""
        avoid = [s.boxes[s.labels == label] for s in data.samples]
        return cls(data.sizes, avoid, load if load is not None else data.load_image, window, **kwargs)

    @classmethod
    def from_images(cls, images: Sequence[np.ndarray], avoid: Sequence[np.ndarray], window: WindowSize,
                    **kwargs: Any) -> NegativeSource:
        """The source over images already in memory."""
        sizes = [im.shape[:2] for im in images]
        return cls(sizes, avoid, lambda i: images[i], window, **kwargs)

    def __len__(self) -> int:
        return len(self.sizes)

    # ---------------------------------------------------------------------------------- windows

    def windows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """All background windows of image ``i``: ``(boxes (K, 4) float64, level (K,) int64)``; an image
        too small for the pyramid gives its one upscaled window (level ``-1``) or none."""
        h, w = (int(v) for v in self.sizes[i])
        boxes, levels = background_windows(h, w, self.window, self.avoid[i], self.start_scale, self.step,
                                           self.stride, self.max_overlap, self.max_levels)
        if len(boxes) or pyramid_scales(h, w, self.window, self.step, self.start_scale, max_levels=1):
            return boxes, levels
        small = small_image_window(h, w, self.window, self.start_scale, self.max_small_upscale)
        if len(small) and len(self.avoid[i]):
            small = small[max_iou(small, self.avoid[i]) < self.max_overlap]
        return small, np.full(len(small), -1, np.int64)

    def capacity(self) -> np.ndarray:
        """``(N,)`` int64 background windows per image (computed once, from sizes and boxes only)."""
        if self._capacity is None:
            cap = np.zeros(len(self), np.int64)
            progress = ProgressLog(log, "negatives: images whose background windows are counted", len(self))
            for i in range(len(self)):
                progress.update(i, windows=int(cap.sum()))
                h, w = (int(v) for v in self.sizes[i])
                fits = bool(pyramid_scales(h, w, self.window, self.step, self.start_scale, max_levels=1))
                self._small[i] = not fits
                if fits and not len(self.avoid[i]):  # nothing to avoid: count the grid without building it
                    cap[i] = sum(len(range(0, hh - self.window[0] + 1, self.stride))
                                 * len(range(0, ww - self.window[1] + 1, self.stride))
                                 for hh, ww in (level_size(h, w, sc) for sc in pyramid_scales(
                                     h, w, self.window, self.step, self.start_scale, self.max_levels)))
                else:
                    cap[i] = len(self.windows(i)[0])
            self._capacity = cap
        return self._capacity

    def stats(self, requested: int = 0, taken: np.ndarray | None = None) -> NegativeStats:
        """:class:`NegativeStats` of the source (and of a sample with ``taken`` windows per image)."""
        cap = self.capacity()
        t = np.zeros(len(self), np.int64) if taken is None else np.asarray(taken, np.int64)
        return NegativeStats(requested=int(requested), found=int(t.sum()), images=len(self),
                             images_with_background=int((cap > 0).sum()), images_used=int((t > 0).sum()),
                             available=int(cap.sum()), small_images_upscaled=int((self._small & (cap > 0)).sum()),
                             small_images_skipped=int((self._small & (cap == 0)).sum()))

    # ---------------------------------------------------------------------------------- sampling

    def sample_boxes(self, count: int, rng: np.random.Generator) -> Negatives:
        """Up to ``count`` background window boxes spread over the images (no pixels loaded).

        Per image the take is :func:`water_fill` of the capacities; inside an image the windows are drawn
        without replacement, every pyramid level with the same total chance.
        """
        cap = self.capacity()
        take = water_fill(cap, int(count))
        boxes, index = [], []
        progress = ProgressLog(log, "negatives: images sampled", int((take > 0).sum()))
        for done, i in enumerate(np.flatnonzero(take)):
            progress.update(done, windows=sum(map(len, boxes)))
            b, lev = self.windows(int(i))
            n = int(take[i])
            if n < len(b):
                per_level = np.bincount(lev - lev.min(), minlength=1)[lev - lev.min()].astype(np.float64)
                p = 1.0 / per_level
                idx = np.sort(rng.choice(len(b), n, replace=False, p=p / p.sum()))
                b = b[idx]
            boxes.append(b)
            index.append(np.full(len(b), i, np.int64))
        stats = self.stats(count, take)
        if stats.found < count:
            log.info("negatives: %d of %d asked (%d images, %d with background, %d small images skipped)",
                     stats.found, count, stats.images, stats.images_with_background, stats.small_images_skipped)
        if not boxes:
            return Negatives(np.zeros((0, 4), np.float64), np.zeros(0, np.int64), None, stats)
        return Negatives(np.concatenate(boxes), np.concatenate(index), None, stats)

    def sample(self, count: int, rng: np.random.Generator, margin: int = 0) -> Negatives:
        """:meth:`sample_boxes` plus the crops: each window resized to ``window`` with ``margin`` extra pixels
        on every side (:func:`~benchsuite.ops.windows.crop_windows`, mirrored borders), image by image."""
        neg = self.sample_boxes(count, rng)
        crops = []
        for i in np.unique(neg.image_index):
            crops.append(crop_windows(self.load(int(i)), neg.of_image(int(i)), self.window, margin))
        if crops:
            neg.crops = np.concatenate(crops)
        else:
            neg.crops = self._empty_crops(margin)
        return neg

    def _empty_crops(self, margin: int) -> np.ndarray:
        shape: tuple[int, ...] = (0, self.window[0] + 2 * margin, self.window[1] + 2 * margin)
        if len(self):
            probe = self.load(0)
            shape = shape + tuple(probe.shape[2:])
            return np.zeros(shape, probe.dtype)
        return np.zeros(shape, np.uint8)

    # ---------------------------------------------------------------------------------- mining

    def mine(self, scan: ScanFn, count: int, *, per_image: int | None = None, threshold: float = -math.inf,
             order: str = "score", rng: np.random.Generator | None = None,
             progress: Callable[..., Any] | None = None) -> HardNegatives:
        """Hard negatives over every image of the source.

        ``scan(i, image)`` runs the detector on image ``i`` and returns ``(boxes (K, 4), scores (K,),
        extract)``: the boxes are compared with the avoided boxes (pass the boxes the detector would report,
        e.g. object boxes), and ``extract(indices)`` returns the features of the chosen windows while the
        scan's state (its feature maps) is still alive. Windows scoring above ``threshold`` with IoU below
        ``max_overlap`` against every avoided box are candidates; per image at most ``per_image`` are
        kept, the best-scoring (``order="score"``) or a random choice (``order="random"``, needs ``rng``;
        images are then visited in random order and the scan stops once ``count`` are found). With
        ``"score"`` every image is scanned and the best ``count`` overall are kept.
        """
        if order not in ("score", "random"):
            raise ValueError(f"mine: order must be 'score' or 'random', got {order!r}")
        if order == "random" and rng is None:
            raise ValueError("mine: order='random' needs an rng")
        if order == "score":
            return mine_sources([self], lambda i, image: [scan(i, image)], count, per_image=per_image,
                                threshold=threshold, progress=progress)[0]
        assert rng is not None
        images = rng.permutation(len(self))
        if progress is not None:
            images = progress(images, desc="hard negatives")
        acc = _Accumulator()
        for i in images:
            i = int(i)
            b, s, extract = scan(i, self.load(i))
            acc.scanned += 1
            ok, b, s = _candidates(self, i, b, s, threshold)
            acc.candidates += len(ok)
            limit = min(len(ok) if per_image is None else per_image, count - acc.found)
            ok = np.sort(rng.choice(ok, min(len(ok), limit), replace=False)) if len(ok) else ok
            acc.add(i, ok, b, s, extract)
            if acc.found >= count:
                break
        return acc.result(count)


# ------------------------------------------------------------------------------------- mining helpers


def _candidates(source: NegativeSource, i: int, boxes: np.ndarray, scores: np.ndarray, threshold: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices best first, boxes, scores)`` of the windows above ``threshold`` that overlap no avoided box."""
    b, s = as_boxes(boxes), np.asarray(scores, np.float64).reshape(-1)
    above = np.flatnonzero(s > threshold)
    if not len(above):
        return above.astype(np.int64), b, s
    return above[hard_negatives(b[above], s[above], source.avoid[i], source.max_overlap)], b, s


class _Accumulator:
    """Hard negatives gathered image by image."""

    def __init__(self) -> None:
        self.feats: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.index: list[np.ndarray] = []
        self.found = self.candidates = self.scanned = 0

    def add(self, i: int, ok: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
            extract: Callable[[np.ndarray], np.ndarray]) -> None:
        if not len(ok):
            return
        self.feats.append(np.asarray(extract(ok)))
        self.boxes.append(boxes[ok])
        self.scores.append(scores[ok])
        self.index.append(np.full(len(ok), i, np.int64))
        self.found += len(ok)

    def result(self, count: int) -> HardNegatives:
        if not self.boxes:
            return HardNegatives(None, np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), self.scanned,
                                 self.candidates)
        f, b = np.concatenate(self.feats), np.concatenate(self.boxes)
        s, ix = np.concatenate(self.scores), np.concatenate(self.index)
        if len(s) > count:
            keep = np.sort(np.argsort(-s, kind="stable")[:count])
            f, b, s, ix = f[keep], b[keep], s[keep], ix[keep]
        return HardNegatives(f, b, s, ix, self.scanned, self.candidates)


#: ``scan(i, image) -> one (boxes, scores, extract) per source``, see :func:`mine_sources`.
MultiScanFn = Callable[[int, np.ndarray],
                       Sequence[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]]]


def mine_sources(sources: Sequence[NegativeSource], scan: MultiScanFn, count: int | Sequence[int], *,
                 per_image: int | None = None, threshold: float = -math.inf,
                 progress: Callable[..., Any] | None = None) -> list[HardNegatives]:
    """Hard negatives of several classes over the same images in one pass (one scan per image for all
    classes, as a multi-class detector scans): :meth:`NegativeSource.mine` with ``order="score"`` for
    each source. The sources must cover the same images (images are loaded through the first one);
    ``scan(i, image)`` returns one ``(boxes, scores, extract)`` per source; ``count`` is one cap for
    all or one per source."""
    if not sources:
        return []
    n = len(sources[0])
    if any(len(src) != n for src in sources):
        raise ValueError("mine_sources: the sources cover different numbers of images")
    counts = [int(count)] * len(sources) if np.isscalar(count) else [int(c) for c in count]  # type: ignore[union-attr]
    accs = [_Accumulator() for _ in sources]
    images: Any = range(n)
    if progress is not None:
        images = progress(images, desc="hard negatives")
    for i in images:
        image = sources[0].load(i)
        results = scan(i, image)
        for src, acc, (b, s, extract) in zip(sources, accs, results):
            acc.scanned += 1
            ok, b, s = _candidates(src, i, b, s, threshold)
            acc.candidates += len(ok)
            if per_image is not None:
                ok = ok[:per_image]
            acc.add(i, ok, b, s, extract)
    return [acc.result(c) for acc, c in zip(accs, counts)]
