"""Box regression targets: the R-CNN parametrisation of a box relative to a reference box.

For a reference (proposal) box with centre ``(px, py)``, width ``pw`` and height ``ph`` and a target box
``(gx, gy, gw, gh)`` (all in pixels, boxes ``x1, y1, x2, y2`` as in :mod:`benchsuite.ops.boxes`):

``tx = (gx - px) / pw``, ``ty = (gy - py) / ph``, ``tw = log(gw / pw)``, ``th = log(gh / ph)``,

each then divided by ``stds`` (Fast R-CNN's ``(0.1, 0.1, 0.2, 0.2)`` by default) so the targets have
roughly unit scale. :func:`decode_boxes` inverts :func:`encode_boxes` exactly (up to float rounding);
``tw`` and ``th`` are clamped at decoding to ``log(1000 / 16)`` as torchvision does, so a wild prediction
cannot overflow.
"""

from __future__ import annotations

import math

import numpy as np

from benchsuite.ops.boxes import as_boxes

DEFAULT_STDS = (0.1, 0.1, 0.2, 0.2)
#: largest log size ratio a decoded box may have
MAX_LOG_RATIO = math.log(1000.0 / 16)


def _centre_size(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(reference: np.ndarray, target: np.ndarray, stds: tuple[float, ...] = DEFAULT_STDS) -> np.ndarray:
    """``(N, 4)`` float64 regression targets ``tx, ty, tw, th`` of ``target (N, 4)`` relative to
    ``reference (N, 4)`` (row by row).

    Raises:
        ValueError: when the shapes differ or a reference box has no area (the targets would be infinite).
    """
    ref = as_boxes(reference, "reference")
    tgt = as_boxes(target, "target")
    if ref.shape != tgt.shape:
        raise ValueError(f"encode_boxes: {len(ref)} reference boxes against {len(tgt)} targets")
    px, py, pw, ph = _centre_size(ref)
    gx, gy, gw, gh = _centre_size(tgt)
    if len(ref) and ((pw <= 0).any() or (ph <= 0).any() or (gw <= 0).any() or (gh <= 0).any()):
        raise ValueError("encode_boxes: every reference and target box needs x2 > x1 and y2 > y1")
    t = np.stack([(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph)], axis=1)
    return t / np.asarray(stds, np.float64)


def decode_boxes(reference: np.ndarray, deltas: np.ndarray, stds: tuple[float, ...] = DEFAULT_STDS) -> np.ndarray:
    """``(N, 4)`` float64 boxes ``x1, y1, x2, y2`` obtained by applying ``deltas (N, 4)`` (as made by
    :func:`encode_boxes`) to ``reference (N, 4)``."""
    ref = as_boxes(reference, "reference")
    d = np.asarray(deltas, np.float64).reshape(-1, 4) * np.asarray(stds, np.float64)
    if len(d) != len(ref):
        raise ValueError(f"decode_boxes: {len(d)} deltas for {len(ref)} reference boxes")
    px, py, pw, ph = _centre_size(ref)
    cx = px + d[:, 0] * pw
    cy = py + d[:, 1] * ph
    w = pw * np.exp(np.minimum(d[:, 2], MAX_LOG_RATIO))
    h = ph * np.exp(np.minimum(d[:, 3], MAX_LOG_RATIO))
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=1)
