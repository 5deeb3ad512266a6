"""Image pyramids, sliding windows and training crops: the shared machinery of the sliding-window detectors.

Conventions (as everywhere in the suite): images are ``(H, W)`` or ``(H, W, C)`` arrays (uint8 RGB in
practice), boxes are float ``(N, 4)`` arrays ``x1, y1, x2, y2`` in pixels with no "+1", window sizes are
``(height, width)`` pairs in pixels and window positions are ``(row, col)`` top-left corners in the
pixels of a pyramid level.

A pyramid level is the image resized by ``scale`` (``< 1`` shrinks); because level sizes are rounded to
whole pixels the exact factors per axis are kept in :class:`PyramidLevel` (``scale_y``, ``scale_x``) and
every mapping between a level and the image uses them.

The object inside a window: a detector's window usually holds its object plus some context (Dalal &
Triggs' 64 x 128 person window holds a person about 96 pixels tall). :func:`window_boxes` turns object
boxes into the window-shaped boxes to crop for training, and :func:`object_boxes` turns the image boxes
of detected windows back into object boxes, with the same ``context`` fraction.

IoU, NMS and clipping come from :mod:`benchsuite.ops.boxes`; this module never reimplements them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from benchsuite.ops.boxes import as_boxes, box_iou, clip_boxes, nms

log = logging.getLogger(__name__)

WindowSize = tuple[int, int]  # (height, width) in pixels


# --------------------------------------------------------------------------------------------- pyramid


@dataclass(frozen=True)
class PyramidLevel:
    """One level of an image pyramid.

    Attributes:
        image: the resized image, ``(h, w)`` or ``(h, w, C)``, same dtype as the source.
        scale: the nominal factor (level size / image size) the level was made for.
        scale_y, scale_x: the exact factors per axis after rounding the level size to whole pixels,
            ``h / H`` and ``w / W``; a level pixel coordinate ``(x, y)`` is image ``(x / scale_x, y / scale_y)``.
    """

    image: np.ndarray
    scale: float
    scale_y: float
    scale_x: float


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(h, w)`` pixels of the level of an ``height x width`` image at ``scale`` (rounded, at least 1)."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def pyramid_scales(height: int, width: int, window: WindowSize, step: float = 1.2, start: float = 1.0,
                   max_levels: int | None = None) -> list[float]:
    """Scale factors ``start, start / step, start / step**2, ...`` of a pyramid, largest first.

    The list stops before the first level whose rounded size is smaller than ``window`` (height or
    width); an image smaller than the window at ``start`` gives an empty list.

    Args:
        height, width: the image size in pixels.
        window: ``(height, width)`` of the detection window in level pixels.
        step: ratio between consecutive scales, ``> 1`` (1.05 for OpenCV's people detector, 1.2 is coarser).
        start: the first scale; ``> 1`` upsamples the image to find objects smaller than the window.
        max_levels: at most this many levels (None: as many as fit).
    """
    if step <= 1:
        raise ValueError(f"pyramid step must be > 1, got {step}")
    if start <= 0:
        raise ValueError(f"pyramid start scale must be > 0, got {start}")
    wh, ww = int(window[0]), int(window[1])
    scales: list[float] = []
    s = float(start)
    while max_levels is None or len(scales) < max_levels:
        h, w = level_size(height, width, s)
        if h < wh or w < ww:
            break
        scales.append(s)
        s /= step
    return scales


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size_hw = (h, w)`` pixels: area averaging when shrinking, bilinear when growing.

    Works for ``(H, W)`` and ``(H, W, C)`` arrays (uint8 or float32); the result keeps the channel axis.
    """
    h, w = int(size_hw[0]), int(size_hw[1])
    if h < 1 or w < 1:
        raise ValueError(f"cannot resize to {w}x{h} pixels")
    if image.shape[:2] == (h, w):
        return image
    shrink = h <= image.shape[0] and w <= image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out


def image_pyramid(image: np.ndarray, window: WindowSize, step: float = 1.2, start: float = 1.0,
                  max_levels: int | None = None) -> list[PyramidLevel]:
    """The levels of ``image`` at :func:`pyramid_scales` (each at least ``window`` in size), largest first.

    Shrinking goes through octaves: the image halved again and again by area averaging (exact 2 x 2
    means, no aliasing), and each level is resampled bilinearly from the smallest octave that is still
    at least its size (a shrink by less than 2x). That is six times cheaper than area-averaging every
    level from the full image, and much less aliased than bilinear resampling from the full image.
    Levels at scales above 1 are bilinear upsamplings of the image.
    """
    height, width = image.shape[:2]
    levels = []
    octaves = [image]
    for s in pyramid_scales(height, width, window, step, start, max_levels):
        h, w = level_size(height, width, s)
        source = image
        if s < 1:
            while True:  # the smallest octave at least (h, w), halving lazily
                last = octaves[-1]
                half = (last.shape[0] // 2, last.shape[1] // 2)
                if half[0] < h or half[1] < w:
                    break
                octaves.append(resize_image(last, half))
            source = next(o for o in reversed(octaves) if o.shape[0] >= h and o.shape[1] >= w)
        if source.shape[:2] == (h, w):
            level = source
        else:
            level = cv2.resize(source, (w, h), interpolation=cv2.INTER_LINEAR)
            if image.ndim == 3 and level.ndim == 2:
                level = level[:, :, None]
        levels.append(PyramidLevel(level, s, h / height, w / width))
    return levels


# ------------------------------------------------------------------------------------------ windows


def window_positions(height: int, width: int, window: WindowSize, stride: int | tuple[int, int]) -> np.ndarray:
    """Top-left corners ``(K, 2)`` int64 ``(row, col)`` of every ``window`` placed inside a ``height x width``
    level at ``stride`` pixels (an int or ``(row_stride, col_stride)``), row-major; empty when the level
    is smaller than the window."""
    sy, sx = (stride, stride) if np.isscalar(stride) else stride
    if int(sy) < 1 or int(sx) < 1:
        raise ValueError(f"window stride must be >= 1 pixel, got {stride}")
    ys = np.arange(0, height - int(window[0]) + 1, int(sy))
    xs = np.arange(0, width - int(window[1]) + 1, int(sx))
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([gy.ravel(), gx.ravel()], axis=1).astype(np.int64)


def positions_to_boxes(positions: np.ndarray, window: WindowSize, scale_y: float = 1.0,
                       scale_x: float = 1.0) -> np.ndarray:
    """Image boxes ``(K, 4)`` float64 x1y1x2y2 of windows at level positions ``(K, 2)`` ``(row, col)``.

    ``scale_y``, ``scale_x`` are the level's exact factors (:class:`PyramidLevel`); positions may be
    fractional.
    """
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    y1, x1 = p[:, 0], p[:, 1]
    return np.stack([x1 / scale_x, y1 / scale_y, (x1 + window[1]) / scale_x, (y1 + window[0]) / scale_y], axis=1)


def level_to_image_boxes(boxes: np.ndarray, scale_y: float, scale_x: float) -> np.ndarray:
    """Boxes ``(N, 4)`` in level pixels to image pixels (float64)."""
    return as_boxes(boxes) / np.array([scale_x, scale_y, scale_x, scale_y])


def image_to_level_boxes(boxes: np.ndarray, scale_y: float, scale_x: float) -> np.ndarray:
    """Boxes ``(N, 4)`` in image pixels to level pixels (float64); the inverse of :func:`level_to_image_boxes`."""
    return as_boxes(boxes) * np.array([scale_x, scale_y, scale_x, scale_y])


# ----------------------------------------------------------------------------------- window choice


def choose_window(boxes: np.ndarray, base_size: int = 64, multiple: int = 8, context: float = 0.0,
                  max_aspect: float = 4.0, min_side: int | None = None) -> WindowSize:
    """Window ``(height, width)`` in pixels for a class, from its training boxes.

    The aspect ratio (width / height) is the median of the boxes' aspect ratios on a log scale (so a
    class of tall boxes gets a tall window, wide boxes a wide one, square boxes a square one), clipped to
    ``[1 / max_aspect, max_aspect]``. The window area is ``base_size ** 2``; both sides are rounded to a
    multiple of ``multiple`` pixels (a HOG cell) and are at least ``min_side`` (default ``2 * multiple``).
    ``context`` does not change the shape: it is the margin fraction the caller uses with
    :func:`window_boxes` (kept here so one call documents the window); it is validated only.

    Args:
        boxes: ``(N, 4)`` x1y1x2y2 pixel boxes of one class; with none (or only degenerate ones) the
            window is square.
    """
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if base_size < 1 or multiple < 1:
        raise ValueError(f"base_size and multiple must be >= 1, got {base_size}, {multiple}")
    b = as_boxes(boxes)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    ok = (w > 0) & (h > 0)
    log_aspect = float(np.median(np.log(w[ok] / h[ok]))) if ok.any() else 0.0
    limit = math.log(max_aspect)
    aspect = math.exp(min(max(log_aspect, -limit), limit))
    min_side = 2 * multiple if min_side is None else int(min_side)
    height = base_size / math.sqrt(aspect)
    width = base_size * math.sqrt(aspect)
    rh = max(min_side, round(height / multiple) * multiple)
    rw = max(min_side, round(width / multiple) * multiple)
    return rh, rw


def class_window(boxes: np.ndarray, base_size: int, multiple: int, context: float, max_aspect: float,
                 max_upscale: float, min_base_size: int) -> tuple[WindowSize, float]:
    """The window of a class and the pyramid scale its smaller objects need: ``((height, width), start_scale)``.

    The window is :func:`choose_window` of the class's ``(N, 4)`` training boxes at ``base_size`` (sides multiples
    of ``multiple``); ``start_scale`` is the scale at which the 10th percentile of the objects' window heights
    (:func:`window_boxes` with ``context``) fills it. When that would exceed ``max_upscale`` (tiny objects) the
    window shrinks instead, down to ``min_base_size``, so a pyramid starting at ``max_upscale`` reaches them. The
    caller caps the start scale at ``max_upscale`` (the sliding-window detectors' shared window protocol).
    """

    def low_height(win: WindowSize) -> float:
        return max(1.0, float(np.percentile(np.diff(window_boxes(boxes, win, context)[:, 1::2], axis=1), 10)))

    win = choose_window(boxes, base_size, multiple, max_aspect=max_aspect)
    h10 = low_height(win)
    if win[0] / h10 > max_upscale and min_base_size < base_size:
        base = max(float(min_base_size), base_size * max_upscale * h10 / win[0])
        win = choose_window(boxes, round(base), multiple, max_aspect=max_aspect)
        h10 = low_height(win)
    return win, win[0] / h10


def window_boxes(boxes: np.ndarray, window: WindowSize, context: float = 0.0) -> np.ndarray:
    """Window-shaped boxes ``(N, 4)`` float64 around object boxes ``(N, 4)``.

    Each is the smallest box of the window's aspect ratio, centred on the object, that contains it,
    then grown by ``1 + 2 * context`` about the centre (``context`` of the object's extent on each side).
    The result may reach outside the image; :func:`crop_windows` pads.
    """
    b = as_boxes(boxes)
    aspect = window[1] / window[0]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    h = np.maximum(h, w / aspect) * (1 + 2 * context)
    w = h * aspect
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def object_boxes(boxes: np.ndarray, context: float = 0.0) -> np.ndarray:
    """Object boxes ``(N, 4)`` float64 inside window boxes: each shrunk by ``1 + 2 * context`` about its
    centre (the inverse of the growth in :func:`window_boxes`)."""
    b = as_boxes(boxes)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    half_w = (b[:, 2] - b[:, 0]) / (2 * (1 + 2 * context))
    half_h = (b[:, 3] - b[:, 1]) / (2 * (1 + 2 * context))
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


# -------------------------------------------------------------------------------------------- crops


def crop_windows(image: np.ndarray, boxes: np.ndarray, window: WindowSize, margin: int = 0) -> np.ndarray:
    """The image regions under ``boxes`` resized to the window: ``(N, h + 2m, w + 2m[, C])``, image dtype.

    Each box ``(x1, y1, x2, y2)`` (image pixels, float, may reach outside the image: the border is
    mirrored) maps onto the central ``window = (h, w)`` pixels of the output, and ``margin = m`` extra
    pixels at the same scale surround it (so features that look past the window edge, like HOG's
    gradients and bilinear cells, see the same pixels as on a whole pyramid level). Resizing uses area
    averaging when shrinking, bilinear interpolation when growing.
    """
    b = as_boxes(boxes)
    wh, ww = int(window[0]), int(window[1])
    oh, ow = wh + 2 * margin, ww + 2 * margin
    shape = (len(b), oh, ow, *image.shape[2:])
    out = np.zeros(shape, image.dtype)
    height, width = image.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(b):
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"crop_windows: degenerate box {b[i].tolist()}")
        fx, fy = ww / (x2 - x1), wh / (y2 - y1)  # output pixels per image pixel
        # the region the output covers, margin included, in image pixels
        rx1, ry1 = x1 - margin / fx, y1 - margin / fy
        rx2, ry2 = x2 + margin / fx, y2 + margin / fy
        ix1, iy1 = math.floor(rx1), math.floor(ry1)
        ix2, iy2 = math.ceil(rx2), math.ceil(ry2)
        pad = (max(0, -iy1), max(0, iy2 - height), max(0, -ix1), max(0, ix2 - width))
        region = image[max(0, iy1):min(height, iy2), max(0, ix1):min(width, ix2)]
        if any(pad):
            if region.size == 0:
                region = np.zeros((iy2 - iy1, ix2 - ix1, *image.shape[2:]), image.dtype)
            else:
                region = cv2.copyMakeBorder(np.ascontiguousarray(region), *pad, cv2.BORDER_REFLECT)
                if image.ndim == 3 and region.ndim == 2:
                    region = region[:, :, None]
        # the integer region is a little larger than the exact one: an affine map keeps sub-pixel accuracy
        sx = ow / (rx2 - rx1)
        sy = oh / (ry2 - ry1)
        # area-average the region to about the output's resolution first (no aliasing when shrinking),
        # then one exact sub-pixel affine warp; kx, ky are the pre-resize factors per axis
        ph = max(1, round(region.shape[0] * min(sy, 1.0)))
        pw = max(1, round(region.shape[1] * min(sx, 1.0)))
        if (ph, pw) != region.shape[:2]:
            pre = cv2.resize(np.ascontiguousarray(region), (pw, ph), interpolation=cv2.INTER_AREA)
            ky, kx = ph / region.shape[0], pw / region.shape[1]
            region = pre
        else:
            ky = kx = 1.0
        # continuous coordinates (pixel i covers [i, i + 1)): output U = (Xregion - (rx1 - ix1)) * sx, and
        # OpenCV's pixel indices sit at continuous - 0.5
        ax, ay = sx / kx, sy / ky
        ox, oy = (rx1 - ix1) * kx, (ry1 - iy1) * ky
        matrix = np.array([[ax, 0, ax * (0.5 - ox) - 0.5], [0, ay, ay * (0.5 - oy) - 0.5]], np.float64)
        warped = cv2.warpAffine(np.ascontiguousarray(region), matrix, (ow, oh), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out[i] = warped.reshape(out.shape[1:])
    return out


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator, copies: int, shift: float = 0.05,
                 scale: float = 0.05) -> np.ndarray:
    """``copies`` randomly perturbed versions of each box, ``(N * copies, 4)`` float64, grouped by copy.

    Each copy moves the centre by up to ``shift`` of the box's width/height and scales both sides by one
    factor in ``[1 - scale, 1 + scale]`` (uniform), keeping the aspect ratio.
    """
    b = as_boxes(boxes)
    if copies < 1 or not len(b):
        return np.zeros((0, 4), np.float64)
    b = np.tile(b, (copies, 1))
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + rng.uniform(-shift, shift, len(b)) * w
    cy = (b[:, 1] + b[:, 3]) / 2 + rng.uniform(-shift, shift, len(b)) * h
    f = rng.uniform(1 - scale, 1 + scale, len(b))
    w, h = w * f, h * f
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def keep_inside(boxes: np.ndarray, original: np.ndarray, width: float, height: float) -> np.ndarray:
    """``(N, 4)`` float64 ``boxes`` shifted (never resized) so that each stays inside the image as far as its
    ``original`` box (row for row) did.

    Per axis the allowed extent is ``[min(orig_1, 0), max(orig_2, size)]``: a box whose original lay in the
    image stays in it, and one whose original reached past the border may reach as far. A box longer than
    that extent is centred on it. Used for jittered positives, so that jitter moves the object inside the
    picture instead of pulling in mirrored border pixels.
    """
    b, o = as_boxes(boxes).copy(), as_boxes(original)
    for lo_i, hi_i, size in ((0, 2, float(width)), (1, 3, float(height))):
        lo, hi = np.minimum(o[:, lo_i], 0.0), np.maximum(o[:, hi_i], size)
        a1, a2 = b[:, lo_i], b[:, hi_i]
        d = np.maximum(lo - a1, 0.0) + np.minimum(hi - a2, 0.0)
        too_long = (a2 - a1) > (hi - lo)
        d = np.where(too_long, (lo + hi) / 2 - (a1 + a2) / 2, d)
        b[:, lo_i] += d
        b[:, hi_i] += d
    return b


def positive_crops(image: np.ndarray, boxes: np.ndarray, window: WindowSize, context: float = 0.0,
                   margin: int = 0, flip: bool = True, jitter: int = 0, rng: np.random.Generator | None = None,
                   shift: float = 0.05, scale: float = 0.05) -> np.ndarray:
    """Training crops of the objects in ``boxes`` (``(N, 4)`` image pixels), resized to the window.

    Each object gives its exact crop (:func:`window_boxes` with ``context``), plus ``jitter`` randomly
    shifted and scaled copies (:func:`jitter_boxes`, needs ``rng``), and, with ``flip``, the mirror image
    of every one of those. Output ``(M, h + 2 * margin, w + 2 * margin[, C])``, image dtype, with
    ``M = N * (1 + jitter) * (2 if flip else 1)``.

    Works the same for objects in scenes and for tight crops (the box is the whole image): the window's
    context beyond the image border is mirrored (:func:`crop_windows`), and a jittered copy is shifted
    back so that its object stays inside the image as far as the original did (:func:`keep_inside`).
    """
    b = window_boxes(boxes, window, context)
    if jitter:
        if rng is None:
            raise ValueError("positive_crops: jitter needs an rng")
        jit = jitter_boxes(b, rng, jitter, shift, scale)
        obj = object_boxes(jit, context)
        moved = keep_inside(obj, object_boxes(np.tile(b, (jitter, 1)), context), image.shape[1], image.shape[0])
        b = np.concatenate([b, jit + (moved - obj)])
    crops = crop_windows(image, b, window, margin)
    if flip and len(crops):
        crops = np.concatenate([crops, crops[:, :, ::-1]])
    return np.ascontiguousarray(crops)


def local_maxima(scores: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the entries of a score map ``(H, W)`` (float32 or float64) that are maxima of their 3 x 3
    neighbourhood (ties included); all True for a map of one entry. A sliding-window detector keeps only these
    window hits: a hit's neighbours, one stride away, overlap it heavily and NMS would mostly drop them anyway."""
    s = np.ascontiguousarray(scores)
    if s.size <= 1:
        return np.ones(s.shape, bool)
    return s >= cv2.dilate(s, np.ones((3, 3), np.uint8))


def class_detections(hits: list[tuple[np.ndarray, np.ndarray]], labels: list[int], width: int, height: int,
                     nms_threshold: float, score_threshold: float, max_detections: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections from per-class window hits: ``(boxes (D, 4) float32, scores (D,) float32, labels (D,) int64)``.

    ``hits[k] = (boxes (N, 4) image pixels, scores (N,))`` of class ``labels[k]``: those scoring above
    ``score_threshold`` are clipped to the ``width x height`` image (empty ones dropped) and suppressed per class
    (:func:`benchsuite.ops.boxes.nms` at ``nms_threshold``); the ``max_detections`` best scores are kept, best
    first."""
    boxes, scores, labs = [], [], []
    for (hb, hs), label in zip(hits, labels):
        keep = hs > score_threshold
        if not keep.any():
            continue
        b = clip_boxes(hb[keep], width, height)
        s = hs[keep]
        ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, s = b[ok], s[ok]
        idx = nms(b, s, nms_threshold)
        boxes.append(b[idx])
        scores.append(s[idx])
        labs.append(np.full(len(idx), label, np.int64))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    b, s, lab = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labs)
    order = np.argsort(-s, kind="stable")[:max_detections]
    return b[order].astype(np.float32), s[order].astype(np.float32), lab[order]


def max_iou(boxes: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """``(N,)`` float64: for each box, its largest IoU with any box in ``avoid`` (0 when ``avoid`` is empty)."""
    b, a = as_boxes(boxes), as_boxes(avoid)
    if not len(a) or not len(b):
        return np.zeros(len(b), np.float64)
    return box_iou(b, a).max(axis=1)


def random_negative_boxes(rng: np.random.Generator, height: int, width: int, window: WindowSize, count: int,
                          avoid: np.ndarray | None = None, max_overlap: float = 0.3, min_scale: float = 1.0,
                          max_tries: int = 20) -> np.ndarray:
    """Up to ``count`` random window-shaped boxes ``(K, 4)`` float64 inside a ``height x width`` image whose
    IoU with every box in ``avoid`` is below ``max_overlap``.

    Box heights are drawn log-uniformly between ``window[0] * min_scale`` pixels (``min_scale < 1``
    allows upsampled negatives) and the largest window-shaped box the image holds; positions uniformly.
    Fewer than ``count`` come back when the image is smaller than the smallest box or the free space
    is too small to find them within ``max_tries`` rounds of rejection sampling.
    """
    aspect = window[1] / window[0]
    h_min = window[0] * min_scale
    h_max = min(height, width / aspect)
    if count <= 0 or h_max < h_min:
        return np.zeros((0, 4), np.float64)
    avoid_b = as_boxes(avoid if avoid is not None else np.zeros((0, 4)))
    found: list[np.ndarray] = []
    n_found = 0
    for _ in range(max_tries):
        n = 4 * (count - n_found)
        h = np.exp(rng.uniform(math.log(h_min), math.log(h_max), n))
        w = h * aspect
        x1 = rng.uniform(0, 1, n) * (width - w)
        y1 = rng.uniform(0, 1, n) * (height - h)
        cand = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
        cand = cand[max_iou(cand, avoid_b) < max_overlap][: count - n_found]
        found.append(cand)
        n_found += len(cand)
        if n_found >= count:
            break
    return np.concatenate(found) if found else np.zeros((0, 4), np.float64)


def negative_crops(image: np.ndarray, rng: np.random.Generator, window: WindowSize, count: int,
                   avoid: np.ndarray | None = None, max_overlap: float = 0.3, margin: int = 0,
                   min_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Random background crops of ``image``: ``(crops (K, h + 2m, w + 2m[, C]), boxes (K, 4))``, K <= count.

    Boxes come from :func:`random_negative_boxes` (IoU below ``max_overlap`` with every box in
    ``avoid``, which should hold every box of the class, difficult ones included).
    """
    boxes = random_negative_boxes(rng, image.shape[0], image.shape[1], window, count, avoid, max_overlap,
                                  min_scale)
    return crop_windows(image, boxes, window, margin), boxes


def hard_negatives(boxes: np.ndarray, scores: np.ndarray, avoid: np.ndarray, max_overlap: float = 0.3,
                   limit: int | None = None) -> np.ndarray:
    """Indices (int64) of detections that are false positives for mining: IoU below ``max_overlap`` with
    every box in ``avoid``, best score first, at most ``limit``."""
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"hard_negatives: {len(b)} boxes, {len(s)} scores")
    keep = np.flatnonzero(max_iou(b, avoid) < max_overlap)
    keep = keep[np.argsort(-s[keep], kind="stable")]
    return keep[:limit].astype(np.int64) if limit is not None else keep.astype(np.int64)
