"""Histograms of oriented gradients (Dalal & Triggs 2005), vectorised over a batch of images.

The steps, each a small function so the detectors can reuse them:

1. :func:`gradients`: centred ``[-1, 0, 1]`` differences per colour channel; at each pixel the channel
   with the largest magnitude wins; orientation unsigned, in ``[0, pi)``.
2. :func:`orientation_planes`: each pixel's magnitude split linearly between the two nearest of
   ``bins`` orientation bins (circular), giving ``bins`` planes.
3. :func:`cell_histograms`: the planes summed over ``cell x cell`` pixel cells with bilinear spatial
   weights (a pixel contributes to the four nearest cell centres), done as two small matrix products.
4. :func:`block_normalize`: overlapping blocks of ``block x block`` cells (stride one cell), each
   normalised by L2-Hys (L2, clip at 0.2, L2 again).

Shapes: images ``(N, H, W)`` or ``(N, H, W, C)``, any dtype (uint8 RGB in this suite); cell histograms
``(N, H // cell, W // cell, bins)``; blocks ``(N, Hc - block + 1, Wc - block + 1, block * block * bins)``.
Pixels beyond the last whole cell are ignored.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

L2HYS_CLIP = 0.2


def _channels_first(plane: np.ndarray, c: int) -> np.ndarray:
    """An OpenCV ``(H, W)`` or ``(H, W, C)`` result as a contiguous ``(1, C, H, W)`` array."""
    if plane.ndim == 2:
        return plane[None, None]
    return np.stack(cv2.split(plane))[None] if c > 1 else plane[None, None, :, :, 0]


def gradients(images: np.ndarray, sqrt_gamma: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(magnitude, orientation)``, each ``(N, H, W)`` float32; orientation in ``[0, pi)``.

    The channels are laid out as contiguous planes first (all later steps then read memory in order);
    the angle comes from OpenCV's ``cv2.phase`` (within 0.01 degree of ``arctan2``, ten times faster).
    A side of one pixel has zero gradient along it.
    """
    imgs = np.asarray(images)
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    n, h, w, c = imgs.shape
    if n == 1 and 1 <= c <= 4 and h and w:  # one image (a pyramid level): OpenCV's [-1, 0, 1] filters
        one = np.sqrt(imgs[0].astype(np.float32)) if sqrt_gamma else np.ascontiguousarray(imgs[0])
        if one.dtype not in (np.uint8, np.float32):
            one = one.astype(np.float32)
        gx = _channels_first(cv2.Sobel(one, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REPLICATE), c)
        gy = _channels_first(cv2.Sobel(one, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REPLICATE), c)
    else:
        x = np.empty((n, c, h, w), np.float32)
        x[...] = imgs.transpose(0, 3, 1, 2)
        if sqrt_gamma:
            np.sqrt(x, out=x)
        gx = np.zeros_like(x)
        gy = np.zeros_like(x)
        if w > 1:  # centred differences, one-sided at the borders
            np.subtract(x[..., 2:], x[..., :-2], out=gx[..., 1:-1])
            np.subtract(x[..., 1], x[..., 0], out=gx[..., 0])
            np.subtract(x[..., -1], x[..., -2], out=gx[..., -1])
        if h > 1:
            np.subtract(x[:, :, 2:], x[:, :, :-2], out=gy[:, :, 1:-1])
            np.subtract(x[:, :, 1], x[:, :, 0], out=gy[:, :, 0])
            np.subtract(x[:, :, -1], x[:, :, -2], out=gy[:, :, -1])
    mag2 = gx * gx
    mag2 += gy * gy
    # the channel with the largest magnitude wins (the first one on ties)
    bx, by, bm = gx[:, 0], gy[:, 0], mag2[:, 0]
    for ch in range(1, c):
        better = mag2[:, ch] > bm
        bx = np.where(better, gx[:, ch], bx)
        by = np.where(better, gy[:, ch], by)
        bm = np.where(better, mag2[:, ch], bm)
    magnitude = np.sqrt(bm)
    if n * h * w == 0:
        return magnitude, np.zeros((n, h, w), np.float32)
    orientation = cv2.phase(np.ascontiguousarray(bx).reshape(n * h, w),
                            np.ascontiguousarray(by).reshape(n * h, w)).reshape(n, h, w)
    np.subtract(orientation, np.float32(np.pi), out=orientation, where=orientation >= np.pi)
    orientation[orientation >= np.pi] = 0.0  # float rounding of values just below 2 pi
    return magnitude, orientation


def orientation_planes(magnitude: np.ndarray, orientation: np.ndarray, bins: int = 9) -> np.ndarray:
    """``(N, H, W, bins)`` float32: magnitude shared linearly between the two nearest bin centres."""
    width = np.pi / bins
    u = orientation / width - 0.5
    lower = np.floor(u)
    frac = (u - lower).astype(np.float32)
    b0 = (lower.astype(np.int64) % bins)[..., None]
    b1 = (b0 + 1) % bins
    planes = np.zeros((*magnitude.shape, bins), np.float32)
    np.put_along_axis(planes, b0, (magnitude * (1 - frac))[..., None], axis=-1)
    np.put_along_axis(planes, b1, (magnitude * frac)[..., None], axis=-1)
    return planes


def bilinear_cell_weights(length: int, cell: int) -> np.ndarray:
    """``(length // cell, length)`` weights of each pixel row (or column) in each cell.

    Pixel p sits at ``(p + 0.5) / cell - 0.5`` in cell units and is shared between the two nearest cell
    centres; shares that fall outside the cell grid are dropped.
    """
    n = length // cell
    weights = np.zeros((n, length), np.float32)
    pos = (np.arange(n * cell) + 0.5) / cell - 0.5
    c0 = np.floor(pos).astype(np.int64)
    w1 = (pos - c0).astype(np.float32)
    pix = np.arange(n * cell)
    ok0 = (c0 >= 0) & (c0 < n)
    ok1 = (c0 + 1 >= 0) & (c0 + 1 < n)
    weights[c0[ok0], pix[ok0]] += 1 - w1[ok0]
    weights[c0[ok1] + 1, pix[ok1]] += w1[ok1]
    return weights


def cell_histograms(planes: np.ndarray, cell: int = 8) -> np.ndarray:
    """``(N, H // cell, W // cell, bins)`` orientation histograms with bilinear spatial weighting."""
    _, h, w, _ = planes.shape
    wy = bilinear_cell_weights(h, cell)
    wx = bilinear_cell_weights(w, cell)
    # contract rows then columns: (N, H, W, B) -> (N, Hc, W, B) -> (N, Hc, Wc, B)
    rows = np.einsum("ih,nhwb->niwb", wy, planes, optimize=True)
    return np.einsum("jw,niwb->nijb", wx, rows, optimize=True)


def _band_weights(cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel offset ``r`` inside a cell (``(cell,)`` float32 each): the bilinear share of
    :func:`bilinear_cell_weights` that goes to the pixel's own cell, and to the neighbouring cell
    (the previous one for the first half of the cell, the next one for the second half), with the
    direction of that neighbour (-1 or +1, ``(cell,)`` int64)."""
    own = np.zeros(cell, np.float32)
    other = np.zeros(cell, np.float32)
    direction = np.zeros(cell, np.int64)
    for r in range(cell):
        pos = (r + 0.5) / cell - 0.5
        c0 = int(np.floor(pos))
        frac = pos - c0
        if c0 < 0:
            own[r], other[r], direction[r] = frac, 1 - frac, -1
        else:
            own[r], other[r], direction[r] = 1 - frac, frac, 1
    return own, other, direction


def oriented_cell_histograms(magnitude: np.ndarray, orientation: np.ndarray, bins: int = 9, cell: int = 8
                             ) -> np.ndarray:
    """``(N, H // cell, W // cell, bins)`` float32: the same histograms as
    ``cell_histograms(orientation_planes(magnitude, orientation, bins), cell)`` without the ``bins``
    full-size planes.

    Each pixel's two orientation shares are scattered straight into the cells of its row
    (``np.bincount``: own cell and the nearer neighbour, bilinear weights), then the rows of each cell
    band are combined with the same weights (three small contractions).
    """
    n, h, w = magnitude.shape
    hc, wc = h // cell, w // cell
    if hc == 0 or wc == 0 or n == 0:
        return np.zeros((n, hc, wc, bins), np.float32)
    hp, wp = hc * cell, wc * cell
    u = orientation[:, :hp, :wp] * np.float32(bins / np.pi) - np.float32(0.5)
    lower = np.floor(u)
    share1 = u - lower
    b0 = lower.astype(np.intp)  # -1 .. bins - 1
    b0[b0 < 0] += bins
    b1 = b0 + 1
    b1[b1 == bins] = 0
    mag = magnitude[:, :hp, :wp]
    m1 = mag * share1
    m0 = mag - m1
    own, other, direction = _band_weights(cell)
    # columns: into a grid padded by one cell on each side (padded column index = cell column + 1)
    col = np.repeat(np.arange(wc), cell) + 1
    rows = (np.arange(n * hp) * (wc + 2))[:, None]
    size = n * hp * (wc + 2) * bins
    acc = np.zeros(size)
    for target, weight in ((col, np.tile(own, wc)), (col + np.tile(direction, wc), np.tile(other, wc))):
        base = ((rows + target[None, :]) * bins).reshape(n, hp, wp)
        for b, m in ((b0, m0), (b1, m1)):
            acc += np.bincount((base + b).ravel(), weights=(m * weight).ravel(), minlength=size)
    by_row = acc.reshape(n * hc, cell, (wc + 2) * bins).astype(np.float32)
    # rows: the same split between a cell (own) and its neighbours above (up) and below (down)
    split = np.stack([own, np.where(direction < 0, other, 0), np.where(direction > 0, other, 0)]).astype(np.float32)
    parts = np.matmul(split, by_row).reshape(n, hc, 3, wc + 2, bins)[:, :, :, 1:-1]
    out = np.ascontiguousarray(parts[:, :, 0])
    out[:, :-1] += parts[:, 1:, 1]
    out[:, 1:] += parts[:, :-1, 2]
    return out


# atan on [0, 1] as an odd polynomial (Hastings): absolute error below 1e-5 rad (0.0006 degree)
_ATAN = (0.9998660, -0.3302995, 0.1801410, -0.0851330, 0.0208351)


@njit(cache=True, boundscheck=False, nogil=True)
def _cell_histograms_kernel(images: np.ndarray, bins: int, cell: int, out: np.ndarray) -> None:  # pragma: no cover
    """Fused gradients + orientation binning + bilinear cell pooling of ``(N, H, W, C)`` images into
    ``out (N, H // cell, W // cell, bins)`` float64; the same arithmetic as :func:`gradients` followed by
    :func:`oriented_cell_histograms` (float32 gradients, the first strongest channel, trilinear votes).

    Per pixel row, three passes: the strongest channel's gradient and its magnitude, then its orientation bin and
    fraction (the gradient's angle folded into ``[0, pi)``, ``arctan2(gy, gx) mod pi`` to 1e-5 rad by an odd
    polynomial), both written branch-free so that the compiler vectorises them; then the four votes of each
    pixel into a row buffer of cells, which goes to its two cell rows. Every operation and its precision is the
    earlier one-pass kernel's (the angle's polynomial in float64, the votes summed in float64), so the features
    are the same bits, only computed about twice as fast.
    """
    n, h, w, c = images.shape
    hc, wc = h // cell, w // cell
    width = wc * cell
    bin_scale = np.float32(bins / np.pi)
    a0, a1, a2, a3, a4 = _ATAN
    row = np.zeros((wc + 2) * bins, np.float64)  # padded by one cell on each side
    # per column: the left cell (padded index) and the weight of the right one
    col_cell = np.empty(width, np.int64)
    col_w1 = np.empty(width, np.float64)
    for x in range(width):
        pos = (x + 0.5) / cell - 0.5
        c0 = int(np.floor(pos))
        col_cell[x] = c0 + 1
        col_w1[x] = pos - c0
    grad_x = np.empty(width, np.float32)
    grad_y = np.empty(width, np.float32)
    mag = np.empty(width, np.float32)
    frac = np.empty(width, np.float32)
    lower_bin = np.empty(width, np.int32)
    for k in range(n):
        for y in range(hc * cell):
            ya = y - 1 if y > 0 else 0
            yb = y + 1 if y < h - 1 else h - 1
            for x in range(width):  # the strongest channel (the first of equals)
                xa = x - 1 if x > 0 else 0
                xb = x + 1 if x < w - 1 else w - 1
                bgx = np.float32(images[k, y, xb, 0]) - np.float32(images[k, y, xa, 0])
                bgy = np.float32(images[k, yb, x, 0]) - np.float32(images[k, ya, x, 0])
                best = bgx * bgx + bgy * bgy
                for ch in range(1, c):
                    gx = np.float32(images[k, y, xb, ch]) - np.float32(images[k, y, xa, ch])
                    gy = np.float32(images[k, yb, x, ch]) - np.float32(images[k, ya, x, ch])
                    m2 = gx * gx + gy * gy
                    better = m2 > best
                    best = m2 if better else best
                    bgx = gx if better else bgx
                    bgy = gy if better else bgy
                grad_x[x] = bgx
                grad_y[x] = bgy
                mag[x] = np.sqrt(best)
            for x in range(width):  # orientation -> lower bin and the upper bin's share
                gx = grad_x[x]
                gy = grad_y[x]
                ax = abs(gx)
                ay = abs(gy)
                big = max(ax, ay)
                z = np.float64(min(ax, ay) / big) if big > 0 else 0.0  # the ratio in float32, the rest in float64
                z2 = z * z
                a = z * (a0 + z2 * (a1 + z2 * (a2 + z2 * (a3 + z2 * a4))))
                a = 0.5 * np.pi - a if ay > ax else a
                a = np.pi - a if ((gx < 0) != (gy < 0)) and a > 0 else a  # second or fourth quadrant
                u = np.float32(a) * bin_scale - np.float32(0.5)
                lower = np.floor(u)
                frac[x] = u - lower
                b = np.int32(lower)
                lower_bin[x] = b + bins if b < 0 else b
            row[:] = 0.0
            for x in range(width):  # the four votes of each pixel
                m = mag[x]
                if m == 0:
                    continue
                b0 = lower_bin[x]
                b1 = b0 + 1
                if b1 >= bins:
                    b1 -= bins
                m1 = m * frac[x]
                m0 = m - m1
                base = col_cell[x] * bins
                wx1 = col_w1[x]
                wx0 = 1.0 - wx1
                row[base + b0] += m0 * wx0
                row[base + b1] += m1 * wx0
                row[base + bins + b0] += m0 * wx1
                row[base + bins + b1] += m1 * wx1
            pos_y = (y + 0.5) / cell - 0.5
            cy0 = int(np.floor(pos_y))
            wy1 = pos_y - cy0
            for dy in range(2):
                cy = cy0 + dy
                if cy < 0 or cy >= hc:
                    continue
                wy = wy1 if dy else 1.0 - wy1
                for j in range(wc):
                    for b in range(bins):
                        out[k, cy, j, b] += wy * row[(j + 1) * bins + b]


def fused_cell_histograms(images: np.ndarray, cell: int = 8, bins: int = 9, sqrt_gamma: bool = False
                          ) -> np.ndarray:
    """``(N, H // cell, W // cell, bins)`` float32 cell histograms straight from ``(N, H, W[, C])`` images.

    One compiled pass per pixel (numba): the same values as
    ``oriented_cell_histograms(*gradients(images, sqrt_gamma), bins, cell)`` up to float rounding
    (a polynomial arctangent here, ``cv2.phase`` there: both within 0.01 degree), several times faster.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if sqrt_gamma:
        x = np.sqrt(x.astype(np.float32))
    elif x.dtype not in (np.uint8, np.float32):
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    n, h, w, _ = x.shape
    out = np.zeros((n, h // cell, w // cell, bins), np.float64)
    if out.size:
        _cell_histograms_kernel(x, int(bins), int(cell), out)
    return out.astype(np.float32)


def block_normalize(cells: np.ndarray, block: int = 2, eps: float = 1e-3) -> np.ndarray:
    """Overlapping ``block x block`` cell blocks (stride 1 cell), L2-Hys normalised."""
    n, hc, wc, bins = cells.shape
    hb, wb = hc - block + 1, wc - block + 1
    if hb < 1 or wb < 1:
        return np.zeros((n, 0, 0, block * block * bins), np.float32)
    parts = [cells[:, i:i + hb, j:j + wb] for i in range(block) for j in range(block)]
    v = np.concatenate(parts, axis=-1)
    scale = bins * block * block  # eps relative to the feature length, as OpenCV does
    v = v / np.sqrt((v * v).sum(-1, keepdims=True) + (eps * scale) ** 2)
    np.minimum(v, L2HYS_CLIP, out=v)
    v = v / np.sqrt((v * v).sum(-1, keepdims=True) + 1e-6)
    return v.astype(np.float32, copy=False)


def hog_map(images: np.ndarray, cell: int = 8, block: int = 2, bins: int = 9, sqrt_gamma: bool = False
            ) -> np.ndarray:
    """Block-normalised HOG map ``(N, Hb, Wb, block * block * bins)`` of a batch of images."""
    return block_normalize(fused_cell_histograms(images, cell, bins, sqrt_gamma), block)


def hog_features(images: np.ndarray, cell: int = 8, block: int = 2, bins: int = 9, sqrt_gamma: bool = False,
                 chunk: int = 2048) -> np.ndarray:
    """Flattened HOG descriptors ``(N, D)`` float32, computed in chunks to bound memory."""
    out = [hog_map(images[s:s + chunk], cell, block, bins, sqrt_gamma).reshape(len(images[s:s + chunk]), -1)
           for s in range(0, len(images), chunk)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
