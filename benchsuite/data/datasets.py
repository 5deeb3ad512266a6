"""Data set specs and formats: a spec names a data set; a format opens the specs of its prefix.

A spec is a short string: ``cifar10``, ``voc2007``, ``voc2012``, ``voc:/path/to/folder``, ``synthetic-voc`` or
``synthetic-voc:VARIANT`` (a data-shape variant of the synthetic VOC set: ``crop``, ``tiny``, ``crowd``, ``wide``,
``grey``). The part before the first ``:`` is the format's prefix. Formats are plugins, found through the
``benchsuite.datasets`` entry-point group exactly as pipelines and tasks are (the suite's own are registered in its
``pyproject.toml``): the planner and the worker both look a spec up there, so a format that a third-party
distribution installs opens in every process.

A format says which **annotations** its data sets provide (:data:`IMAGE_LABELS`, :data:`BOXES`, :data:`MASKS`, or
a plugin's own), and a task says which it needs (:attr:`benchsuite.tasks.base.Task.needs`): a task runs on a data
set that provides everything it needs. The opener is told what the task needs (:attr:`OpenRequest.needs`), so one
spec may open a different reader for each kind of annotation (a VOC folder's boxes and its masks); the runner keeps
one opened data set per spec and needs (:func:`dataset_key`). Every opened data set carries a :class:`DatasetInfo` with
its provenance (real or synthetic, canonical or not, content fingerprint, split sizes and fingerprints,
annotations), which the runner writes to ``run.json`` and every record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchsuite.data import cifar10, synthetic_cifar
from benchsuite.data.images import ImageSet
from benchsuite.data.splits import SplitManifest, make_train_val_split, stratified_choice
from benchsuite.errors import ConfigError, DataError
from benchsuite.plugins import PluginGroup, PluginProblem

log = logging.getLogger(__name__)

SUBSET_SEED = 11  # the seed of profile caps: every pipeline sees the same capped subset

#: the annotations a data set may provide (a format may add its own names)
IMAGE_LABELS = "image-labels"  # one class label per image
BOXES = "boxes"  # labelled boxes per object (with difficult and truncated flags)
MASKS = "masks"  # per-pixel class labels (VOC's SegmentationClass/)


@dataclass
class DatasetInfo:
    """Provenance of one opened data set (JSON-serialisable through ``asdict``).

    ``annotations`` lists what the data set provides (:data:`IMAGE_LABELS`, :data:`BOXES`, :data:`MASKS`, ...):
    the tasks that need no more than that run on it. ``derived_from`` is set on a study's derived data set
    (:mod:`benchsuite.studies.derived`): the base data set's name, fingerprint and description, the axis, the
    points and the seed.
    """

    name: str
    annotations: list[str]
    origin: str  # "real" | "synthetic"
    canonical: bool | None  # None where no canonical checksum exists
    fingerprint: str
    root: str
    classes: list[str]
    split_counts: dict[str, int]
    split_fingerprints: dict[str, str]
    description: str
    notes: list[str] = field(default_factory=list)
    derived_from: dict[str, Any] | None = None
    #: how the data set was read, where a format has choices (the image size a pipeline sees, split fractions)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def split_fingerprint(self) -> str:
        return "-".join(self.split_fingerprints[k] for k in sorted(self.split_fingerprints))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            annotations=[IMAGE_LABELS],
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
    """What an opener needs: where real data lives, what the user allows, and ``needs``: the annotations the task
    that will read the data set needs (empty: the format's default). A format whose folders hold several kinds of
    annotation, each with its own reader, splits and fingerprint (a VOC folder: boxes from ``Annotations/`` and
    ``ImageSets/Main/``, masks from ``SegmentationClass/`` and ``ImageSets/Segmentation/``), opens the reader of
    ``needs``; the runner opens a spec once per distinct ``needs`` (:func:`dataset_key`)."""

    spec: str
    data_root: Path
    cache_dir: Path
    force_synthetic: bool = False
    download: bool = False
    needs: frozenset[str] = frozenset()
    #: open for inspection (``benchsuite data check``): a format that can collects every problem in the data set's
    #: ``problems`` (:class:`benchsuite.data.problems.Problems`) instead of raising at the first one
    inspect: bool = False


Opener = Callable[[OpenRequest], Dataset]


@dataclass(frozen=True)
class DatasetFormat:
    """One data-set format: the specs it opens, how, and the annotations its data sets provide.

    Attributes:
        prefix: the specs it opens: ``prefix`` itself or ``prefix:ARGUMENT`` (its entry point's name).
        opener: opens a spec (:class:`OpenRequest`) as a :class:`Dataset`; unreadable data is a one-line
            :class:`~benchsuite.errors.DataError`.
        provides: the annotations every data set of the format provides (may be empty when ``probe`` says).
        probe: the further annotations a particular data set provides, found without opening it (a VOC folder
            with ``SegmentationClass/`` also provides :data:`MASKS`); None: ``provides`` only. The opener is then
            asked for the annotations a task needs (:attr:`OpenRequest.needs`) and opens the reader that serves them.
        usage: how its specs are written, for messages (``"voc:PATH"``; default the prefix).
    """

    prefix: str
    opener: Opener
    provides: frozenset[str]
    probe: Callable[[OpenRequest], Iterable[str]] | None = None
    usage: str = ""

    def __call__(self, req: OpenRequest) -> Dataset:
        return self.opener(req)

    def annotations(self, req: OpenRequest) -> frozenset[str]:
        """What the data set ``req`` names provides."""
        return self.provides | frozenset(self.probe(req) if self.probe is not None else ())


def dataset_format(prefix: str, provides: Iterable[str], *, probe: Callable[[OpenRequest], Iterable[str]] | None = None,
                   usage: str = "") -> Callable[[Opener], DatasetFormat]:
    """Make the decorated opener a :class:`DatasetFormat` for specs ``prefix`` and ``prefix:...``.

    Register the result under ``prefix`` in the ``benchsuite.datasets`` entry-point group::

        @dataset_format("myset", provides=[BOXES])
        def open_myset(req: OpenRequest) -> Dataset: ...

        [project.entry-points."benchsuite.datasets"]
        myset = "mypkg.myset:open_myset"
    """
    annotations = frozenset(provides)
    if (not prefix or ":" in prefix or not (annotations or probe is not None)
            or not all(isinstance(a, str) and a for a in annotations)):
        raise ValueError(f"data set format {prefix!r}: expected a prefix without ':' and the annotations it "
                         f"provides (or a probe that says), got {sorted(annotations)!r}")

    def deco(fn: Opener) -> DatasetFormat:
        return DatasetFormat(prefix, fn, annotations, probe, usage or prefix)

    return deco


def _check_format(name: str, loaded: Any) -> DatasetFormat:
    if not isinstance(loaded, DatasetFormat):
        raise PluginProblem(f"{type(loaded).__name__} {loaded!r:.60} is not a data set format (decorate its opener "
                            f"with benchsuite.data.datasets.dataset_format)")
    if loaded.prefix != name:
        raise PluginProblem(f"entry point name {name!r} differs from the format's prefix {loaded.prefix!r}")
    return loaded


#: the ``benchsuite.datasets`` entry points, by spec prefix
FORMATS: PluginGroup[DatasetFormat] = PluginGroup("benchsuite.datasets", "data set", _check_format)


@dataset_format("cifar10", provides=[IMAGE_LABELS])
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


def format_of_spec(spec: str) -> DatasetFormat:
    """The format that opens ``spec``; an unknown spec, or one of a broken format plugin, is a ConfigError."""
    prefix = spec.split(":", 1)[0]
    entries = FORMATS.discover()
    entry = entries.get(spec) or entries.get(prefix)
    if entry is None:
        raise FORMATS.unknown(spec, sorted(e.obj.usage for e in entries.values() if e.ok))
    if not entry.ok:
        raise FORMATS.unusable(entry)
    return entry.obj  # type: ignore[return-value]


def spec_annotations(spec: str, data_root: Path | None = None, cache_dir: Path | None = None,
                     force_synthetic: bool = False) -> frozenset[str]:
    """The annotations the data set ``spec`` provides (without opening it): what tasks it can serve."""
    req = OpenRequest(spec, Path(data_root or "."), Path(cache_dir or "."), force_synthetic)
    return format_of_spec(spec).annotations(req)


def open_dataset(spec: str, data_root: Path, cache_dir: Path, force_synthetic: bool = False,
                 download: bool = False, needs: Iterable[str] = ()) -> Dataset:
    """Open the data set named by ``spec`` for a task that needs the annotations ``needs`` (see
    :class:`OpenRequest`); unknown specs and unreadable data are one-line errors."""
    return format_of_spec(spec)(OpenRequest(spec, Path(data_root), Path(cache_dir), force_synthetic, download,
                                            frozenset(needs)))


def dataset_key(spec: str, needs: Iterable[str] = ()) -> str:
    """The key of the data set ``spec`` opened for a task that needs ``needs``: tasks with the same needs share one
    opened data set, tasks with other needs get their own (a VOC folder's masks are another reader's)."""
    wanted = sorted(set(needs))
    return f"{spec} [{','.join(wanted)}]" if wanted else spec


def check_data_root(data_root: Path, explicit: bool) -> None:
    """An explicitly given data root must exist; the default one may be absent (synthetic data)."""
    if explicit and not Path(data_root).is_dir():
        raise DataError(f"data root {data_root} does not exist; expected a folder holding "
                        f"{cifar10.FOLDER}/ and/or VOCdevkit/")
