"""Where the answer changes: the axis value at which the best deep pipeline overtakes the best classical one (or
the reverse), with a bootstrap interval.

Along a study's axis each family has an envelope: at every point, the best value of the metric among its
pipelines. The **lead** at a point is the sign of ``deep - classical`` (by the metric's direction). The crossover is
the place of the *last* change of lead along the axis: from there on the leader holds to the end of the sweep,
which is what "from N images on, the CNN is ahead" means; a lead that changes more than once is reported with its
count. Between two points the place is interpolated linearly in the axis's scale (``log`` for sizes and factors,
``linear`` for severities) where the difference of the envelopes crosses zero.

The interval repeats that on bootstrap resamples of the test images: each resample draws the same images for every
pipeline and point (the tasks' ``metric_resamples`` with one seed), so the envelopes of a resample are paired. A
resample whose lead never changes puts its crossover below the first point (the final leader leads everywhere) or
beyond the last one (the first leader leads everywhere): the percentile interval may then be open at that end
(``-inf`` / ``inf``), which the report writes as "below 1%" / "beyond 100%".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95


@dataclass(frozen=True)
class Crossover:
    """The last change of lead along an axis, from the full test set.

    Attributes:
        position: where the lead changes last (interpolated), or None when it never changes.
        first: who leads at the first point (``"deep"``, ``"classical"`` or ``"tie"``); last: at the last point.
        changes: how many times the lead changes along the axis.
        lo, hi: the 95% bootstrap interval of ``position`` (``-inf``: below the first point, ``inf``: beyond the
            last); None without resamples or without a crossover.
        share: the share of resamples whose lead changes at all (None without resamples).
    """

    position: float | None
    first: str
    last: str
    changes: int
    lo: float | None = None
    hi: float | None = None
    share: float | None = None


def _to_scale(x: np.ndarray, scale: str) -> np.ndarray:
    return np.log(x) if scale == "log" else x


def _from_scale(t: float, scale: str) -> float:
    return math.exp(t) if scale == "log" else t


def _name(sign: float) -> str:
    return "deep" if sign > 0 else "classical" if sign < 0 else "tie"


def leads(diff: np.ndarray) -> np.ndarray:
    """The lead at each point: the sign of ``diff`` (positive: deep ahead), a tie carrying the lead before it (a
    lead is lost only when the other side gets ahead)."""
    signs = np.sign(np.asarray(diff, np.float64))
    for i in range(1, len(signs)):
        if signs[i] == 0:
            signs[i] = signs[i - 1]
    return signs


def last_change(positions: np.ndarray, diff: np.ndarray, scale: str = "linear") -> tuple[float | None, int]:
    """``(position, changes)``: where ``diff`` (deep minus classical, oriented so that positive means deep ahead;
    one value per point in axis order, NaN for a point without both families) changes sign for the last time,
    interpolated in ``scale``, and how many times it changes; ``(None, 0)`` when it never does."""
    keep = np.isfinite(diff)
    x, d = np.asarray(positions, np.float64)[keep], np.asarray(diff, np.float64)[keep]
    signs = leads(d)
    change_at = [i for i in range(1, len(signs)) if signs[i] != signs[i - 1] and signs[i - 1] != 0]
    if not change_at:
        return None, 0
    i = change_at[-1]
    t = _to_scale(x, scale)
    a, b = d[i - 1], d[i]
    share = a / (a - b) if a != b else 0.0
    return _from_scale(t[i - 1] + share * (t[i] - t[i - 1]), scale), len(change_at)


def crossover(positions: np.ndarray, deep: np.ndarray, classical: np.ndarray, higher_is_better: bool = True,
              scale: str = "linear", deep_resamples: np.ndarray | None = None,
              classical_resamples: np.ndarray | None = None, level: float = LEVEL) -> Crossover:
    """The crossover of the envelopes ``deep`` and ``classical`` (``(P,)`` best values per point, axis order) and,
    with their resamples (``(B, P)``, the same image draws for both), its percentile interval."""
    sign = 1.0 if higher_is_better else -1.0
    x = np.asarray(positions, np.float64)
    diff = sign * (np.asarray(deep, np.float64) - np.asarray(classical, np.float64))
    signs = leads(diff[np.isfinite(diff)])
    if not len(signs):
        return Crossover(None, "tie", "tie", 0)
    first, last = _name(signs[0]), _name(signs[-1])
    pos, changes = last_change(x, diff, scale)
    if deep_resamples is None or classical_resamples is None:
        return Crossover(pos, first, last, changes)
    rdiff = sign * (np.asarray(deep_resamples, np.float64) - np.asarray(classical_resamples, np.float64))
    found = [last_change(x, row, scale)[0] for row in rdiff]
    share = float(np.mean([f is not None for f in found])) if found else None
    if pos is None:
        return Crossover(None, first, last, 0, share=share)
    values = []
    for row, at in zip(rdiff, found):
        if at is not None:
            values.append(at)
            continue
        kept = leads(row[np.isfinite(row)])
        lead = _name(kept[-1]) if len(kept) else "tie"
        # a resample whose lead never changes: the final leader ahead everywhere puts the crossover below the
        # first point; the other one ahead everywhere, beyond the last
        values.append(-math.inf if lead == last else math.inf if lead != "tie" else math.nan)
    v = np.array(values, np.float64)
    v = v[~np.isnan(v)]
    if not len(v):
        return Crossover(pos, first, last, changes, share=share)
    lo = float(np.quantile(v, (1 - level) / 2, method="lower"))
    hi = float(np.quantile(v, 1 - (1 - level) / 2, method="higher"))
    return Crossover(pos, first, last, changes, lo, hi, share)


def envelope(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """The best of ``values`` (``(pipelines, ...)``) along the first axis, ignoring NaN (NaN where all are)."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        return np.nanmax(v, axis=0) if higher_is_better else np.nanmin(v, axis=0)
