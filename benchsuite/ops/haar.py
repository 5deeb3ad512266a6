"""Haar-like rectangle features of a base window (Viola & Jones 2001), evaluated on integral images.

A feature is a weighted sum of pixel sums over two, three or four adjacent rectangles (cells) of equal
size, with weights that sum to zero over the covered area, so adding a constant to every pixel leaves it
unchanged. The five kinds, for a cell of ``cw x ch`` pixels at top-left ``(x, y)`` of the window:

``two_h``   ``[+1 | -1]``           two cells side by side (a vertical edge),            ``2cw x ch``
``two_v``   ``[+1 / -1]``           two cells stacked (a horizontal edge),               ``cw x 2ch``
``three_h`` ``[+1 | -2 | +1]``      three cells side by side (a vertical line),          ``3cw x ch``
``three_v`` ``[+1 / -2 / +1]``      three cells stacked (a horizontal line),             ``cw x 3ch``
``four``    ``[+1 | -1 / -1 | +1]`` a 2 x 2 checkerboard (a diagonal),                    ``2cw x 2ch``

Each rectangle sum is four corners of the window's integral image, so every feature is a sparse linear
function of the flattened ``(h + 1) x (w + 1)`` window integral image: :meth:`HaarFeatures.corner_matrix`
holds those weights (corners shared by adjacent cells merged: 6, 8 and 9 non-zeros for the two-, three-
and four-rectangle kinds), and :func:`haar_values` evaluates every feature for a whole stack of windows in
one sparse matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: kind name -> (cells across, cells down, weight of each cell in row-major order)
KINDS: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "two_h": (2, 1, (1, -1)),
    "two_v": (1, 2, (1, -1)),
    "three_h": (3, 1, (1, -2, 1)),
    "three_v": (1, 3, (1, -2, 1)),
    "four": (2, 2, (1, -1, -1, 1)),
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


@dataclass(frozen=True)
class HaarFeatures:
    """A pool of Haar features of an ``height x width`` window.

    Attributes:
        height, width: the base window in pixels.
        kind: ``(F,)`` int8 index into :data:`KIND_NAMES`.
        x, y: ``(F,)`` int32 top-left pixel of the feature inside the window.
        cell_w, cell_h: ``(F,)`` int32 size of one cell in pixels.
    """

    height: int
    width: int
    kind: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cell_w: np.ndarray
    cell_h: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    def subset(self, index: np.ndarray | Sequence[int]) -> HaarFeatures:
        """The features at ``index`` (a new pool, in that order)."""
        i = np.asarray(index, dtype=np.int64)
        return HaarFeatures(self.height, self.width, self.kind[i], self.x[i], self.y[i], self.cell_w[i],
                            self.cell_h[i])

    def rectangles(self) -> tuple[np.ndarray, np.ndarray]:
        """Every cell of every feature: ``(rects (F, 4, 4) int64 x, y, w, h; weights (F, 4) float64)``;
        features with fewer than four cells are padded with zero-weight, zero-size cells."""
        n = len(self)
        rects = np.zeros((n, 4, 4), np.int64)
        weights = np.zeros((n, 4), np.float64)
        for k, name in enumerate(KIND_NAMES):
            across, _, cell_weights = KINDS[name]
            sel = np.flatnonzero(self.kind == k)
            for c, wgt in enumerate(cell_weights):
                row, col = divmod(c, across)
                rects[sel, c, 0] = self.x[sel] + col * self.cell_w[sel]
                rects[sel, c, 1] = self.y[sel] + row * self.cell_h[sel]
                rects[sel, c, 2] = self.cell_w[sel]
                rects[sel, c, 3] = self.cell_h[sel]
                weights[sel, c] = wgt
        return rects, weights

    def corner_matrix(self, dtype: type = np.float32) -> sp.csr_matrix:
        """``(F, (height + 1) * (width + 1))`` sparse weights on the flattened window integral image.

        Row ``f`` dotted with the row-major flattened integral image of a window gives feature ``f``.
        """
        rects, weights = self.rectangles()
        x, y, w, h = (rects[..., i] for i in range(4))
        stride = self.width + 1
        cols = np.stack([y * stride + x, y * stride + x + w, (y + h) * stride + x, (y + h) * stride + x + w], -1)
        vals = weights[..., None] * np.array([1.0, -1.0, -1.0, 1.0])
        rows = np.broadcast_to(np.arange(len(self))[:, None, None], cols.shape)
        m = sp.coo_matrix((vals.reshape(-1), (rows.reshape(-1), cols.reshape(-1))),
                          shape=(len(self), (self.height + 1) * stride)).tocsr()
        m.sum_duplicates()
        m.eliminate_zeros()
        return m.astype(dtype)

    def corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The non-zero corners of every feature, for gathering from a large integral image.

        Returns ``(dy, dx, weight, starts)``: flat arrays over all features' corners (feature ``f`` owns
        entries ``starts[f]:starts[f + 1]``), ``dy, dx`` int64 offsets from the window's top-left corner
        in the integral image, ``weight`` float64; ``starts`` has ``F + 1`` entries.
        """
        m = self.corner_matrix(np.float64)
        dy, dx = np.divmod(m.indices.astype(np.int64), self.width + 1)
        return dy, dx, m.data.astype(np.float64), m.indptr.astype(np.int64)


def enumerate_haar_features(height: int, width: int, position_step: int = 1, size_step: int = 1,
                            min_cell: int = 1, kinds: Sequence[str] = KIND_NAMES) -> HaarFeatures:
    """Every feature of the given kinds that fits in an ``height x width`` window.

    Cell widths and heights run over ``min_cell, min_cell + size_step, ...`` and positions over multiples
    of ``position_step`` (a 24 x 24 window with steps 1 has the 162,336 features of Viola & Jones; steps
    of 2 keep about one in 16 of them).
    """
    if height < 1 or width < 1:
        raise ValueError(f"enumerate_haar_features: window must be at least 1 x 1, got {width} x {height}")
    if position_step < 1 or size_step < 1 or min_cell < 1:
        raise ValueError("enumerate_haar_features: position_step, size_step and min_cell must be >= 1, got "
                         f"{position_step}, {size_step}, {min_cell}")
    parts: list[tuple[np.ndarray, ...]] = []
    for name in kinds:
        if name not in KINDS:
            raise ValueError(f"unknown Haar feature kind {name!r}; expected one of {KIND_NAMES}")
        across, down, _ = KINDS[name]
        for cw in range(min_cell, width // across + 1, size_step):
            for ch in range(min_cell, height // down + 1, size_step):
                xs = np.arange(0, width - across * cw + 1, position_step)
                ys = np.arange(0, height - down * ch + 1, position_step)
                yy, xx = np.meshgrid(ys, xs, indexing="ij")
                n = yy.size
                parts.append((np.full(n, KIND_NAMES.index(name)), xx.reshape(-1), yy.reshape(-1),
                              np.full(n, cw), np.full(n, ch)))
    if not parts:
        empty = np.zeros(0, np.int32)
        return HaarFeatures(height, width, empty.astype(np.int8), empty, empty, empty, empty)
    cols = [np.concatenate(c) for c in zip(*parts)]
    return HaarFeatures(height, width, cols[0].astype(np.int8), *(c.astype(np.int32) for c in cols[1:]))


def haar_feature_pool(height: int, width: int, max_features: int, min_cell: int = 1,
                      kinds: Sequence[str] = KIND_NAMES) -> tuple[HaarFeatures, int]:
    """The densest regular pool with at most ``max_features`` features: position and size steps grow
    together (1, 2, 3, ...) until the count fits. Returns ``(pool, step)``."""
    if max_features < 1:
        raise ValueError(f"haar_feature_pool: max_features must be >= 1, got {max_features}")
    step = 1
    while True:
        pool = enumerate_haar_features(height, width, step, step, min_cell, kinds)
        if len(pool) <= max_features or step >= max(height, width):
            return pool, step
        step += 1


def count_haar_features(height: int, width: int, min_cell: int = 1, kinds: Sequence[str] = KIND_NAMES) -> int:
    """How many features :func:`enumerate_haar_features` gives with unit steps (closed form, no arrays):
    for a kind ``across x down`` cells and cell size ``cw x ch`` there are
    ``(width - across * cw + 1) * (height - down * ch + 1)`` positions."""
    total = 0
    for name in kinds:
        if name not in KINDS:
            raise ValueError(f"unknown Haar feature kind {name!r}; expected one of {KIND_NAMES}")
        across, down, _ = KINDS[name]
        xs = sum(width - across * cw + 1 for cw in range(min_cell, width // across + 1))
        ys = sum(height - down * ch + 1 for ch in range(min_cell, height // down + 1))
        total += xs * ys
    return total


def sample_haar_features(height: int, width: int, count: int, rng: np.random.Generator, min_cell: int = 1,
                         kinds: Sequence[str] = KIND_NAMES) -> HaarFeatures:
    """``count`` features drawn uniformly without replacement from the *full* enumeration of the window
    (every kind, cell size and position at one-pixel steps, :func:`enumerate_haar_features`), as in Viola
    & Jones' exhaustive pool but affordable: each feature of the 162,336 of a 24 x 24 window is equally
    likely. With ``count`` at or above the enumeration's size the whole enumeration comes back. The pool
    is ordered as the enumeration (kind, cell size, position), so the same draw gives the same pool."""
    if count < 1:
        raise ValueError(f"sample_haar_features: count must be >= 1, got {count}")
    full = enumerate_haar_features(height, width, 1, 1, min_cell, kinds)
    if count >= len(full):
        return full
    return full.subset(np.sort(rng.choice(len(full), count, replace=False)))


def haar_values(corner_matrix: sp.spmatrix, window_integrals: np.ndarray, scale: np.ndarray | None = None
                ) -> np.ndarray:
    """Every feature for every window, as one sparse matrix product.

    Args:
        corner_matrix: ``(F, P)`` from :meth:`HaarFeatures.corner_matrix`, ``P = (h + 1) * (w + 1)``.
        window_integrals: ``(N, P)`` flattened integral images of ``h x w`` windows (any float dtype).
        scale: optional ``(N,)`` divisor per window (the window's pixel standard deviation for
            variance normalisation).

    Returns:
        ``(F, N)`` feature values, feature-major (each row is one feature over all windows), in the
        result dtype of the product (float32 for float32 inputs).
    """
    x = np.asarray(window_integrals)
    if x.ndim != 2 or x.shape[1] != corner_matrix.shape[1]:
        raise ValueError(f"haar_values: window integrals of shape {x.shape} do not match a corner matrix "
                         f"of shape {corner_matrix.shape}")
    values = np.asarray(corner_matrix @ x.T)
    if scale is not None:
        values /= np.asarray(scale, dtype=values.dtype)[None, :]
    return values
