"""Data set specs, resolved to real data under the data root or to the embedded synthetic stand-ins.

A spec is a short string: ``cifar10``, ``voc2007``, ``voc2012``, ``voc:/path/to/folder``, ``synthetic-voc`` or
``synthetic-voc:VARIANT`` (a data-shape variant of the synthetic VOC set: ``crop``, ``tiny``, ``crowd``, ``wide``,
``grey``). Every opened data set carries a :class:`DatasetInfo` with its provenance (real or synthetic, canonical
or not, content fingerprint, split sizes and fingerprints), which the runner writes to ``run.json`` and every
record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchsuite.data import cifar10, synthetic_cifar
from benchsuite.data.images import ImageSet
from benchsuite.data.splits import SplitManifest, make_train_val_split, stratified_choice
from benchsuite.errors import ConfigError, DataError
from benchsuite.tasks.registry import tasks_of_kind

log = logging.getLogger(__name__)

SUBSET_SEED = 11  # the seed of profile caps: every pipeline sees the same capped subset


@dataclass
class DatasetInfo:
    """Provenance of one opened data set (JSON-serialisable through ``asdict``)."""

    name: str
    kind: str  # "classification" | "detection"
    origin: str  # "real" | "synthetic"
    canonical: bool | None  # None where no canonical checksum exists
    fingerprint: str
    root: str
    classes: list[str]
    split_counts: dict[str, int]
    split_fingerprints: dict[str, str]
    description: str
    notes: list[str] = field(default_factory=list)

    @property
    def split_fingerprint(self) -> str:
        return "-".join(self.split_fingerprints[k] for k in sorted(self.split_fingerprints))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(tasks_of_kind(self.kind))  # the registered tasks that run on this kind
        return d


class Dataset(Protocol):
    info: DatasetInfo

    def load(self, split: str, max_images: int | None = None) -> Any: ...

    def write_manifest(self, folder: Path) -> Path: ...


class Cifar10Dataset:
    """CIFAR-10 (real or synthetic stand-in) with the shared train 90% / val 10% / official test split."""

    VAL_FRACTION = 0.1

    def __init__(self, folder: Path, origin: str, name: str = "cifar10"):
        self.folder = Path(folder)
        self.origin = origin
        self.name = name
        self._arrays = cifar10.read_cifar10(self.folder)
        a = self._arrays
        val_count = round(len(a.train_labels) * self.VAL_FRACTION)
        self.manifest: SplitManifest = make_train_val_split(
            name, a.fingerprint, a.train_labels, val_count, len(a.test_labels))
        self.info = self._describe()

    def _describe(self) -> DatasetInfo:
        a = self._arrays
        m = self.manifest
        notes = []
        if self.origin == "synthetic":
            description = ("synthetic CIFAR-10 stand-in (generated shapes, not real images): "
                           "numbers are not comparable with published CIFAR-10 results")
        elif a.canonical:
            description = "CIFAR-10, canonical release (md5 sums match)"
        else:
            description = "CIFAR-10, real images, not the canonical release (md5 sums differ)"
            differ = [n for n, d in cifar10.CANONICAL_MD5.items() if a.md5.get(n) != d]
            notes.append(f"md5 differs from the canonical release for {', '.join(differ)}")
            notes.append("md5 differs from the canonical files: a re-encoded copy (for example "
                         "JPEG-derived), so accuracies can differ slightly from published ones")
        return DatasetInfo(
            name=self.name,
            kind="classification",
            origin=self.origin,
            canonical=a.canonical if self.origin == "real" else False,
            fingerprint=a.fingerprint,
            root=str(self.folder),
            classes=list(a.classes),
            split_counts={"train": len(m.train), "val": len(m.val), "test": m.test_count},
            split_fingerprints=m.fingerprints,
            description=description,
            notes=notes,
        )

    def load(self, split: str, max_images: int | None = None) -> ImageSet:
        """One split as an ImageSet; ``max_images`` takes a fixed stratified subset."""
        a = self._arrays
        if split == "train":
            images, labels = a.train_images[self.manifest.train], a.train_labels[self.manifest.train]
        elif split == "val":
            images, labels = a.train_images[self.manifest.val], a.train_labels[self.manifest.val]
        elif split == "test":
            images, labels = a.test_images, a.test_labels
        elif split == "trainval":
            images, labels = a.train_images, a.train_labels
        else:
            raise ConfigError(f"unknown split {split!r} for {self.name}; expected train, val, test or trainval")
        if max_images is not None and max_images < len(labels):
            keep = stratified_choice(labels, max_images, SUBSET_SEED)
            images, labels = images[keep], labels[keep]
        return ImageSet(np.ascontiguousarray(images), labels, a.classes, f"{self.name}/{split}")

    def write_manifest(self, folder: Path) -> Path:
        path = Path(folder) / f"{self.name}.split.json"
        self.manifest.write(path)
        return path


@dataclass(frozen=True)
class OpenRequest:
    """What an opener needs: where real data lives and what the user allows."""

    spec: str
    data_root: Path
    cache_dir: Path
    force_synthetic: bool = False
    download: bool = False


Opener = Callable[[OpenRequest], Dataset]
_OPENERS: dict[str, tuple[str, Opener]] = {}


def register_opener(prefix: str, kind: str) -> Callable[[Opener], Opener]:
    """Register a function that opens specs equal to ``prefix`` or starting with ``prefix + ':'``.

    ``kind`` is the kind of data set (``"classification"``, ``"detection"``, or a plugin task's own): the tasks
    whose ``dataset_kind`` it is run on it (:func:`benchsuite.tasks.registry.tasks_of_kind`).
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"unknown data set kind {kind!r}")

    def deco(fn: Opener) -> Opener:
        _OPENERS[prefix] = (kind, fn)
        return fn

    return deco


@register_opener("cifar10", "classification")
def open_cifar10(req: OpenRequest) -> Cifar10Dataset:
    folder = req.data_root / cifar10.FOLDER
    if req.force_synthetic:
        return Cifar10Dataset(synthetic_cifar.ensure_synthetic_cifar10(req.cache_dir), "synthetic")
    if not cifar10.has_cifar10(folder) and req.download:
        cifar10.download_cifar10(req.data_root)
    if cifar10.has_cifar10(folder):
        return Cifar10Dataset(folder, "real")
    log.warning("no CIFAR-10 under %s (expected %s/); running on the synthetic stand-in",
                req.data_root, cifar10.FOLDER)
    return Cifar10Dataset(synthetic_cifar.ensure_synthetic_cifar10(req.cache_dir), "synthetic")


def _load_openers() -> None:
    # detection data sets register their openers on import
    import importlib

    for module in ("benchsuite.data.voc",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _lookup(spec: str) -> tuple[str, Opener]:
    _load_openers()
    entry = _OPENERS.get(spec) or _OPENERS.get(spec.split(":", 1)[0])
    if entry is None:
        known = ", ".join(sorted(k if k != "voc" else "voc:PATH" for k in _OPENERS))
        raise ConfigError(f"unknown data set {spec!r}; expected one of: {known}")
    return entry


def kind_of_spec(spec: str) -> str:
    """``"classification"`` or ``"detection"`` for a data set spec (unknown specs are a ConfigError)."""
    return _lookup(spec)[0]


def open_dataset(spec: str, data_root: Path, cache_dir: Path, force_synthetic: bool = False,
                 download: bool = False) -> Dataset:
    """Open the data set named by ``spec``; unknown specs and unreadable data are one-line errors."""
    _, opener = _lookup(spec)
    return opener(OpenRequest(spec, Path(data_root), Path(cache_dir), force_synthetic, download))


def check_data_root(data_root: Path, explicit: bool) -> None:
    """An explicitly given data root must exist; the default one may be absent (synthetic data)."""
    if explicit and not Path(data_root).is_dir():
        raise DataError(f"data root {data_root} does not exist; expected a folder holding "
                        f"{cifar10.FOLDER}/ and/or VOCdevkit/")
