"""Choosing settings on val: the one rule every validation choice follows (:meth:`benchsuite.api.Context.select`).

A pipeline gives its grid (the candidate settings, each ``{name: scalar}``, in the order it wants them tried) and
a scoring function; every candidate is scored and one is kept. **The rule**: the highest score wins; among equal
scores the candidate that comes *first in the grid* wins; an undefined score (None, NaN or infinite) ranks below
every number, so when no score is defined the first candidate wins. A pipeline that prefers, on a tie, the smaller
C, the higher threshold or the cheaper setting lists that one first.

The scoring function receives one candidate's settings and returns one of:

- a score (a float, or None where it is undefined, e.g. no val objects);
- a pair ``(score, payload)``: the payload (a fitted model, the detections made with the setting) comes back with
  the choice for the kept candidate only, so nothing is computed twice and no other candidate's payload is held;
- a :class:`Choice` of an inner, unrecorded selection made for this candidate (a threshold chosen for each
  model): its score is the candidate's, it is the payload, and its settings are added to the candidate's in the
  final choice.

**A default kept unless beaten clearly** (``prefer_first=(key, is_clear)``): where candidates differ in a costly
alternative (``key``: a window size, a model variant) and val is small, the best candidate whose ``key`` is the first
candidate's value is kept unless ``is_clear(best, default)`` says the overall best beats it clearly (e.g. a paired
bootstrap interval of the gain above zero); both arguments are settings. Nothing else changes: the same grid is
scored, and the kept candidate is recorded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("benchsuite.pipeline")

Settings = Mapping[str, Any]
Scorer = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Choice:
    """What a selection kept.

    Attributes:
        settings: the kept candidate's settings, plus any chosen inside it (an inner :class:`Choice`'s).
        score: its score (None when undefined).
        payload: what the scoring function returned with it (None when it returned a bare score).
        index: its position in the grid.
        grid: every candidate's settings, in grid order.
        scores: every candidate's score, in grid order (None where undefined).
    """

    settings: dict[str, Any]
    score: float | None
    payload: Any
    index: int
    grid: list[dict[str, Any]]
    scores: list[float | None]


def _defined(score: Any, where: str) -> float | None:
    """``score`` as a float, or None when it is undefined (None, NaN, infinite)."""
    if score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise TypeError(f"select: {where} scored {score!r}; expected a number or None") from None
    return value if math.isfinite(value) else None


def _better(score: float | None, best: float | None) -> bool:
    """The rule: a defined score beats an undefined one and a lower one; a tie keeps the earlier candidate."""
    return score is not None and (best is None or score > best)


def best_index(scores: Sequence[float | None]) -> int:
    """The index the rule keeps among ``scores`` (None or non-finite: undefined); 0 when none is defined.

    Raises:
        ValueError: no scores.
    """
    if not len(scores):
        raise ValueError("best_index: no scores")
    best = 0
    for i, value in enumerate(scores):
        if _better(_defined(value, f"score {i}"), _defined(scores[best], f"score {best}")):
            best = i
    return best


#: ``(key, is_clear)``: see the module docstring
PreferFirst = tuple[str, Callable[[dict[str, Any], dict[str, Any]], bool]]


def choose(grid: Sequence[Settings], score: Scorer, *, metric: str = "score",
           progress: Callable[..., Iterable[Any]] | None = None, verbose: bool = True,
           prefer_first: PreferFirst | None = None) -> Choice:
    """Score every candidate of ``grid`` with ``score`` and keep one by the rule of this module.

    Args:
        grid: the candidate settings, in the order ties are broken.
        score: the scoring function (see the module docstring for what it returns).
        metric: the score's name, for the log.
        progress: wraps the candidates in a progress bar (``ctx.progress``); None: no bar.
        verbose: log every candidate's score at INFO (else DEBUG).
        prefer_first: ``(key, is_clear)``: keep the best candidate with the first candidate's ``key`` unless
            ``is_clear(best settings, that candidate's settings)`` (see the module docstring).

    Raises:
        ValueError: an empty grid. TypeError: a score that is not a number or None.
    """
    candidates = [dict(c) for c in grid]
    if not candidates:
        raise ValueError(f"select {metric}: the grid is empty")
    level = logging.INFO if verbose else logging.DEBUG
    scores: list[float | None] = []
    best: tuple[int, float | None, Any, dict[str, Any]] | None = None
    default: tuple[int, float | None, Any, dict[str, Any]] | None = None  # the best with the first's ``key``
    steps = progress(range(len(candidates)), desc=f"select {metric}") if progress else range(len(candidates))
    for i in steps:
        result = score(dict(candidates[i]))
        inner: dict[str, Any] = {}
        if isinstance(result, Choice):
            value, payload, inner = result.score, result, result.settings
        elif isinstance(result, tuple):
            if len(result) != 2:
                raise TypeError(f"select {metric}: candidate {candidates[i]} returned a {len(result)}-tuple; "
                                f"expected a score or (score, payload)")
            value, payload = result
        else:
            value, payload = result, None
        value = _defined(value, f"{metric} of candidate {candidates[i]}")
        scores.append(value)
        log.log(level, "select %s [%d/%d] %s%s: %s", metric, i + 1, len(candidates), candidates[i],
                f" (chose {inner})" if inner else "", "undefined" if value is None else f"{value:.4f}")
        if best is None or _better(value, best[1]):
            best = (i, value, payload, {**candidates[i], **inner})
        if prefer_first and candidates[i].get(prefer_first[0]) == candidates[0].get(prefer_first[0]) and (
                default is None or _better(value, default[1])):
            default = (i, value, payload, {**candidates[i], **inner})
    assert best is not None
    if prefer_first and default is not None and best[0] != default[0]:
        key, is_clear = prefer_first
        if not is_clear(dict(best[3]), dict(default[3])):
            log.log(level, "select %s: %s=%s scored best (%s) but not clearly above %s=%s: the first is kept", metric,
                    key, best[3].get(key), "undefined" if best[1] is None else f"{best[1]:.4f}", key,
                    default[3].get(key))
            best = default
    index, value, payload, settings = best
    log.log(level, "select %s: kept %s (%s, candidate %d of %d)", metric, settings,
            "undefined" if value is None else f"{value:.4f}", index + 1, len(candidates))
    return Choice(settings, value, payload, index, candidates, scores)
