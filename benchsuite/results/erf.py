"""The ERF evidence file of a job (``jobs/<job-id>/erf.npz``): the maps :mod:`benchsuite.erf` measured, read back
by the report without torch.

Plain named arrays (no pickles): ``map_init`` and ``map_trained`` (``(H, W)`` float32, each summing to 1: the mean
absolute input gradient of the layer's centre unit over the probe images), ``rf_box`` (``(4,)`` float64, the centre
unit's theoretical receptive field as ``x1, y1, x2, y2`` in map pixels; NaN when unknown or the whole input),
``facts`` (one JSON string: the summary also written to ``fit_info["erf"]``, so the file alone holds the report's
numbers) and ``__version__``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.results.atomic import atomic_write_npz

#: the file a job's ERF maps are saved to, in its job folder
ERF_FILE = "erf.npz"
ERF_VERSION = 1


@dataclass
class ErfEvidence:
    """A job's saved ERF: the maps at each stage, the layer's theoretical field and what was measured.

    Attributes:
        maps: ``{"init": (H, W), "trained": (H, W)}`` float32 maps summing to 1 (a stage may be missing).
        rf_box: ``(4,)`` float64 ``x1, y1, x2, y2`` of the centre unit's theoretical field in map pixels (NaN when
            unknown or whole).
        facts: the summary written to ``fit_info["erf"]`` (layer, images, share, sizes per stage, ...).
    """

    maps: dict[str, np.ndarray]
    rf_box: np.ndarray
    facts: dict[str, Any]


def save_erf(path: Path, maps: Mapping[str, np.ndarray], rf_box: Sequence[float], facts: Mapping[str, Any]) -> None:
    """Write the ERF evidence to ``path`` (an ``npz`` of plain arrays, atomically)."""
    arrays: dict[str, np.ndarray] = {f"map_{k}": np.asarray(v, np.float32) for k, v in maps.items()}
    arrays["rf_box"] = np.asarray(rf_box, np.float64).reshape(4)
    arrays["facts"] = np.asarray(json.dumps(dict(facts), sort_keys=True))
    arrays["__version__"] = np.asarray(ERF_VERSION)
    atomic_write_npz(Path(path), arrays)


def load_erf(path: Path) -> ErfEvidence:
    """Read an ERF evidence file. Raises OSError when it is missing, ValueError when it is not one or is newer."""
    with np.load(Path(path), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if "__version__" not in arrays or "facts" not in arrays:
        raise ValueError(f"{path}: not an ERF evidence file")
    if int(arrays["__version__"]) > ERF_VERSION:
        raise ValueError(f"{path}: ERF evidence version {int(arrays['__version__'])} is newer than this benchsuite "
                         f"reads ({ERF_VERSION})")
    maps = {k.removeprefix("map_"): v for k, v in arrays.items() if k.startswith("map_")}
    facts = json.loads(str(arrays["facts"]))
    return ErfEvidence(maps, arrays["rf_box"], facts if isinstance(facts, dict) else {})


def erf_summaries(records: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
    """``(record, fit_info["erf"])`` for the records that measured an ERF, in their order."""
    out = []
    for r in records:
        erf = (r.get("fit_info") or {}).get("erf")
        if isinstance(erf, dict):
            out.append((r, erf))
    return out
