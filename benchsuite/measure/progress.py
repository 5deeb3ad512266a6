"""Progress lines in a job's log: a long phase of work says how far it is at least every ``every_s`` seconds.

A progress bar (``ctx.progress``) shows on a terminal only; a job's ``log.txt`` gets these lines, so a user
reading it sees a fit that is working, how far it is, and what it has produced so far (windows collected,
features computed, round k of n).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: the longest silence of a long phase in the log, seconds
EVERY_S = 30.0


class ProgressLog:
    """Logs ``phase: done/total (facts), elapsed s`` when at least ``every_s`` seconds passed since the last line.

    Args:
        logger: where the lines go (the pipeline's module logger: they reach the job's ``log.txt``).
        phase: what is being done (``"training windows"``, ``"hard negatives, round 1 of 2"``).
        total: the number of items, when known.
        every_s: seconds between lines (at most; a line is written only on :meth:`update`).
        clock: seconds, monotonic (for tests).
    """

    def __init__(self, logger: logging.Logger, phase: str, total: int | None = None, every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.phase = phase
        self.total = total
        self.every_s = float(every_s)
        self.clock = clock
        self.start = self.last = clock()
        self.lines = 0

    def _line(self, done: int, facts: dict[str, Any]) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        extra = "".join(f", {k.replace('_', ' ')} {v}" for k, v in facts.items())
        self.logger.info("%s: %d%s%s, %.0f s", self.phase, done, of, extra, self.clock() - self.start)
        self.lines += 1

    def update(self, done: int, **facts: Any) -> bool:
        """Write a line when one is due; ``facts`` are counts so far (``windows=1200``). Returns whether it did."""
        now = self.clock()
        if now - self.last < self.every_s:
            return False
        self.last = now
        self._line(done, facts)
        return True

    def finish(self, done: int, **facts: Any) -> None:
        """The phase's last line, always written."""
        self.last = self.clock()
        self._line(done, facts)


def logged(items: Iterable[T], logger: logging.Logger, phase: str, total: int | None = None,
           every_s: float = EVERY_S, facts: Callable[[], dict[str, Any]] | None = None) -> Iterator[T]:
    """``items``, with a :class:`ProgressLog` line at least every ``every_s`` seconds while they are consumed
    (the count of items done, and ``facts()`` when given) and one at the end."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress = ProgressLog(logger, phase, total, every_s)
    done = 0
    for item in items:
        yield item
        done += 1
        progress.update(done, **(facts() if facts else {}))
    progress.finish(done, **(facts() if facts else {}))
