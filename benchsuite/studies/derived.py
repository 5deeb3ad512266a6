"""A study's derived data set, and the ``study:`` data-set format that opens one in any process.

A point of a study is a data set derived from a base one: :class:`DerivedDataset` loads each split of the base and
passes it through the axis (:meth:`benchsuite.studies.axes.Axis.derive`). Its spec names everything needed to
derive it again, in the planner, in a worker, on a Ray node::

    study:AXIS:VALUES:SEED:BASE_SPEC       e.g. study:train-size:0.1:0:cifar10
                                                study:resolution:0.5:0:voc:/data/pennfudan-voc
                                                study:corruption:gaussian-noise-1+contrast-5:0:cifar10

``VALUES`` are the points' canonical texts joined by ``+`` (one point, except for an axis that fits once and
scores every point, :attr:`~benchsuite.studies.axes.Axis.one_fit`). The ``study`` prefix is registered in
``benchsuite.datasets`` like every format, so :func:`benchsuite.data.datasets.open_dataset` opens such a spec.

A derived data set is named ``<base>.<axis>-<point slug>`` (``cifar10.train-size-10pct``; for a one-fit axis
``<base>.<axis>``, its points being the test split's variants ``test.<point slug>``), which puts the axis and the
value into every job id (``classification--cifar10.train-size-10pct--cnn--s0``). Its fingerprint covers the base's
fingerprint, the axis and the points; the fingerprint of each split it changes also covers the seed where the
axis draws at random. Its manifest (``splits/<name>.s<seed>.study.json``) says how it was derived.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from benchsuite.data.datasets import Dataset, DatasetFormat, DatasetInfo, OpenRequest, open_dataset
from benchsuite.errors import ConfigError
from benchsuite.results.atomic import atomic_write_json
from benchsuite.studies.axes import Axis, Point, get_axis

PREFIX = "study"
USAGE = "study:AXIS:VALUES:SEED:BASE_SPEC"
#: the name of a one-fit axis's clean test split's point (severity 0 of every curve)
CLEAN = "clean"


def make_spec(axis: str, points: list[Point], seed: int, base_spec: str) -> str:
    """The spec of the data set ``base_spec`` derived by ``axis`` at ``points`` for ``seed``."""
    return f"{PREFIX}:{axis}:{'+'.join(p.text for p in points)}:{int(seed)}:{base_spec}"


def parse_spec(spec: str) -> tuple[Axis, list[Point], int, str]:
    """``(axis, points, seed, base spec)`` of a ``study:`` spec; a malformed one is a ConfigError."""
    parts = spec.split(":", 4)
    if len(parts) != 5 or parts[0] != PREFIX or not parts[4].strip():
        raise ConfigError(f"data set spec {spec!r}: expected {USAGE}")
    _, axis_name, values, seed, base = parts
    if not seed.isdigit():
        raise ConfigError(f"data set spec {spec!r}: seed {seed!r} is not a non-negative integer; expected {USAGE}")
    axis = get_axis(axis_name)
    return axis, axis.points(values), int(seed), base


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:16]


def clean_point(axis: Axis) -> Point:
    """The point of a one-fit axis's plain test split: the clean images (position 0 of every curve)."""
    return Point(axis.name, CLEAN, CLEAN, CLEAN, CLEAN, 0.0)


class DerivedDataset:
    """The data set ``base`` as ``axis`` derives it at ``points`` for ``seed`` (see the module's docstring).

    For an ordinary axis ``points`` holds one point and every split goes through :meth:`Axis.derive`; for a one-fit
    axis the plain splits are the base's and each point is a variant of the test split, ``test.<slug>``.
    """

    def __init__(self, base: Dataset, axis: Axis, points: list[Point], seed: int, base_spec: str = ""):
        if not points or (len(points) > 1 and not axis.one_fit):
            raise ConfigError(f"the {axis.name} axis derives a data set for one point at a time, got "
                              f"{len(points)}")
        self.base = base
        self.axis = axis
        self.points = list(points)
        self.seed = int(seed)
        self.spec = make_spec(axis.name, points, seed, base_spec) if base_spec else ""
        self.variants = {f"test.{p.slug}": p for p in points} if axis.one_fit else {}
        b = base.info
        self.name = f"{b.name}.{axis.name}" if axis.one_fit else f"{b.name}.{axis.name}-{points[0].slug}"
        self.fingerprint = _digest(b.fingerprint, axis.name, *(p.text for p in points))
        self.info = self._describe()

    def _split_fingerprint(self, split: str, point: Point | None = None) -> str:
        base_fp = self.base.info.split_fingerprints.get(split, "")
        if point is None:
            return base_fp
        return _digest(base_fp, self.axis.name, point.text, self.seed if self.axis.seeded else "")

    def _describe(self) -> DatasetInfo:
        b, axis = self.base.info, self.axis
        fps = dict(b.split_fingerprints)
        if axis.one_fit:
            fps.update({split: self._split_fingerprint("test", p) for split, p in self.variants.items()})
        else:
            fps.update({s: self._split_fingerprint(s, self.points[0]) for s in fps if s in axis.changes
                        or (s == "trainval" and "train" in axis.changes)})
        counts = dict(b.split_counts)
        if axis.one_fit:
            counts.update({split: counts.get("test", 0) for split in self.variants})
        else:
            counts = {s: axis.count(s, n, self.points[0]) for s, n in counts.items()}
        what = axis.describe(self.points)
        seeded = f", seed {self.seed}" if axis.seeded else ""
        return DatasetInfo(
            name=self.name, annotations=list(b.annotations), origin=b.origin, canonical=b.canonical,
            fingerprint=self.fingerprint, root=b.root, classes=list(b.classes), split_counts=counts,
            split_fingerprints=fps, description=f"{b.description}; study {what}{seeded}",
            notes=[*b.notes, f"derived from {b.name} (fingerprint {b.fingerprint}) by the {axis.name} axis: "
                   f"{axis.description}"],
            derived_from={"name": b.name, "fingerprint": b.fingerprint, "description": b.description,
                          "split_counts": dict(b.split_counts), "axis": axis.name,
                          "points": [p.text for p in self.points], "seed": self.seed})

    # ------------------------------------------------------------------------------------------ access
    def load(self, split: str, max_images: int | None = None) -> Any:
        """One split as the point sees it (``max_images``: the profile's cap, applied to the base split first)."""
        if split in self.variants:
            return self.axis.derive(self.base.load("test", max_images), "test", self.variants[split], self.seed)
        data = self.base.load(split, max_images)
        if self.axis.one_fit:
            return data
        return self.axis.derive(data, split, self.points[0], self.seed)

    def eval_splits(self, requested: list[str]) -> list[str]:
        """The splits a job on this data set scores: ``requested``, and every variant when it asks for test."""
        return [*requested, *self.variants] if "test" in requested else list(requested)

    def study_point(self, split: str) -> dict[str, Any] | None:
        """The record's ``study`` block for ``split``: the axis, the point, the seed, the base data set and the
        derived data set's fingerprint."""
        if self.axis.one_fit:
            point = self.variants.get(split) or (clean_point(self.axis) if split == "test" else None)
            if point is None:
                return None
        else:
            point = self.points[0]
        return {"axis": self.axis.name, **{k: v for k, v in point.as_dict().items() if k != "axis"},
                "seed": self.seed, "base_dataset": self.base.info.name, "fingerprint": self.fingerprint}

    def write_manifest(self, folder: Path) -> Path:
        """The base's manifest and ``<name>.s<seed>.study.json``: how this data set was derived."""
        self.base.write_manifest(folder)
        path = Path(folder) / f"{self.name}.s{self.seed}.study.json"
        atomic_write_json(path, {
            "dataset": self.name, "spec": self.spec, "fingerprint": self.fingerprint, "axis": self.axis.name,
            "axis_description": self.axis.description, "points": [p.as_dict() for p in self.points],
            "seed": self.seed, "base": {"name": self.base.info.name, "fingerprint": self.base.info.fingerprint},
            "split_fingerprints": self.info.split_fingerprints, "split_counts": self.info.split_counts})
        return path


def derive(base: Dataset, base_spec: str, axis: Axis, points: list[Point], seed: int) -> DerivedDataset:
    """``base`` (opened from ``base_spec``) derived by ``axis`` at ``points`` for ``seed``."""
    return DerivedDataset(base, axis, points, seed, base_spec)


def _open(req: OpenRequest) -> DerivedDataset:
    axis, points, seed, base_spec = parse_spec(req.spec)
    if base_spec.split(":", 1)[0] == PREFIX:
        raise ConfigError(f"data set spec {req.spec!r}: a study's base cannot itself be a study")
    base = open_dataset(base_spec, req.data_root, req.cache_dir, req.force_synthetic, req.download)
    return derive(base, base_spec, axis, points, seed)


def _annotations(req: OpenRequest) -> frozenset[str]:
    from benchsuite.data.datasets import spec_annotations

    _, _, _, base_spec = parse_spec(req.spec)
    return spec_annotations(base_spec, req.data_root, req.cache_dir, req.force_synthetic)


#: the ``study`` data-set format (its annotations are its base's)
open_study = DatasetFormat(PREFIX, _open, frozenset(), _annotations, USAGE)
