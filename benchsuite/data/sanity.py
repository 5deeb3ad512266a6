"""Data sanity before any job starts: problems that would otherwise pass silently or fail every job later.

:func:`check_dataset` looks at the splits a run will use of one opened data set and returns :class:`Finding`\\ s:

=====================================================  ==========  ===============================================
finding                                                level       why
=====================================================  ==========  ===============================================
an image id in test and in train or val                error       test images seen in training: the test
                                                                   numbers would be inflated
an image id in both train and val                      warning     the choice on val is optimistic; test is clean
a scored split without a (non-difficult) object, for   error       every detection metric of that split is
a task that needs boxes                                            undefined: "ok" records with null metrics
an image that does not decode (truncated, corrupt)     error       it would fail every job that reads it
=====================================================  ==========  ===============================================

Images are decoded once, at a reduced scale where the format allows (JPEG's DCT scaling still reads every byte
of the file), and each image's verdict is cached by the data set's content fingerprint in
``<cache>/data_checks/<fingerprint>.json``, so a data set is decoded once, not every run; a damaged cache file is
ignored and written again. Only data sets whose splits list image files (``DetectionSet``-like: ``samples`` with
a ``path``) are decoded; in-memory ones (CIFAR-10) have nothing to decode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from benchsuite.errors import BenchsuiteError
from benchsuite.results.atomic import atomic_write_json
from benchsuite.results.safe_paths import open_regular, read_limited, safe_name

log = logging.getLogger(__name__)

ERROR, WARNING = "error", "warning"
#: examples named per finding
EXAMPLES = 3
_CHECKS = "data_checks"


@dataclass(frozen=True)
class Finding:
    """One problem of a data set: ``level`` is :data:`ERROR` (the run is refused) or :data:`WARNING` (logged and
    kept in ``run.json``'s ``data_findings`` and the report), ``message`` one line naming the data set."""

    level: str
    message: str


def _ids(dataset: Any, split: str) -> list[str] | None:
    getter = getattr(dataset, "split_ids", None)
    if callable(getter):
        try:
            return [str(i) for i in getter(split)]
        except (BenchsuiteError, KeyError, ValueError):
            return None
    return None


def _examples(items: Iterable[str]) -> str:
    items = sorted(items)
    more = ", ..." if len(items) > EXAMPLES else ""
    return ", ".join(items[:EXAMPLES]) + more


def split_overlaps(dataset: Any, name: str) -> list[Finding]:
    """Image ids listed in two of train, val and test (the data set's ``split_ids``, when it has them)."""
    ids = {s: _ids(dataset, s) for s in ("train", "val", "test")}
    if any(v is None for v in ids.values()):
        return []
    train, val, test = (set(ids[s] or ()) for s in ("train", "val", "test"))
    out = []
    leaked = test & (train | val)
    if leaked:
        out.append(Finding(ERROR, f"data set {name}: {len(leaked)} image id(s) are in the test split and in train or "
                                  f"val (e.g. {_examples(leaked)}): test images would be seen in training; remove "
                                  f"them from one of the split lists"))
    both = train & val
    if both:
        out.append(Finding(WARNING, f"data set {name}: {len(both)} image id(s) are in both train and val (e.g. "
                                    f"{_examples(both)}): choices made on val are optimistic"))
    return out


def objectless_splits(dataset: Any, name: str, scored: Mapping[str, int | None]) -> list[Finding]:
    """A scored split (``scored``: split -> the profile's image cap) whose images hold no non-difficult object."""
    out = []
    for split, cap in scored.items():
        data = dataset.load(split, cap)
        count = getattr(data, "num_objects", None)
        if not callable(count):
            continue
        if count(include_difficult=False) == 0:
            out.append(Finding(ERROR, f"data set {name}: the {split} split ({len(data)} image(s)"
                                      f"{f', capped at {cap}' if cap is not None else ''}) holds no object that is not "
                                      f"difficult: every detection metric of it would be undefined; annotate objects "
                                      f"in it or choose another split list"))
    return out


def decode_error(path: Path) -> str | None:
    """Why the image file ``path`` does not decode (None when it does): a full decode, at 1/8 scale for JPEG."""
    try:
        with open_regular(path, what="image file") as f, Image.open(f) as img:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except FileNotFoundError:
        return "missing"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, BenchsuiteError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _cache_file(cache_dir: Path, fingerprint: str) -> Path:
    return Path(cache_dir) / _CHECKS / f"{safe_name(fingerprint)}.json"


def _read_verdicts(path: Path, fingerprint: str) -> dict[str, str]:
    """The cached verdicts (image file name -> "" or why it does not decode); empty when the file is missing,
    damaged or of another data set."""
    try:
        cached = json.loads(read_limited(path, 256 * 2**20, "data check cache"))
    except (OSError, ValueError, BenchsuiteError):
        return {}
    if not isinstance(cached, dict) or cached.get("fingerprint") != fingerprint:
        return {}
    verdicts = cached.get("verdicts")
    if not isinstance(verdicts, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in verdicts.items()):
        return {}
    return verdicts


def undecodable_images(dataset: Any, name: str, used: Mapping[str, int | None], cache_dir: Path | None,
                       fingerprint: str) -> list[Finding]:
    """Images of the used splits (``used``: split -> cap) that do not decode, each decoded once per data set
    content (verdicts cached by ``fingerprint`` under ``cache_dir``)."""
    paths: dict[str, Path] = {}
    for split, cap in used.items():
        for sample in getattr(dataset.load(split, cap), "samples", ()) or ():
            path = getattr(sample, "path", None)
            if path is not None:
                paths[str(sample.image_id)] = Path(path)
    if not paths:
        return []
    cache = _cache_file(cache_dir, fingerprint) if cache_dir is not None else None
    verdicts = _read_verdicts(cache, fingerprint) if cache is not None else {}
    todo = {key: p for key, p in paths.items() if key not in verdicts}
    if todo:
        log.info("data: decoding %d image(s) of %s once to check them (the verdicts are cached)", len(todo), name)
        for key, path in todo.items():
            verdicts[key] = decode_error(path) or ""
        if cache is not None:
            try:
                atomic_write_json(cache, {"fingerprint": fingerprint, "verdicts": verdicts})
            except OSError as exc:  # a read-only cache: decode again next time
                log.debug("cannot write %s: %s", cache, exc)
    bad = {key: verdicts[key] for key in paths if verdicts.get(key)}
    if not bad:
        return []
    first = sorted(bad)[0]
    return [Finding(ERROR, f"data set {name}: {len(bad)} image(s) do not decode (e.g. {paths[first]}: {bad[first]}; "
                           f"{_examples(bad)}): every job that reads them would fail; replace or remove them")]


def check_dataset(dataset: Any, name: str, used: Mapping[str, int | None], scored: Mapping[str, int | None],
                  boxes_needed: bool, cache_dir: Path | None) -> list[Finding]:
    """Every finding for one data set: ``used`` the splits the run's jobs load (split -> cap), ``scored`` those
    they score, ``boxes_needed`` whether a task of the run scores boxes on it."""
    fingerprint = str(getattr(getattr(dataset, "info", None), "fingerprint", "") or "")
    out = split_overlaps(dataset, name)
    if boxes_needed:
        out += objectless_splits(dataset, name, scored)
    out += undecodable_images(dataset, name, used, cache_dir, fingerprint) if fingerprint else []
    return out
