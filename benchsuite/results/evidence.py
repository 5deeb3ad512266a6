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


#: the most bytes the arrays of one evidence or predictions file may hold once loaded (checked from the files'
#: headers before anything is allocated); a task's output caps keep real files far below it
MAX_NPZ_BYTES = 2 * 2**30


def checked_npz(path: Path, max_bytes: int = MAX_NPZ_BYTES) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The arrays an ``npz`` file declares, ``{name: (shape, dtype)}``, read from each member's header without
    loading it: a regular file only (never a FIFO), no object arrays, and at most ``max_bytes`` bytes in all once
    loaded. Anything else is a ValueError naming the file (what the runner and the report refuse to load)."""
    import zipfile

    from benchsuite.errors import BenchsuiteError
    from benchsuite.results.safe_paths import open_regular

    path = Path(path)
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    try:
        with open_regular(path, max_bytes, "npz file") as f, zipfile.ZipFile(f) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"{path}: member {info.filename[:60]!r} is not an array")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    reader = {(1, 0): np.lib.format.read_array_header_1_0,
                              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if reader is None:
                        raise ValueError(f"{path}: member {info.filename[:60]!r} has .npy format {version}")
                    shape, _, dtype = reader(member)
                if dtype.hasobject:
                    raise ValueError(f"{path}: array {info.filename[:-4][:60]!r} holds Python objects")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                if total > max_bytes or info.file_size > max_bytes:
                    raise ValueError(f"{path}: its arrays would take more than {max_bytes / 2**20:,.0f} MiB of memory; "
                                     f"refused before loading them")
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, EOFError, OSError, BenchsuiteError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable npz file ({str(exc)[:200]})") from None
    return out


def load_evidence(path: Path, max_bytes: int = MAX_NPZ_BYTES) -> Evidence:
    """Read an evidence file (every array into memory, after :func:`checked_npz`). Raises OSError when it is missing
    and ValueError when it is not an evidence file, is too large, or comes from a newer format."""
    checked_npz(Path(path), max_bytes)
    with np.load(Path(path), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if _TASK not in arrays or _VERSION not in arrays:
        raise ValueError(f"{path}: not an evidence file (no {_TASK} / {_VERSION} entry)")
    if arrays[_VERSION].shape != () or arrays[_VERSION].dtype.kind not in "iu" or arrays[_TASK].shape != ():
        raise ValueError(f"{path}: its {_TASK} / {_VERSION} entries are not a name and a whole number")
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


def load_ragged(path: Path, max_per_image: int | None = None, max_bytes: int = MAX_NPZ_BYTES
                ) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """The image ids and the per-image arrays of a file :func:`save_ragged` wrote, checked before use: its size
    (:func:`checked_npz`), ``offsets`` a non-decreasing 1-D index into every array from 0 to its length, one id
    per image, and at most ``max_per_image`` entries per image. A file that breaks any of these (a worker's
    predictions are not trusted: the pipeline ran in that process) is a ValueError naming it and what is wrong."""
    declared = checked_npz(Path(path), max_bytes)
    for name in ("offsets", "image_ids"):
        if name not in declared:
            raise ValueError(f"{path}: no {name!r} array; not a per-image predictions file")
    with np.load(path, allow_pickle=False) as npz:
        offsets = npz["offsets"]
        if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) < 1 or offsets[0] != 0 or \
                np.any(np.diff(offsets) < 0):
            raise ValueError(f"{path}: 'offsets' is not a non-decreasing index from 0")
        ids = npz["image_ids"]
        if ids.ndim != 1 or len(ids) != len(offsets) - 1:
            raise ValueError(f"{path}: {len(ids)} image ids for {len(offsets) - 1} images")
        counts = np.diff(offsets)
        if max_per_image is not None and len(counts) and int(counts.max()) > max_per_image:
            worst = int(np.argmax(counts))
            raise ValueError(f"{path}: image {str(ids[worst])[:60]} has {int(counts[worst]):,} entries, more than the "
                             f"{max_per_image:,} per image this task accepts")
        out = {}
        for name in npz.files:
            if name in ("offsets", "image_ids"):
                continue
            values = npz[name]
            if values.ndim < 1 or len(values) != int(offsets[-1]):
                raise ValueError(f"{path}: {name!r} holds {len(values) if values.ndim else 0} entries, the offsets "
                                 f"index {int(offsets[-1])}")
            out[name] = unpack_ragged(values, offsets)
    return [str(s) for s in ids], out
