"""Discrete AdaBoost with decision stumps, and the attentional cascade of Viola & Jones (2001, 2004).

Everything works on feature-major value matrices: ``values[f, n]`` is feature ``f`` of sample ``n`` (the
layout :func:`benchsuite.ops.haar.haar_values` returns), so one stump search scans all features of all
samples with array operations: each feature's values are sorted once per stage, and for every boosting
round the weighted errors of all thresholds of all features come from cumulative sums of the sorted
weights (O(F * N) per round, no Python loop over samples or thresholds).

A stump with threshold ``t`` and polarity ``p`` (+1 or -1) says "positive" for ``p * (x - t) > 0``.
A stage is a boosted sum ``sum_t alpha_t * h_t(x)`` compared with a stage threshold lowered until the stage
keeps a target share of the positives; a cascade passes a sample only when every stage does, and stops
evaluating a sample at the first stage that rejects it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: seconds between progress lines of a long phase (:class:`Heartbeat`)
HEARTBEAT_S = 30.0


class Heartbeat:
    """Logs a progress line when ``every`` seconds have passed since the last one: call it often with a
    function that builds the line (the line is only built when it is logged)."""

    def __init__(self, prefix: str = "", every: float = HEARTBEAT_S, logger: logging.Logger | None = None):
        self.prefix = prefix
        self.every = float(every)
        self.log = logger or log
        self.last = time.perf_counter()

    def __call__(self, line: Callable[[], str], force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.log.info("%s%s", self.prefix, line())
            self.last = now


#: features per block in :func:`fit_stumps` (bounds the temporaries to a few ``(block, N)`` float64 arrays)
STUMP_BLOCK = 512


@dataclass
class StumpFit:
    """The best stump of every feature: ``threshold (F,)`` float64, ``polarity (F,)`` int8 (+1: positive
    above the threshold, -1: below), ``error (F,)`` float64: the weighted error (weights as given) for
    the ``"error"`` criterion, Schapire & Singer's ``Z = 2 * sum over sides sqrt(W+ W-)`` for ``"z"``.
    With ``"z"`` the polarity is always +1 and ``above (F,)``, ``below (F,)`` hold the confidence-rated
    outputs ``0.5 * log((W+ + eps) / (W- + eps))`` of the two sides (None for ``"error"``)."""

    threshold: np.ndarray
    polarity: np.ndarray
    error: np.ndarray
    above: np.ndarray | None = None
    below: np.ndarray | None = None


@dataclass
class SortedFeatures:
    """Each feature's samples in ascending order of value, computed once for many boosting rounds.

    Attributes:
        order: ``(F, N)`` int32 (int64 past 2**31 samples) argsort of every feature's values.
        cut_ok: ``(F, N - 1)`` bool, ``cut_ok[f, k]`` when the ``k + 1``-th smallest value of feature ``f``
            is strictly above the ``k``-th: a threshold may only fall between distinct values.
    """

    order: np.ndarray
    cut_ok: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, beat: Callable[[int, int], None] | None = None) -> SortedFeatures:
        """Sort the rows of ``(F, N)`` ``values``, a block of rows at a time (``beat(rows done, F)`` after each:
        progress lines)."""
        values = np.asarray(values)
        f_count, n = values.shape
        order = np.empty((f_count, n), np.int32 if n < 2**31 else np.int64)
        cut_ok = np.empty((f_count, max(n - 1, 0)), bool)
        for start in range(0, f_count, STUMP_BLOCK):
            block = values[start : start + STUMP_BLOCK]
            order[start : start + STUMP_BLOCK] = np.argsort(block, axis=1, kind="stable")
            v = np.take_along_axis(block, order[start : start + STUMP_BLOCK], axis=1)
            np.greater(v[:, 1:], v[:, :-1], out=cut_ok[start : start + STUMP_BLOCK])
            if beat is not None:
                beat(min(start + STUMP_BLOCK, f_count), f_count)
        return cls(order, cut_ok)


def stump_predict(values: np.ndarray, threshold: np.ndarray | float, polarity: np.ndarray | int) -> np.ndarray:
    """Stump decisions, bool, ``p * (x - t) > 0``; ``threshold`` and ``polarity`` broadcast against
    ``values`` (per-feature ``(F,)`` arrays apply to the rows of ``(F, N)`` values with ``[:, None]``)."""
    return np.asarray(polarity) * (np.asarray(values, dtype=np.float64) - np.asarray(threshold)) > 0


def fit_stumps(values: np.ndarray, labels: np.ndarray, weights: np.ndarray, presorted: SortedFeatures | None = None,
               criterion: str = "error") -> StumpFit:
    """The minimum-weighted-error stump of every feature, all features and thresholds at once.

    Thresholds are tried below all values, between every two consecutive distinct values (at the
    midpoint) and above all values, with both polarities. With the samples of a feature in ascending
    order, the error of polarity +1 when the ``k`` smallest fall below the threshold is
    ``W_neg + cumsum(s)[k]`` with signed weights ``s = +w`` for positives and ``-w`` for negatives, and
    polarity -1 errs on the rest, ``W - that``: one gather and one cumulative sum per feature and round.

    Args:
        values: ``(F, N)`` feature values (any real dtype).
        labels: ``(N,)`` bool (or 0/1) sample labels, True for positives.
        weights: ``(N,)`` non-negative sample weights.
        presorted: :meth:`SortedFeatures.of` of ``values`` (computed when None); pass it to reuse one sort
            over many boosting rounds.
        criterion: ``"error"`` (discrete AdaBoost: minimum weighted error) or ``"z"`` (real AdaBoost:
            minimum normaliser ``Z``, from the cumulative positive and negative weights on each side).

    Returns:
        a :class:`StumpFit` of ``(F,)`` arrays.
    """
    values = np.asarray(values)
    f_count, n = values.shape
    y = np.asarray(labels).astype(bool).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(y) != n or len(w) != n:
        raise ValueError(f"fit_stumps: {n} samples in values, {len(y)} labels, {len(w)} weights")
    if n == 0:
        raise ValueError("fit_stumps: no samples")
    if presorted is None:
        presorted = SortedFeatures.of(values)
    if criterion == "z":
        return _fit_real_stumps(values, y, w, presorted)
    if criterion != "error":
        raise ValueError(f"fit_stumps: criterion must be 'error' or 'z', got {criterion!r}")
    signed = np.where(y, w, -w)
    total = float(w.sum())
    total_neg = float(w[~y].sum())
    threshold = np.empty(f_count, np.float64)
    polarity = np.empty(f_count, np.int8)
    error = np.empty(f_count, np.float64)
    for start in range(0, f_count, STUMP_BLOCK):
        stop = min(start + STUMP_BLOCK, f_count)
        o = presorted.order[start:stop]
        rows = np.arange(stop - start)
        err_up = np.empty((stop - start, n + 1))  # polarity +1, k = 0..n values below the threshold
        err_up[:, 0] = 0.0
        np.cumsum(signed[o], axis=1, out=err_up[:, 1:])
        err_up += total_neg
        best = np.minimum(err_up, total - err_up)
        best[:, 1:n][~presorted.cut_ok[start:stop]] = np.inf  # no cut between equal values
        k = np.argmin(best, axis=1)
        up = err_up[rows, k]
        down = (total - up) < up
        v = values[start:stop]
        lo = v[rows, o[rows, np.maximum(k - 1, 0)]].astype(np.float64)
        hi = v[rows, o[rows, np.minimum(k, n - 1)]].astype(np.float64)
        threshold[start:stop] = np.where(k == 0, hi - 1.0, np.where(k == n, lo + 1.0, 0.5 * (lo + hi)))
        polarity[start:stop] = np.where(down, -1, 1)
        error[start:stop] = best[rows, k]
    return StumpFit(threshold, polarity, np.maximum(error, 0.0))


def _thresholds(values: np.ndarray, order: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Midpoint thresholds with ``k (B,)`` sorted values below them, per row of ``(B, N)`` values."""
    n = values.shape[1]
    rows = np.arange(len(k))
    lo = values[rows, order[rows, np.maximum(k - 1, 0)]].astype(np.float64)
    hi = values[rows, order[rows, np.minimum(k, n - 1)]].astype(np.float64)
    return np.where(k == 0, hi - 1.0, np.where(k == n, lo + 1.0, 0.5 * (lo + hi)))


def _fit_real_stumps(values: np.ndarray, y: np.ndarray, w: np.ndarray, presorted: SortedFeatures) -> StumpFit:
    """:func:`fit_stumps` with the ``"z"`` criterion (real AdaBoost, Schapire & Singer 1999)."""
    f_count, n = values.shape
    w_pos = np.where(y, w, 0.0)
    total_pos, total = float(w_pos.sum()), float(w.sum())
    total_neg = total - total_pos
    eps = 1.0 / (2.0 * n)  # smoothing of the confidence-rated outputs, as Schapire & Singer suggest
    threshold = np.empty(f_count, np.float64)
    z_best = np.empty(f_count, np.float64)
    above = np.empty(f_count, np.float64)
    below = np.empty(f_count, np.float64)
    for start in range(0, f_count, STUMP_BLOCK):
        stop = min(start + STUMP_BLOCK, f_count)
        o = presorted.order[start:stop]
        rows = np.arange(stop - start)
        pos_below = np.zeros((stop - start, n + 1))
        all_below = np.zeros((stop - start, n + 1))
        np.cumsum(w_pos[o], axis=1, out=pos_below[:, 1:])
        np.cumsum(w[o], axis=1, out=all_below[:, 1:])
        neg_below = all_below - pos_below
        np.maximum(neg_below, 0.0, out=neg_below)
        z = np.sqrt(pos_below * neg_below)
        z += np.sqrt(np.maximum(total_pos - pos_below, 0.0) * np.maximum(total_neg - neg_below, 0.0))
        z[:, 1:n][~presorted.cut_ok[start:stop]] = np.inf
        k = np.argmin(z, axis=1)
        pb, nb = pos_below[rows, k], neg_below[rows, k]
        threshold[start:stop] = _thresholds(values[start:stop], o, k)
        z_best[start:stop] = 2.0 * z[rows, k]
        below[start:stop] = 0.5 * np.log((pb + eps) / (nb + eps))
        above[start:stop] = 0.5 * np.log((total_pos - pb + eps) / (total_neg - nb + eps))
    return StumpFit(threshold, np.ones(f_count, np.int8), z_best, above, below)


@dataclass
class Stage:
    """One boosted stage: stumps on pool features ``features (T,)`` int64 with ``thresholds (T,)`` and
    ``polarities (T,)``; a stump adds ``alphas[t]`` to the score when it says "positive" and
    ``rests[t]`` otherwise (0 in discrete AdaBoost; real AdaBoost's confidence of the other side). The
    stage passes a sample when ``score >= threshold``."""

    features: np.ndarray
    thresholds: np.ndarray
    polarities: np.ndarray
    alphas: np.ndarray
    threshold: float
    rests: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rests is None:
            self.rests = np.zeros_like(np.asarray(self.alphas, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.features)

    def scores(self, stump_values: np.ndarray) -> np.ndarray:
        """``(N,)`` boosted scores from ``(T, N)`` values of this stage's features (in stage order)."""
        h = stump_predict(stump_values, self.thresholds[:, None], self.polarities[:, None])
        return self.alphas @ h + self.rests @ ~h

    def margin(self, scores: np.ndarray) -> np.ndarray:
        """Scores relative to the threshold, divided by the range of the score: in ``[-1, 1]``."""
        span = float(np.abs(self.alphas - self.rests).sum())
        return (np.asarray(scores) - self.threshold) / max(span, 1e-12)


@dataclass
class Cascade:
    """Stages applied in turn; a sample rejected by a stage is not looked at by later ones."""

    stages: list[Stage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def stumps_per_stage(self) -> list[int]:
        return [len(s) for s in self.stages]

    def evaluate(self, values: np.ndarray | Callable[[int, np.ndarray], np.ndarray], n: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """Run the cascade with early rejection.

        Args:
            values: the ``(F, N)`` pool values of the samples, or a function ``(stage index i, samples
                (M,) int64) -> (T_i, M)`` computing the values of stage ``i``'s features (in stage order)
                for some samples on demand (then ``n`` gives N).

        Returns:
            ``(stages_passed (N,) int64, margin (N,) float64, features_evaluated, margin_sum (N,)
            float64)``: how many stages each sample passed, its :meth:`Stage.margin` in the last stage it
            reached (in the last stage for samples that passed all; 0 for an empty cascade), the total
            number of feature evaluations made, and the sum of its margins over the stages it reached.
        """
        if callable(values):
            if n is None:
                raise ValueError("Cascade.evaluate: n is required with a value function")
            get = values
        else:
            matrix = np.asarray(values)
            n = matrix.shape[1]

            def get(i: int, samples: np.ndarray) -> np.ndarray:
                return matrix[self.stages[i].features][:, samples]

        passed = np.zeros(n, np.int64)
        margin = np.zeros(n, np.float64)
        margin_sum = np.zeros(n, np.float64)
        alive = np.arange(n)
        evaluated = 0
        for i, stage in enumerate(self.stages):
            if not len(alive):
                break
            scores = stage.scores(get(i, alive))
            evaluated += len(stage) * len(alive)
            margin[alive] = stage.margin(scores)
            margin_sum[alive] += margin[alive]
            ok = scores >= stage.threshold
            alive = alive[ok]
            passed[alive] += 1
        return passed, margin, evaluated, margin_sum

    def passes(self, values: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: samples (``(F, N)`` pool values) that pass every stage."""
        return self.evaluate(values)[0] == len(self.stages)


def _threshold_for_detection_rate(pos_scores: np.ndarray, detection_rate: float) -> float:
    """The largest threshold that keeps at least ``detection_rate`` of ``pos_scores`` (``>=`` passes)."""
    s = np.sort(pos_scores)
    misses = int(np.floor((1.0 - detection_rate) * len(s) + 1e-9))
    return float(s[min(misses, len(s) - 1)]) - 1e-9


def train_stage(values: np.ndarray, labels: np.ndarray, val_pos: np.ndarray, val_neg: np.ndarray,
                detection_rate: float = 0.995, false_positive_rate: float = 0.5, max_stumps: int = 100,
                min_stumps: int = 1, boosting: str = "discrete", positive_weight: float = 1.0,
                size: int | None = None, size_false_positive_rate: float = 0.9,
                on_round: Callable[[int, float, float], None] | None = None) -> tuple[Stage, dict[str, Any]]:
    """Boost stumps into one stage until it meets its targets on validation samples.

    ``boosting="discrete"`` is Viola & Jones' discrete AdaBoost (stumps vote ``alpha`` or 0);
    ``"real"`` is real AdaBoost with confidence-rated stumps (each side of a stump outputs its own
    ``0.5 * log(W+ / W-)``, chosen by minimum ``Z``), which usually needs fewer stumps per stage.

    After each round the stage threshold is lowered to the largest value that keeps ``detection_rate``
    of ``val_pos``; the stage is done when at most ``false_positive_rate`` of ``val_neg`` pass (or at
    ``max_stumps``, or when no stump beats chance).

    Args:
        values: ``(F, N)`` pool values of the training samples; ``labels`` ``(N,)`` bool.
        val_pos, val_neg: ``(F, Np)`` and ``(F, Nn)`` pool values of validation positives and negatives.
        size, size_false_positive_rate: a planned size (the attentional schedule): the stage also stops at
            ``size`` stumps or later once at most ``size_false_positive_rate`` of ``val_neg`` pass, so it
            may end above its false-positive target but never as a stage that rejects (almost) nothing
            (``max_stumps`` stays the hard limit).
        on_round: called after every boosting round with ``(stumps, val detection rate, val false-positive
            rate)``, and with ``(0, 1.0, 1.0)`` while the features are sorted (progress lines).
        positive_weight: the positives' total initial weight over the negatives' (asymmetric AdaBoost,
            Viola & Jones 2002): above 1 the stumps favour keeping positives, which a stage of a few
            stumps thresholded for a detection rate near 1 needs in order to reject anything.

    Returns:
        ``(stage, info)`` with ``info`` holding ``stumps``, ``detection_rate`` and ``false_positive_rate``
        on the validation samples and ``training_error`` of the thresholded stage.
    """
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"train_stage: need positives and negatives, got {n_pos} and {n_neg}")
    if val_pos.shape[1] == 0:
        raise ValueError("train_stage: no validation positives")
    if boosting not in ("discrete", "real"):
        raise ValueError(f"train_stage: boosting must be 'discrete' or 'real', got {boosting!r}")
    presorted = SortedFeatures.of(values, None if on_round is None else lambda done, total: on_round(0, 1.0, 1.0))
    if not positive_weight > 0:
        raise ValueError(f"train_stage: positive_weight must be > 0, got {positive_weight}")
    share = positive_weight / (1.0 + positive_weight)  # the positives' share of the initial weight
    w = np.where(y, share / n_pos, (1.0 - share) / n_neg)
    sign = np.where(y, 1.0, -1.0)
    feats: list[int] = []
    ths: list[float] = []
    pols: list[int] = []
    alphas: list[float] = []
    rests: list[float] = []
    train_scores = np.zeros(len(y))
    pos_scores = np.zeros(val_pos.shape[1])
    neg_scores = np.zeros(val_neg.shape[1])
    threshold, fpr, dr = 0.0, 1.0, 1.0
    while len(feats) < max_stumps:
        w = w / w.sum()
        fit = fit_stumps(values, y, w, presorted, "z" if boosting == "real" else "error")
        f = int(np.argmin(fit.error))
        t, p = float(fit.threshold[f]), int(fit.polarity[f])
        pred = stump_predict(values[f], t, p)
        if boosting == "real":
            assert fit.above is not None and fit.below is not None
            if fit.error[f] >= 1.0 - 1e-12:
                log.debug("train_stage: no stump separates anything after %d stumps", len(feats))
                break
            alpha, rest = float(fit.above[f]), float(fit.below[f])
            w = w * np.exp(-sign * np.where(pred, alpha, rest))
        else:
            eps = float(np.clip(fit.error[f], 1e-10, 1.0 - 1e-10))
            if eps >= 0.5:
                log.debug("train_stage: no stump beats chance after %d stumps", len(feats))
                break
            beta = eps / (1.0 - eps)
            alpha, rest = float(np.log(1.0 / beta)), 0.0
            w = np.where(pred == y, w * beta, w)
        feats.append(f)
        ths.append(t)
        pols.append(p)
        alphas.append(alpha)
        rests.append(rest)
        train_scores += np.where(pred, alpha, rest)
        pos_scores += np.where(stump_predict(val_pos[f], t, p), alpha, rest)
        neg_scores += np.where(stump_predict(val_neg[f], t, p), alpha, rest)
        threshold = _threshold_for_detection_rate(pos_scores, detection_rate)
        dr = float(np.mean(pos_scores >= threshold))
        fpr = float(np.mean(neg_scores >= threshold)) if len(neg_scores) else 0.0
        if on_round is not None:
            on_round(len(feats), dr, fpr)
        if len(feats) >= min_stumps and fpr <= false_positive_rate:
            break
        if size is not None and len(feats) >= size and fpr <= size_false_positive_rate:
            break  # the stage's planned size, and it rejects something
    if not feats:
        raise RuntimeError("train_stage: not one stump beats chance on these samples")
    stage = Stage(np.array(feats, np.int64), np.array(ths, np.float64), np.array(pols, np.int8),
                  np.array(alphas, np.float64), threshold, np.array(rests, np.float64))
    train_error = float(np.mean((train_scores >= threshold) != y))
    return stage, {"stumps": len(feats), "detection_rate": dr, "false_positive_rate": fpr,
                   "training_error": train_error}


NegativeSource = Callable[["Cascade", int], np.ndarray]


def train_cascade(pos: np.ndarray, val_pos: np.ndarray, negatives: NegativeSource, max_stages: int = 10,
                  detection_rate: float = 0.995, false_positive_rate: float = 0.5,
                  target_false_positive_rate: float = 1e-6, max_stumps_per_stage: int = 100,
                  negatives_per_stage: int = 2000, val_negatives_per_stage: int = 1000, min_negatives: int = 10,
                  progress: Callable[..., Iterable[Any]] | None = None, boosting: str = "discrete",
                  stage_sizes: Sequence[int] | None = None, positive_weight: float = 1.0,
                  size_false_positive_rate: float = 0.9, heartbeat: Heartbeat | None = None
                  ) -> tuple[Cascade, list[dict[str, Any]]]:
    """Train an attentional cascade stage by stage, with fresh negatives for every stage.

    Before each stage, positives (training and validation) that the cascade so far rejects are dropped,
    and ``negatives(cascade, count)`` is asked for up to ``count`` new negative samples that the cascade so
    far passes (bootstrapping: the false positives of the current cascade), as ``(F, M)`` pool values; they
    are split at random into training and validation negatives. Training stops after ``max_stages``, when
    the product of the stages' validation false-positive rates reaches ``target_false_positive_rate``, or
    when fewer than ``min_negatives`` negatives come back (the cascade rejects nearly everything).

    Args:
        pos: ``(F, Np)`` pool values of training positives.
        val_pos: ``(F, Nv)`` pool values of validation positives (tune the stage thresholds).
        negatives: the negative source described above.
        progress: optional ``ctx.progress``-like wrapper for the stage loop.
        boosting: ``"discrete"`` or ``"real"`` AdaBoost (:func:`train_stage`).
        stage_sizes: the attentional schedule: stage ``i`` (from 0) is planned at ``stage_sizes[i]`` stumps
            (the last entry repeats for later stages; capped by ``max_stumps_per_stage``). Small early
            stages reject the easy windows cheaply, as in Viola & Jones' 2, 10, 25, 25, 50, ... feature
            stages: a stage that reaches its size before its false-positive target keeps its detection-rate
            threshold and passes more negatives on to the next, provided it passes at most
            ``size_false_positive_rate`` of its validation negatives; one that would reject (almost)
            nothing grows on (to ``max_stumps_per_stage`` at most). None: every stage grows to its target.
        positive_weight: the positives' initial share of the weight over the negatives' in every stage
            (:func:`train_stage`).
        heartbeat: progress lines while a stage boosts (``stage k of n: t stumps, val detection and
            false-positive rates``) at its interval; every finished stage is logged anyway.

    Returns:
        ``(cascade, stage_info)`` with one dict per stage (``stumps``, ``stumps_planned``, ``detection_rate``,
        ``false_positive_rate`` on the validation samples, ``training_error``, ``positives``,
        ``negatives`` and ``val_negatives`` used, ``negatives_asked``).
    """
    if stage_sizes is not None and (not len(stage_sizes) or min(stage_sizes) < 1):
        raise ValueError(f"train_cascade: stage_sizes must be positive stump counts, got {stage_sizes}")
    cascade = Cascade()
    info: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    overall_fpr = 1.0
    stages: Iterable[int] = range(max_stages)
    if progress is not None:
        stages = progress(stages, desc="cascade stages")
    for _ in stages:
        p_train = pos[:, cascade.passes(pos)] if len(cascade) else pos
        p_val = val_pos[:, cascade.passes(val_pos)] if len(cascade) else val_pos
        if p_train.shape[1] == 0 or p_val.shape[1] == 0:
            log.info("train_cascade: no positives left after %d stages", len(cascade))
            break
        want = negatives_per_stage + val_negatives_per_stage
        neg = np.asarray(negatives(cascade, want))
        if neg.ndim != 2 or neg.shape[0] != pos.shape[0]:
            raise ValueError(f"train_cascade: negatives came back with shape {neg.shape}; expected "
                             f"({pos.shape[0]}, M)")
        if neg.shape[1] < min_negatives:
            log.info("train_cascade: only %d negatives pass %d stages; stopping", neg.shape[1], len(cascade))
            break
        perm = rng.permutation(neg.shape[1])
        n_val = round(neg.shape[1] * val_negatives_per_stage / want)
        n_val = min(max(n_val, 1), neg.shape[1] - 1)
        n_val_neg, n_train_neg = neg[:, perm[:n_val]], neg[:, perm[n_val:]]
        values = np.concatenate([p_train, n_train_neg], axis=1)
        labels = np.r_[np.ones(p_train.shape[1], bool), np.zeros(n_train_neg.shape[1], bool)]
        cap = None
        if stage_sizes is not None:
            cap = min(max_stumps_per_stage, int(stage_sizes[min(len(cascade), len(stage_sizes) - 1)]))
        k = len(cascade) + 1

        def on_round(t: int, dr: float, fpr: float, k: int = k, shape: tuple = values.shape) -> None:
            if heartbeat is not None and t == 0:
                heartbeat(lambda: f"stage {k} of at most {max_stages}: sorting the {shape[0]} features of "
                                  f"{shape[1]} samples")
            elif heartbeat is not None:
                heartbeat(lambda: f"stage {k} of at most {max_stages}: boosting, {t} stumps, val detection "
                                  f"rate {dr:.3f}, val false positives {fpr:.3f}")

        stage, facts = train_stage(values, labels, p_val, n_val_neg, detection_rate, false_positive_rate,
                                   max_stumps_per_stage, boosting=boosting, positive_weight=positive_weight,
                                   size=cap, size_false_positive_rate=size_false_positive_rate,
                                   on_round=on_round)
        cascade.stages.append(stage)
        facts.update(stumps_planned=cap if cap is not None else max_stumps_per_stage,
                     positives=int(p_train.shape[1]), negatives=int(n_train_neg.shape[1]),
                     val_negatives=int(n_val_neg.shape[1]), negatives_asked=want)
        info.append(facts)
        line = (f"stage {len(cascade)} of at most {max_stages}: {facts['stumps']} stumps, val detection rate "
                f"{facts['detection_rate']:.3f}, val false positives {facts['false_positive_rate']:.3f} "
                f"({neg.shape[1]} negatives)")
        if heartbeat is not None:
            heartbeat(lambda line=line: line, force=True)
        else:
            log.info("%s", line)
        overall_fpr *= max(facts["false_positive_rate"], 1.0 / max(n_val_neg.shape[1], 1))
        if overall_fpr <= target_false_positive_rate:
            break
    return cascade, info
