"""Detection data sets read from annotation formats other than a VOC devkit folder (``coco``, ``yolo``, ``vocxml``).

A reader turns its files into :class:`RawImage` records (an image file, its boxes, the split its folder or file
gave it, the annotation file it came from); :func:`build_samples` checks them the same way for every format and
:class:`BoxDataset` makes them a benchmark data set with the same splits, fingerprints, manifest and access as a
VOC folder (:class:`benchsuite.data.voc.VocDataset`), so every detector and report works unchanged.

What :func:`build_samples` does, for every format:

==============================================  ===========================================================
problem                                         what happens
==============================================  ===========================================================
image file missing                              error (the run stops), naming the annotation file
image not a regular file (FIFO, device)         error; never opened
image unreadable (header)                       warning: the image is skipped
two annotation entries claiming one image       error naming both
box partly outside the image                    warning: clipped to the image
box with no area after clipping                 warning: dropped
==============================================  ===========================================================

Image ids are the image files' stems (``FudanPed00001``) when those are unique in the data set, else their paths
relative to the data set folder without the suffix. Samples are sorted by id within each split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data import synthetic_voc
from benchsuite.data.confine import regular_file
from benchsuite.data.datasets import BOXES, SUBSET_SEED, DatasetInfo
from benchsuite.data.detection import DetectionSample, DetectionSet, image_size
from benchsuite.data.problems import Problems
from benchsuite.data.seeded_splits import TEST_FRACTION, resolve_splits
from benchsuite.data.spec_options import SpecParts
from benchsuite.data.splits import stratified_choice
from benchsuite.data.voc import _split_fingerprint
from benchsuite.data.voc_splits import VAL_FRACTION, split_indices, split_manifest
from benchsuite.errors import DataError
from benchsuite.results.atomic import atomic_write_json


@dataclass
class RawImage:
    """One image as a reader found it.

    Attributes:
        path: the image file, resolved inside the data set folder.
        source: where its annotation is (a file, ``file:line``, ``file image id 7``), for messages.
        split: the split its folder or file gave it (``train``, ``val``, ``test``), or ``""``.
        boxes: ``(M, 4)`` float64 ``x1, y1, x2, y2`` pixels (pixel-edge convention, not yet clipped); when
            ``normalised``, fractions of the image's width and height instead.
        labels: ``(M,)`` int64 class indices.
        difficult: ``(M,)`` bool, objects left out of scoring (VOC difficult, COCO crowd).
        truncated: ``(M,)`` bool.
        normalised: ``boxes`` are fractions of the image size (YOLO), converted once the size is read.
        stated_size: ``(width, height)`` the annotation states, if any (a mismatch is a warning).
    """

    path: Path
    source: str
    split: str
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray
    normalised: bool = False
    stated_size: tuple[int, int] | None = None

    @classmethod
    def of(cls, path: Path, source: str, split: str, boxes: Sequence[Sequence[float]], labels: Sequence[int],
           difficult: Sequence[bool] | None = None, truncated: Sequence[bool] | None = None, **kw: Any) -> RawImage:
        m = len(labels)
        return cls(path, source, split, np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64),
                   np.asarray(difficult if difficult is not None else [False] * m, bool),
                   np.asarray(truncated if truncated is not None else [False] * m, bool), **kw)


def origin_of(root: Path) -> str:
    """``"synthetic"`` for a folder the suite's synthetic generators wrote (it holds their marker file), else
    ``"real"``."""
    return "synthetic" if (Path(root) / synthetic_voc.MARKER).is_file() else "real"


def image_ids(paths: Sequence[Path], root: Path) -> list[str]:
    """Each image's id: its stem where stems are unique in the data set, else its relative path less the suffix
    (``a.jpg`` and ``a.png`` stay apart as ``a.jpg`` / ``a.png``)."""
    stems = [p.stem for p in paths]
    rel = [p.relative_to(root).as_posix() for p in paths]
    without = [r[: -len(p.suffix)] if p.suffix else r for r, p in zip(rel, paths)]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    out = []
    seen = {w: 0 for w in without}
    for w in without:
        seen[w] += 1
    for stem, w, r in zip(stems, without, rel):
        out.append(stem if counts[stem] == 1 else (w if seen[w] == 1 else r))
    return out


@dataclass
class BoxCollection:
    """The checked images of a data set: samples (sorted by id), their given splits, classes, the fingerprint."""

    root: Path
    classes: tuple[str, ...]
    samples: list[DetectionSample]
    given_split: np.ndarray
    fingerprint: str
    problems: Problems
    notes: list[str] = field(default_factory=list)


def _clip(raw: RawImage, width: int, height: int, problems: Problems) -> DetectionSample | None:
    boxes = raw.boxes * np.array([width, height, width, height], np.float64) if raw.normalised else raw.boxes
    limit = np.array([width, height, width, height], np.float64)
    clipped = np.clip(boxes, 0, limit)
    moved = np.any(clipped != boxes, axis=1)
    empty = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    for _ in range(int((moved & ~empty).sum())):
        problems.warn("box clipped to its image", raw.source, "a box partly outside its image: clipped")
    for _ in range(int(empty.sum())):
        problems.warn("box without area (dropped)", raw.source, "a box with no area inside its image: dropped")
    keep = ~empty
    return DetectionSample("", raw.path, width, height, clipped[keep].astype(np.float32), raw.labels[keep],
                           raw.difficult[keep], raw.truncated[keep])


def build_samples(root: Path, raws: Sequence[RawImage], classes: Sequence[str], problems: Problems,
                  annotation_digest: bytes) -> BoxCollection:
    """Check ``raws`` (read their image headers, clip boxes, refuse duplicates) and make the collection.

    ``annotation_digest``: a digest of the annotation files' bytes, for the fingerprint (which also covers the class
    list and every image's relative path and byte size).
    """
    claimed: dict[Path, str] = {}
    kept: list[tuple[RawImage, DetectionSample, int]] = []
    for raw in raws:
        if raw.path in claimed:
            problems.error(raw.source, f"claims image {raw.path.relative_to(root).as_posix()}, which "
                                       f"{claimed[raw.path]} claims too; expected one annotation per image",
                           "two annotations for one image")
            continue
        claimed[raw.path] = raw.source
        try:
            st = regular_file(raw.path, "image file")
        except DataError as exc:
            problems.error(raw.source, f"its image {exc}", "missing image")
            continue
        try:
            width, height = image_size(raw.path)
        except DataError as exc:
            problems.warn("unreadable image (skipped)", raw.path, str(exc).partition(": ")[2] + ": skipped")
            continue
        if raw.stated_size is not None and tuple(raw.stated_size) != (width, height):
            problems.warn("stated size differs from the file (the file's is used)", raw.source,
                          f"states {raw.stated_size[0]}x{raw.stated_size[1]}, the image is {width}x{height}: the "
                          f"image's size is used")
        sample = _clip(raw, width, height, problems)
        if sample is not None:
            kept.append((raw, sample, st.st_size))
    classes = tuple(classes)
    ids = image_ids([raw.path for raw, _, _ in kept], root)
    order = np.argsort(np.array(ids, dtype=object), kind="stable") if ids else np.zeros(0, np.int64)
    h = hashlib.sha256(annotation_digest)
    h.update(("\0classes:" + "\0".join(classes)).encode())
    samples, given = [], []
    for i in order:
        raw, sample, nbytes = kept[int(i)]
        sample.image_id = ids[int(i)]
        samples.append(sample)
        given.append(raw.split)
        h.update(f"\0{ids[int(i)]}\0{raw.path.relative_to(root).as_posix()}\0{nbytes}".encode())
    return BoxCollection(root, classes, samples, np.array(given, dtype=object), h.hexdigest()[:16], problems)


class BoxDataset:
    """A :class:`BoxCollection` as a benchmark data set: splits, provenance, manifest, and ``load`` as a VOC folder.

    Args:
        data: the checked images.
        name: the data set's name in records (the folder's or file's name).
        fmt: the format (``"coco"``), recorded in ``options`` and the manifest.
        options: how the data set was read, recorded in ``DatasetInfo.options``.
        spec: the spec taken apart: its ``val_fraction`` and ``test_fraction`` (default :data:`VAL_FRACTION`,
            :data:`TEST_FRACTION`) are drawn where the format gave no split (:mod:`benchsuite.data.seeded_splits`).
        inspect: keep going past errors (``benchsuite data check``); else the first error raises.

    The origin is ``"synthetic"`` when the folder holds the synthetic generators' marker (:func:`origin_of`).
    """

    def __init__(self, data: BoxCollection, name: str, fmt: str, options: dict[str, Any], spec: SpecParts,
                 inspect: bool = False):
        val_fraction = spec.fraction("val_fraction", VAL_FRACTION)
        test_fraction = spec.fraction("test_fraction", TEST_FRACTION)
        self.data = data
        self.name = name
        self.format = fmt
        self.origin = origin_of(data.root)
        self.problems = data.problems
        self.folder = data.root
        self.splits: dict[str, np.ndarray] = {}
        split_notes: list[str] = []
        if not data.samples and not data.problems.errors:
            data.problems.error(data.root, "no readable image; expected annotated images", "no images")
        if data.samples:
            strata = DetectionSet(data.samples, data.classes).stratification_labels()
            try:
                self.splits, split_notes = resolve_splits(strata, data.given_split, val_fraction, test_fraction,
                                                          str(data.root))
            except DataError as exc:
                data.problems.add_error(exc)
        if not inspect:
            data.problems.raise_errors()
        self.options = {"format": fmt, **options, "val_fraction": val_fraction, "test_fraction": test_fraction}
        self.info = self._describe(split_notes)

    def split_ids(self, split: str) -> list[str]:
        return [self.data.samples[i].image_id for i in split_indices(self.splits, split, self.name)]

    def _describe(self, split_notes: list[str]) -> DatasetInfo:
        d = self.data
        n_obj = sum(len(s) for s in d.samples)
        n_diff = sum(int(s.difficult.sum()) for s in d.samples)
        n = len(d.classes)
        notes = [*split_notes, *d.notes, f"{len(d.samples)} images, {n_obj} objects ({n_diff} difficult or crowd)",
                 *d.problems.notes()]
        return DatasetInfo(
            name=self.name, annotations=[BOXES], origin=self.origin, canonical=None, fingerprint=d.fingerprint,
            root=str(d.root), classes=list(d.classes), split_counts={s: len(v) for s, v in self.splits.items()},
            split_fingerprints={s: _split_fingerprint(d.fingerprint, s, self.split_ids(s)) for s in self.splits},
            description=f"{self.format} data set {self.name} ({n} class{'es' if n != 1 else ''})",
            notes=notes, options=self.options)

    def load(self, split: str, max_images: int | None = None) -> DetectionSet:
        """One split as a DetectionSet (pixels decoded on demand); ``max_images`` takes a fixed subset, stratified
        by each image's rarest class with ``SUBSET_SEED`` (as a VOC folder's)."""
        ds = DetectionSet([self.data.samples[i] for i in split_indices(self.splits, split, self.name)],
                          self.data.classes, f"{self.name}/{split}")
        if max_images is not None and max_images < len(ds):
            ds = ds.subset(stratified_choice(ds.stratification_labels(), max(0, max_images), SUBSET_SEED))
        return ds

    def manifest(self) -> dict[str, Any]:
        return split_manifest(self.info, self.origin, {s: self.split_ids(s) for s in self.splits}, SUBSET_SEED,
                              format=self.format, options=self.options)

    def write_manifest(self, folder: Path) -> Path:
        """Write ``<folder>/<name>.split.json`` (image ids per split, fingerprints, options), atomically."""
        path = Path(folder) / f"{self.name}.split.json"
        atomic_write_json(path, self.manifest())
        return path
