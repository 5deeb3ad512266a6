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

import numpy as np

L2HYS_CLIP = 0.2


def gradients(images: np.ndarray, sqrt_gamma: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(magnitude, orientation)``, each ``(N, H, W)`` float32; orientation in ``[0, pi)``."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if sqrt_gamma:
        x = np.sqrt(x)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gx[:, :, 0] = x[:, :, 1] - x[:, :, 0]
    gx[:, :, -1] = x[:, :, -1] - x[:, :, -2]
    gy[:, 1:-1] = x[:, 2:] - x[:, :-2]
    gy[:, 0] = x[:, 1] - x[:, 0]
    gy[:, -1] = x[:, -1] - x[:, -2]
    mag2 = gx * gx + gy * gy
    if x.shape[-1] > 1:
        best = np.argmax(mag2, axis=-1)[..., None]
        gx = np.take_along_axis(gx, best, axis=-1)
        gy = np.take_along_axis(gy, best, axis=-1)
        mag2 = np.take_along_axis(mag2, best, axis=-1)
    magnitude = np.sqrt(mag2[..., 0])
    orientation = np.arctan2(gy[..., 0], gx[..., 0]) % np.pi
    return magnitude, orientation.astype(np.float32)


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
    magnitude, orientation = gradients(images, sqrt_gamma)
    return block_normalize(cell_histograms(orientation_planes(magnitude, orientation, bins), cell), block)


def hog_features(images: np.ndarray, cell: int = 8, block: int = 2, bins: int = 9, sqrt_gamma: bool = False,
                 chunk: int = 2048) -> np.ndarray:
    """Flattened HOG descriptors ``(N, D)`` float32, computed in chunks to bound memory."""
    out = [hog_map(images[s:s + chunk], cell, block, bins, sqrt_gamma).reshape(len(images[s:s + chunk]), -1)
           for s in range(0, len(images), chunk)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
