"""Options written into a data-set spec: ``PREFIX:PATH?key=value&key=value``.

A spec travels unchanged from the command line to every worker (and is recorded in ``run.json``), so options
written into it reach every process that opens the data set, and a spec names exactly one way of reading it.
``--datasets`` separates specs with commas, so an option value holds none; quote a spec with ``&`` in a shell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from benchsuite.errors import ConfigError


@dataclass(frozen=True)
class SpecParts:
    """A spec taken apart: ``prefix``, ``path`` (the text after ``:`` up to ``?``, stripped) and ``options``."""

    spec: str
    prefix: str
    path: str
    options: dict[str, str]

    def fraction(self, key: str, default: float) -> float:
        """Option ``key`` as a fraction strictly between 0 and 1 (``default`` when absent)."""
        if key not in self.options:
            return default
        text = self.options[key]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0 < value < 1:
            raise ConfigError(f"data set spec {self.spec!r}: {key}={text!r}; expected a fraction between 0 and 1 "
                              f"(for example {key}={default})")
        return value


def parse_spec(spec: str, usage: str, allowed: Iterable[str]) -> SpecParts:
    """Split ``spec`` (``PREFIX:PATH?k=v&k=v``) and check its option names against ``allowed``.

    ``usage`` is how the format's specs are written (``"coco:ANNOTATIONS.json"``), for messages. A spec naming no
    path, an option without ``=``, an option given twice or one the format does not take is a ConfigError.
    """
    prefix, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    path = path.strip()
    if not path:
        raise ConfigError(f"data set spec {spec!r} names no path; expected {usage}")
    allowed = tuple(allowed)
    options: dict[str, str] = {}
    for item in (query.split("&") if query.strip() else []):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ConfigError(f"data set spec {spec!r}: option {item!r} is not KEY=VALUE")
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise ConfigError(f"data set spec {spec!r}: unknown option {key!r}; {prefix} takes {valid}")
        if key in options:
            raise ConfigError(f"data set spec {spec!r}: option {key!r} given twice")
        options[key] = value.strip()
    return SpecParts(spec, prefix, path, options)
