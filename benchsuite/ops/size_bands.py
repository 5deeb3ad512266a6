"""Object size bands: what a detector's ``fit_info.reach`` counts objects by (height in image pixels).

A detector that cannot find objects below (or above) some size says so per band, on its training and val
objects, instead of missing them silently (issue 29): :func:`reach_counts` gives the objects per band and,
for each named condition (``below_reach``, ``no_proposal``, ...), how many of them meet it.
"""

from __future__ import annotations

import itertools

import numpy as np

#: object heights (pixels) that split a class's objects into size bands: positives are budgeted per band and
#: objects below the detector's reach are counted per band (``fit_info.reach``)
SIZE_BANDS = (16, 32, 64, 128, 256)


def band_names(edges: tuple[int, ...] = SIZE_BANDS) -> list[str]:
    """``["<16", "16-32", ..., ">=256"]`` for the band edges."""
    return [f"<{edges[0]}", *(f"{a}-{b}" for a, b in itertools.pairwise(edges)), f">={edges[-1]}"]


def size_bands(heights: np.ndarray, edges: tuple[int, ...] = SIZE_BANDS) -> np.ndarray:
    """``(N,)`` int64 band index of each object height (pixels)."""
    return np.searchsorted(np.asarray(edges, np.float64), np.asarray(heights, np.float64), side="right")


def band_counts(heights: np.ndarray, edges: tuple[int, ...] = SIZE_BANDS) -> dict[str, int]:
    """Objects per size band, by band name."""
    counts = np.bincount(size_bands(heights, edges), minlength=len(edges) + 1)
    return {name: int(n) for name, n in zip(band_names(edges), counts)}


def reach_counts(heights: np.ndarray, **conditions: np.ndarray) -> dict[str, dict[str, int]]:
    """``{"objects": per band, <condition>: per band of the objects meeting it, ...}`` for objects of these
    heights (``(N,)`` pixels) and boolean ``(N,)`` masks named by keyword (e.g. ``below_reach=h < 12``)."""
    h = np.asarray(heights, np.float64).reshape(-1)
    out = {"objects": band_counts(h)}
    for name, mask in conditions.items():
        m = np.asarray(mask, bool).reshape(-1)
        if m.shape != h.shape:
            raise ValueError(f"reach_counts: {name} has {m.size} flags for {h.size} objects")
        out[name] = band_counts(h[m])
    return out
