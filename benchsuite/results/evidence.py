"""Per-image evidence files: what a task saved when it scored a split, so that the report reads, never recomputes.

When the parent process scores a job's predictions (:meth:`benchsuite.tasks.base.Task.evaluate`), the task
writes ``jobs/<job-id>/evidence-<split>.npz`` beside the predictions: plain named numpy arrays (no pickles)
holding everything its interval statistic, and the report's data-dependent views (the detection gallery), need:
per-image correctness for classification, per-image matched scores and object counts for detection, per-image
recall counts for proposals. The record lists the file under ``artifacts.evidence``. Two entries are the
file's own: ``__task__`` (the task's name) and ``__version__`` (:data:`EVIDENCE_VERSION`).

A run folder written before evidence files existed has none: the report then says that its intervals are
unavailable (it never reopens the data sets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.results.atomic import atomic_write_npz

EVIDENCE_VERSION = 1
_TASK, _VERSION = "__task__", "__version__"


def evidence_name(split: str) -> str:
    """The evidence file's name in a job folder: ``evidence-test.npz``."""
    return f"evidence-{split}.npz"


@dataclass(frozen=True)
class Evidence:
    """One evidence file: the task that wrote it, the format version and its arrays by name."""

    task: str
    version: int
    arrays: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays


def save_evidence(path: Path, task: str, arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (name -> array-like, no object arrays) to ``path`` as a compressed ``npz``, atomically."""
    reserved = {_TASK, _VERSION} & set(arrays)
    if reserved:
        raise ValueError(f"evidence array names {sorted(reserved)} are reserved")
    packed = {name: np.asarray(value) for name, value in arrays.items()}
    bad = [name for name, value in packed.items() if value.dtype == object]
    if bad:
        raise ValueError(f"evidence arrays {bad} hold Python objects; use numeric or string arrays")
    atomic_write_npz(Path(path), {_TASK: np.asarray(task), _VERSION: np.asarray(EVIDENCE_VERSION), **packed})


def load_evidence(path: Path) -> Evidence:
    """Read an evidence file (every array into memory). Raises OSError when it is missing and ValueError when it
    is not an evidence file or comes from a newer format."""
    with np.load(Path(path), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if _TASK not in arrays or _VERSION not in arrays:
        raise ValueError(f"{path}: not an evidence file (no {_TASK} / {_VERSION} entry)")
    version = int(arrays.pop(_VERSION))
    if version > EVIDENCE_VERSION:
        raise ValueError(f"{path}: evidence format {version} is newer than this benchsuite reads "
                         f"({EVIDENCE_VERSION}); upgrade benchsuite")
    return Evidence(str(arrays.pop(_TASK)), version, arrays)


def pack_ragged(parts: list[np.ndarray], width: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per-image arrays of varying length as ``(values, offsets)``: image ``i`` holds
    ``values[offsets[i]:offsets[i + 1]]``; ``width`` is the trailing shape of an empty result."""
    lengths = np.asarray([len(p) for p in parts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.concatenate([np.asarray(p) for p in parts]) if parts and offsets[-1] else np.zeros((0, *width))
    return values, offsets


def unpack_ragged(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """The per-image arrays of :func:`pack_ragged`."""
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def save_ragged(path: Path, image_ids: list[str], **per_image: list[np.ndarray]) -> None:
    """Per-image arrays of varying length (every name with the same length per image), packed by
    :func:`pack_ragged` with one shared ``offsets`` index, and the image ids, as a compressed ``npz``, atomically
    (a job's predictions file)."""
    arrays: dict[str, np.ndarray] = {"image_ids": np.asarray(image_ids)}
    offsets = None
    for name, parts in per_image.items():
        sample = next((p for p in parts if len(p)), None)
        arrays[name], these = pack_ragged(parts, np.asarray(sample).shape[1:] if sample is not None else ())
        if offsets is not None and not np.array_equal(offsets, these):
            raise ValueError(f"{name}: per-image lengths differ from the other arrays")
        offsets = these
    arrays["offsets"] = offsets if offsets is not None else np.zeros(1, np.int64)
    atomic_write_npz(path, arrays)


def load_ragged(path: Path) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """The image ids and the per-image arrays of a file :func:`save_ragged` wrote."""
    with np.load(path) as npz:
        offsets = npz["offsets"]
        ids = [str(s) for s in npz["image_ids"]]
        out = {name: unpack_ragged(npz[name], offsets) for name in npz.files if name not in ("offsets", "image_ids")}
    return ids, out
