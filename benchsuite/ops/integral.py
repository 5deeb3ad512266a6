"""Integral images (summed-area tables) and window sums as array operations.

An integral image of an ``(H, W)`` array ``a`` is the ``(H + 1, W + 1)`` array ``ii`` with a zero first row
and column and ``ii[y, x] = a[:y, :x].sum()``. The sum of ``a`` over rows ``y..y+h-1`` and columns
``x..x+w-1`` is then ``ii[y+h, x+w] - ii[y, x+w] - ii[y+h, x] + ii[y, x]``: four look-ups whatever the
window size. Every function here accepts leading batch dimensions (``(..., H, W)`` stacks) and computes in
float64, which is exact for integer pixel values (sums of squares of 8-bit pixels stay exact below 2**53,
i.e. for images of up to about 1.3e11 pixels).
"""

from __future__ import annotations

import numpy as np


def integral_image(image: np.ndarray, squared: bool = False) -> np.ndarray:
    """The integral image of ``image`` (or of its square, for window variances).

    Args:
        image: ``(..., H, W)`` array of any real dtype (a grey-scale image or a stack of them).
        squared: integrate ``image ** 2`` instead of ``image``.

    Returns:
        ``(..., H + 1, W + 1)`` float64 with zeros in the first row and column,
        ``out[..., y, x] = image[..., :y, :x].sum()`` (squared when asked).
    """
    a = np.asarray(image)
    if a.ndim < 2:
        raise ValueError(f"integral_image: expected an (..., H, W) array, got shape {a.shape}")
    a = a.astype(np.float64)
    if squared:
        a = a * a
    out = np.zeros((*a.shape[:-2], a.shape[-2] + 1, a.shape[-1] + 1), np.float64)
    np.cumsum(a, axis=-2, out=out[..., 1:, 1:])
    np.cumsum(out[..., 1:, 1:], axis=-1, out=out[..., 1:, 1:])
    return out


def window_sums(ii: np.ndarray, y: np.ndarray, x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sums over the ``height x width`` windows whose top-left pixels are ``(y, x)``.

    Args:
        ii: ``(..., H + 1, W + 1)`` integral image(s) from :func:`integral_image`.
        y, x: integer arrays (broadcast together) of top-left rows and columns; every window must lie
            inside the image: ``0 <= y <= H - height``, ``0 <= x <= W - width``.
        height, width: window size in pixels.

    Returns:
        float64 array of shape ``(..., *broadcast(y, x).shape)``.
    """
    y = np.asarray(y, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    y2 = y + int(height)
    x2 = x + int(width)
    return ii[..., y2, x2] - ii[..., y, x2] - ii[..., y2, x] + ii[..., y, x]


def window_mean_std(ii: np.ndarray, ii2: np.ndarray, y: np.ndarray, x: np.ndarray, height: int, width: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of the pixels in each window, from the integral image
    ``ii`` and the squared integral image ``ii2``; arguments as in :func:`window_sums`.

    Returns ``(mean, std)``, float64, shaped like :func:`window_sums`; a negative variance from rounding
    is clipped to zero.
    """
    area = float(height) * float(width)
    mean = window_sums(ii, y, x, height, width) / area
    var = window_sums(ii2, y, x, height, width) / area - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def window_integrals(ii: np.ndarray, y: np.ndarray, x: np.ndarray, height: int, width: int) -> np.ndarray:
    """The integral images of ``height x width`` windows cut out of a large integral image.

    A window's block of a large integral image differs from the window's own integral image by terms that
    depend on the row only or the column only; they are subtracted, so the result equals
    ``integral_image(image[y:y+height, x:x+width])`` exactly (up to float64 rounding).

    Args:
        ii: ``(H + 1, W + 1)`` integral image.
        y, x: ``(N,)`` integer top-left corners of windows lying inside the image.
        height, width: window size in pixels.

    Returns:
        ``(N, (height + 1) * (width + 1))`` float64, each row a flattened ``(height + 1, width + 1)``
        window integral image (row-major), in one gather (no loop over windows).
    """
    if ii.ndim != 2:
        raise ValueError(f"window_integrals: expected one (H + 1, W + 1) integral image, got shape {ii.shape}")
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    stride = ii.shape[1]
    dy, dx = np.mgrid[0 : height + 1, 0 : width + 1]
    offsets = (dy * stride + dx).reshape(-1)
    blocks = ii.reshape(-1)[(y * stride + x)[:, None] + offsets[None, :]].reshape(-1, height + 1, width + 1)
    blocks = blocks - blocks[:, :1, :] - blocks[:, :, :1] + blocks[:, :1, :1]
    return blocks.reshape(len(y), -1)
