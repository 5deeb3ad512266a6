"""Linear templates scored as a correlation over a dense feature map (the template-as-convolution view).

A linear classifier ``w . x + b`` applied to every window of a feature map (a HOG block map, say) is a
correlation of the map with ``w`` laid out as a ``(th, tw, D)`` template:

    score[i, j] = b + sum_{a < th, c < tw, d < D} map[i + a, j + c, d] * template[a, c, d]

:func:`correlate_templates` computes it for several templates at once with one matrix product
(every template tap against every map cell) followed by a shifted sum done as one strided reduction,
instead of one classifier call per window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def correlate_templates(feature_map: np.ndarray, templates: Sequence[np.ndarray],
                        biases: Sequence[float] | None = None) -> list[np.ndarray]:
    """Valid-mode correlation of a ``(H, W, D)`` feature map with each ``(th, tw, D)`` template.

    Args:
        feature_map: ``(H, W, D)`` float array (cast to float32).
        templates: ``(th_k, tw_k, D)`` arrays, same ``D`` as the map.
        biases: one number per template added to its scores (default 0).

    Returns:
        One float32 array per template of shape ``(H - th + 1, W - tw + 1)``; a template larger than the
        map gives an array with a zero-length axis. Entry ``[i, j]`` scores the window whose top-left
        map cell is ``(i, j)``.
    """
    fmap = np.ascontiguousarray(feature_map, dtype=np.float32)
    if fmap.ndim != 3:
        raise ValueError(f"feature_map: expected (H, W, D), got shape {fmap.shape}")
    h, w, d = fmap.shape
    biases = [0.0] * len(templates) if biases is None else list(biases)
    if len(biases) != len(templates):
        raise ValueError(f"{len(templates)} templates but {len(biases)} biases")
    shapes = []
    for t in templates:
        if t.ndim != 3 or t.shape[2] != d:
            raise ValueError(f"template: expected (th, tw, {d}), got shape {t.shape}")
        shapes.append(t.shape[:2])
    fits = [th <= h and tw <= w for th, tw in shapes]
    out: list[np.ndarray] = [np.zeros((max(0, h - th + 1), max(0, w - tw + 1)), np.float32) for th, tw in shapes]
    used = [k for k, ok in enumerate(fits) if ok]
    if not used:
        return out
    taps = np.concatenate([np.asarray(templates[k], np.float32).reshape(-1, d) for k in used])  # (T, D)
    # every tap against every map cell: (T, H * W), contiguous, so each template's block is (th, tw, H, W)
    products = taps @ fmap.reshape(-1, d).T
    item = products.itemsize
    offset = 0
    for k in used:
        th, tw = shapes[k]
        block = products[offset:offset + th * tw]
        offset += th * tw
        oh, ow = h - th + 1, w - tw + 1
        # view [a, c, i, j] -> products[a * tw + c, (i + a) * W + (j + c)]: the shifted taps, no copies
        view = as_strided(block, shape=(th, tw, oh, ow),
                          strides=((tw * h * w + w) * item, (h * w + 1) * item, w * item, item), writeable=False)
        scores = view.sum(axis=(0, 1), dtype=np.float32)
        scores += np.float32(biases[k])
        out[k] = scores
    return out
