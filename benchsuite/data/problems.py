"""The problems a reader meets in a data set, each with the file it is in.

A reader reads the whole data set and collects every problem rather than stopping at the first, so that
``benchsuite data check SPEC`` can list them all. Two severities:

- **error**: the data set cannot be used as it is (an image a COCO file names is missing, a YOLO line with four
  numbers, an XML whose ``<filename>`` matches no image, two annotation files claiming one image, a path that
  leaves the folder). Opening it for a run raises one :class:`~benchsuite.errors.DataError`: the first error's
  line, and how many more there are.
- **warning**: something was repaired or left out and the run goes on (an unreadable image skipped, a box
  clipped to its image, a zero-area box dropped); the data set's ``notes`` count them by kind with a few files as
  examples, and ``data check`` lists each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchsuite.errors import DataError

MAX_EXAMPLES = 3
MAX_ITEMS = 100_000  # problems kept one by one; past that they are only counted


@dataclass(frozen=True)
class Problem:
    """One problem: ``severity`` (``"error"`` or ``"warning"``), ``kind`` (a short name, e.g. ``"box clipped"``),
    ``file`` (where it is, as the user knows it) and ``message`` (what is wrong and what was expected)."""

    severity: str
    kind: str
    file: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class Problems:
    """Every problem a reader met, in the order met. ``spec`` is the data set's spec, for the error message."""

    spec: str = ""
    items: list[Problem] = field(default_factory=list)
    #: problems met past :data:`MAX_ITEMS`, by severity: counted, not kept
    uncounted: dict[str, int] = field(default_factory=dict)

    def _add(self, problem: Problem) -> None:
        if len(self.items) < MAX_ITEMS:
            self.items.append(problem)
        else:
            self.uncounted[problem.severity] = self.uncounted.get(problem.severity, 0) + 1

    def error(self, file: Path | str, message: str, kind: str = "error") -> None:
        self._add(Problem("error", kind, str(file), message))

    def warn(self, kind: str, file: Path | str, message: str) -> None:
        self._add(Problem("warning", kind, str(file), message))

    def add_error(self, exc: DataError) -> None:
        """A DataError raised while reading one file: its one line, kept as an error (the line names the file)."""
        file, _, message = str(exc).partition(": ")
        self._add(Problem("error", "error", file, message or str(exc)))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def notes(self) -> list[str]:
        """One line per kind of warning: ``"3 box clipped to its image (e.g. a.xml, b.xml, c.xml, ...)"``."""
        by_kind: dict[str, list[Problem]] = {}
        for p in self.warnings:
            by_kind.setdefault(p.kind, []).append(p)
        out = []
        for kind, items in by_kind.items():
            files = list(dict.fromkeys(p.file for p in items))
            more = ", ..." if len(files) > MAX_EXAMPLES else ""
            out.append(f"{len(items)} x {kind} (e.g. {', '.join(files[:MAX_EXAMPLES])}{more})")
        return out

    def raise_errors(self) -> None:
        """Raise one DataError for the errors met (none: nothing): the first one's line and how many more."""
        errors = self.errors
        if not errors:
            return
        more = ""
        others = len(errors) - 1 + self.uncounted.get("error", 0)
        if others:
            more = f" (and {others} more problem(s): `benchsuite data check {self.spec}` lists them)"
        raise DataError(errors[0].line() + more)
