"""Pascal VOC layout detection data: the reader, the split logic and the data set openers.

The layout (VOC2007, VOC2012 and any folder in the same format, e.g. Penn-Fudan converted to VOC)::

    <folder>/JPEGImages/<id>.jpg        (PNG and other formats Pillow reads are accepted too)
    <folder>/Annotations/<id>.xml       <size>, and one <object> per box: <name>, <difficult>,
                                        <truncated>, <bndbox> with 1-based inclusive xmin..xmax, ymin..ymax
    <folder>/ImageSets/Main/{train,val,trainval,test}.txt   one image id per line

Coordinates become the suite's ``x1, y1, x2, y2`` pixel-edge boxes as ``x1 = xmin - 1, y1 = ymin - 1,
x2 = xmax, y2 = ymax``, so an IoU computed without "+1" equals the VOC devkit's IoU computed with it.

Problems with the folder as a whole (a missing sub-folder or split file, no test split, no readable
image in a split) are a :class:`~benchsuite.errors.DataError` with one line naming the path. Problems
with single images are counted, logged as one warning per kind and listed in ``DatasetInfo.notes``
with a few example files; they never pass silently and never crash a run later:

=========================================  ====================================================
problem                                    what happens
=========================================  ====================================================
annotation XML missing                     the image is skipped
annotation XML malformed (unparseable, an  the image is skipped (keeping it with objects missing
object without a name or numeric bndbox)   would turn real objects into false positives)
image file missing                         the image is skipped
image file unreadable (header)             the image is skipped
``<size>`` missing or not the file's size  the file's real size is used
box outside the image                      the box is clipped to the image
zero or negative area after clipping       the box is dropped
class name not in a given class list       the object is dropped (canonical VOC classes, or an
                                           explicit ``classes`` argument)
=========================================  ====================================================

A file that passes the header check but cannot be decoded later is a DataError naming it, raised by
:meth:`DetectionSet.load_image`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import BOXES, SUBSET_SEED, DatasetInfo, OpenRequest
from benchsuite.data.detection import DetectionSample, DetectionSet, image_size
from benchsuite.data.splits import SPLIT_SEED, stratified_choice
from benchsuite.data.voc_splits import (  # noqa: F401  (VAL_FRACTION: the split rule's, named here too)
    VAL_FRACTION,
    official_sizes,
    resolve_voc_splits,
    split_indices,
    split_manifest,
)
from benchsuite.errors import ConfigError, DataError
from benchsuite.results.atomic import atomic_write_json
from benchsuite.results.safe_paths import read_limited, special_kind

log = logging.getLogger(__name__)

#: the 20 Pascal VOC classes in the canonical (devkit) order
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
SPLITS = ("train", "val", "trainval", "test")
#: image counts of ImageSets/Main in the official releases (the basis of ``DatasetInfo.canonical``)
OFFICIAL_COUNTS = {
    "voc2007": {"train": 2501, "val": 2510, "trainval": 5011, "test": 4952},
    "voc2012": {"train": 5717, "val": 5823, "trainval": 11540},
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".tif", ".tiff", ".webp")
LAYOUT = "a Pascal VOC layout folder with JPEGImages/, Annotations/ and ImageSets/Main/"

# per-image problem kinds -> (what happened, unit) in notes; the order is the order of the notes
PROBLEMS = {
    "missing annotation": "image(s) skipped: annotation XML missing",
    "malformed annotation": "image(s) skipped: annotation XML malformed",
    "missing image": "image(s) skipped: image file missing",
    "unreadable image": "image(s) skipped: image file unreadable",
    "size mismatch": "image(s) whose <size> is missing or differs from the file: the file's size is used",
    "box outside image": "box(es) outside the image: clipped",
    "degenerate box": "box(es) with zero or negative area after clipping: dropped",
    "unknown class": "object(s) of a class not in the class list: dropped",
}
MAX_EXAMPLES = 3
#: the largest annotation XML and split list read (refused before reading: a VOC annotation is a few kilobytes)
MAX_ANNOTATION_BYTES = 16 * 2**20
MAX_LIST_BYTES = 256 * 2**20
#: the longest class name accepted (file names, report cells and plots are built from class names)
MAX_CLASS_NAME = 200


@dataclass
class ProblemLog:
    """Counts of per-image problems by kind, with the first few files of each kind as examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # the first example's reason, by kind

    def add(self, kind: str, file: str, n: int = 1, reason: str | None = None) -> None:
        if kind not in PROBLEMS:
            raise ValueError(f"unknown problem kind {kind!r}")
        self.counts[kind] = self.counts.get(kind, 0) + n
        ex = self.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES and file not in ex:
            ex.append(file)
        if reason and kind not in self.reasons:
            self.reasons[kind] = f"{file}: {reason}"

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self) -> list[str]:
        """One line per kind that occurred, e.g. ``"3 box(es) outside the image: clipped (e.g. a.xml, b.xml)"``."""
        out = []
        for kind, text in PROBLEMS.items():
            if self.counts.get(kind):
                more = ", ..." if self.counts[kind] > len(self.examples[kind]) else ""
                why = f": {self.reasons[kind]}" if kind in self.reasons else ""
                out.append(f"{self.counts[kind]} {text} (e.g. {', '.join(self.examples[kind])}{more}){why}")
        return out


@dataclass
class VocFolder:
    """What :func:`read_voc` found in a folder.

    Attributes:
        folder: the VOC folder.
        classes: class names; sample labels index them.
        samples: every readable image listed in any ImageSets/Main split file, sorted by id.
        image_sets: split name -> ``(n,)`` int64 indices into ``samples`` in file order, for each of
            ``train``, ``val``, ``trainval``, ``test`` whose file exists (skipped images left out).
        listed: split name -> number of ids the split file lists (before skipping).
        problems: the per-image problems met.
        fingerprint: 16 hex digits of sha256 over the class list, the annotation XML bytes, and the
            image file names and byte sizes (not the image bytes: cheap to recompute).
        synthetic: True when the folder holds the synthetic generator's marker file.
    """

    folder: Path
    classes: tuple[str, ...]
    samples: list[DetectionSample]
    image_sets: dict[str, np.ndarray]
    listed: dict[str, int]
    problems: ProblemLog
    fingerprint: str
    synthetic: bool = False


@dataclass
class _RawObject:
    name: str
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax as written (1-based inclusive)
    difficult: bool
    truncated: bool


@dataclass
class _RawAnnotation:
    image_id: str
    filename: str | None
    size: tuple[int, int] | None  # (width, height) from <size>
    objects: list[_RawObject]


class _Malformed(Exception):
    pass


def _text(el: ET.Element, tag: str) -> str | None:
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    text = child.text.strip()
    return text or None


def _flag(el: ET.Element, tag: str) -> bool:
    """A 0/1 flag (``<difficult>``, ``<truncated>``): a number (non-zero is set) or true/yes/false/no; anything
    else, a non-finite number included, is malformed."""
    text = _text(el, tag)
    if text is None:
        return False
    if text.lower() in ("true", "yes", "false", "no"):
        return text.lower() in ("true", "yes")
    try:
        value = float(text)
    except ValueError:
        raise _Malformed(f"<{tag}> is {text[:40]!r}, expected 0 or 1") from None
    if not np.isfinite(value):
        raise _Malformed(f"<{tag}> is {text[:40]!r}, expected 0 or 1")
    return value != 0


def _number(el: ET.Element, tag: str) -> float:
    text = _text(el, tag)
    if text is None:
        raise _Malformed(f"<{tag}> missing")
    try:
        value = float(text)
    except ValueError:
        raise _Malformed(f"<{tag}> is {text[:40]!r}, not a number") from None
    if not np.isfinite(value):
        raise _Malformed(f"<{tag}> is {text[:40]!r}, not a finite number")
    return value


def parse_annotation(data: bytes, image_id: str) -> _RawAnnotation:
    """Parse one VOC annotation; raises ``_Malformed`` with the reason."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise _Malformed(f"not well-formed XML ({exc})") from None
    if root.tag != "annotation":
        raise _Malformed(f"root element <{root.tag}>, expected <annotation>")
    size = None
    size_el = root.find("size")
    if size_el is not None:
        try:
            w, h = int(_number(size_el, "width")), int(_number(size_el, "height"))
            size = (w, h) if 0 < w < 2**31 and 0 < h < 2**31 else None
        except _Malformed:
            size = None
    objects = []
    for i, obj in enumerate(root.iter("object")):
        name = _text(obj, "name")
        if name is None:
            raise _Malformed(f"<object> {i + 1} has no <name>")
        if len(name) > MAX_CLASS_NAME or any(ord(c) < 32 for c in name):
            raise _Malformed(f"<object> {i + 1} has a <name> of {len(name)} characters or with control characters; "
                             f"expected a class name of at most {MAX_CLASS_NAME} printable characters")
        bb = obj.find("bndbox")
        if bb is None:
            raise _Malformed(f"<object> {i + 1} ({name}) has no <bndbox>")
        box = (_number(bb, "xmin"), _number(bb, "ymin"), _number(bb, "xmax"), _number(bb, "ymax"))
        objects.append(_RawObject(name, box, _flag(obj, "difficult"), _flag(obj, "truncated")))
    filename = _text(root, "filename")
    return _RawAnnotation(image_id, Path(filename).name if filename else None, size, objects)


def _read_image_set(path: Path) -> list[str]:
    """Ids of one ImageSets file (first token of each non-empty line, duplicates removed, order kept)."""
    try:
        lines = read_limited(path, MAX_LIST_BYTES, "split list").decode("utf-8", "replace").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc}); expected one image id per line") from None
    ids = [line.split()[0] for line in lines if line.strip()]
    for number, line in enumerate(lines, 1):
        image_id = line.split()[0] if line.strip() else ""
        if image_id and (image_id in (".", "..") or any(c in image_id for c in "/\\\0")):
            raise DataError(f"{path}:{number}: image id {image_id!r} is a path, which could reach outside the "
                            f"data set folder; expected a plain id such as 2008_000001")
    if not ids:
        raise DataError(f"{path}: empty; expected one image id per line")
    return list(dict.fromkeys(ids))


def _find_image(images: Path, ann: _RawAnnotation) -> Path | None:
    """The image file of ``ann`` (its ``<filename>``, else ``<id>.<suffix>``), None when there is none; a special
    file (a FIFO, a device) in its place is a DataError naming it (opening it could block the run)."""
    candidates = [images / ann.filename] if ann.filename else []
    candidates += [images / f"{ann.image_id}{suffix}" for suffix in IMAGE_SUFFIXES]
    for path in candidates:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        kind = special_kind(mode)
        if kind is None:
            return path
        if kind != "a folder":
            raise DataError(f"{path}: is {kind}, not a regular file; refused (reading it could block the run); "
                            f"expected an image file")
    return None


def _check_layout(folder: Path) -> Path:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected {LAYOUT}")
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        if not (folder / sub).is_dir():
            raise DataError(f"{folder / sub}: missing; expected {LAYOUT}")
    main = folder / "ImageSets" / "Main"
    if not any(os.path.lexists(main / f"{s}.txt") for s in SPLITS):
        raise DataError(f"{main}: no split file; expected at least test.txt and train.txt, val.txt or "
                        f"trainval.txt (one image id per line)")
    return main


def read_voc(folder: Path, classes: Sequence[str] | None = None) -> VocFolder:
    """Read a Pascal VOC layout folder.

    ``classes``: the class list (the labels index it); objects of other classes are dropped and
    counted. ``None``: the sorted unique object names of the annotations. Every image listed in any of
    ``ImageSets/Main/{train,val,trainval,test}.txt`` is read; see the module docstring for what happens
    to bad images and boxes. Raises :class:`DataError` for folder-level problems.
    """
    folder = Path(folder)
    main = _check_layout(folder)
    # every split file there is read (a special file in its place is refused, never skipped or blocked on)
    image_sets_ids = {s: _read_image_set(main / f"{s}.txt") for s in SPLITS if os.path.lexists(main / f"{s}.txt")}
    all_ids = sorted(set().union(*image_sets_ids.values()))
    problems = ProblemLog()
    h = hashlib.sha256()
    parsed: list[tuple[_RawAnnotation, Path, int, int]] = []
    images = folder / "JPEGImages"
    for image_id in all_ids:
        xml_path = folder / "Annotations" / f"{image_id}.xml"
        h.update(f"\0id:{image_id}\0".encode())
        try:
            data = read_limited(xml_path, MAX_ANNOTATION_BYTES, "annotation XML")
        except FileNotFoundError:
            problems.add("missing annotation", xml_path.name)
            h.update(b"no-xml")
            continue
        except OSError as exc:
            raise DataError(f"{xml_path}: unreadable ({exc})") from None
        h.update(hashlib.sha256(data).digest())
        try:
            ann = parse_annotation(data, image_id)
        except _Malformed as exc:
            log.debug("%s: %s", xml_path, exc)
            problems.add("malformed annotation", xml_path.name, reason=str(exc))
            continue
        path = _find_image(images, ann)
        if path is None:
            problems.add("missing image", ann.filename or f"{image_id}.jpg")
            h.update(b"no-image")
            continue
        h.update(f"{path.name}:{path.stat().st_size}".encode())
        try:
            width, height = image_size(path)
        except DataError as exc:
            log.debug("%s", exc)
            problems.add("unreadable image", path.name)
            continue
        if ann.size != (width, height):
            problems.add("size mismatch", xml_path.name)
        parsed.append((ann, path, width, height))
    if classes is None:
        classes = tuple(sorted({o.name for ann, *_ in parsed for o in ann.objects}))
        if not classes:
            raise DataError(f"{folder / 'Annotations'}: no <object> in any readable annotation; expected at "
                            f"least one object to define the class list")
    classes = tuple(classes)
    h.update(("\0classes:" + "\0".join(classes)).encode())
    samples = [_to_sample(ann, path, w, h_, classes, problems) for ann, path, w, h_ in parsed]
    position = {s.image_id: i for i, s in enumerate(samples)}
    image_sets = {s: np.array([position[i] for i in ids if i in position], dtype=np.int64)
                  for s, ids in image_sets_ids.items()}
    for line in problems.lines():
        log.warning("%s: %s", folder, line)
    return VocFolder(folder, classes, samples, image_sets, {s: len(v) for s, v in image_sets_ids.items()},
                     problems, h.hexdigest()[:16], (folder / synthetic_voc.MARKER).is_file())


def _to_sample(ann: _RawAnnotation, path: Path, width: int, height: int, classes: tuple[str, ...],
               problems: ProblemLog) -> DetectionSample:
    index = {c: k for k, c in enumerate(classes)}
    xml_name = f"{ann.image_id}.xml"
    boxes, labels, difficult, truncated = [], [], [], []
    for obj in ann.objects:
        k = index.get(obj.name)
        if k is None:
            problems.add("unknown class", xml_name)
            continue
        xmin, ymin, xmax, ymax = obj.box
        box = np.array([xmin - 1, ymin - 1, xmax, ymax], dtype=np.float64)
        clipped = np.clip(box, 0, [width, height, width, height])
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            problems.add("degenerate box", xml_name)
            continue
        if not np.array_equal(clipped, box):
            problems.add("box outside image", xml_name)
        boxes.append(clipped)
        labels.append(k)
        difficult.append(obj.difficult)
        truncated.append(obj.truncated)
    if not boxes:
        return DetectionSample.empty(ann.image_id, path, width, height)
    return DetectionSample(ann.image_id, path, width, height, np.array(boxes, np.float32),
                           np.array(labels, np.int64), np.array(difficult, bool), np.array(truncated, bool))


def _split_fingerprint(dataset_fingerprint: str, split: str, ids: Sequence[str]) -> str:
    h = hashlib.sha256(f"{dataset_fingerprint}\0{split}\0".encode())
    h.update("\n".join(ids).encode())
    return h.hexdigest()[:16]


def safe_name(text: str) -> str:
    """A file-system safe, stable data set name from a folder name (``"Penn Fudan"`` -> ``"Penn_Fudan"``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "voc"


class VocDataset:
    """A VOC layout folder as a benchmark data set with fixed train / val / trainval / test splits.

    Splits are the folder's own ImageSets/Main files. Without ``val.txt``, val is a fixed stratified
    ``VAL_FRACTION`` of ``trainval`` (or ``train``) drawn with ``SPLIT_SEED`` and train is the rest.
    Without ``test.txt`` the folder is a DataError, except with ``test_from_val`` (VOC2012, whose test
    annotations are not public): then the official val split is scored as ``test`` and train / val
    are drawn from the official train split.

    ``canonical``: ``None`` for arbitrary folders (there is no reference checksum); for ``voc2007`` and
    ``voc2012`` (``official`` given) True when the readable images of each official split file number
    exactly as in the official release, a count check rather than a checksum; False for synthetic data.
    """

    def __init__(self, folder: Path, name: str, origin: str | None = None, classes: Sequence[str] | None = None,
                 test_from_val: bool = False, official: str | None = None, description: str | None = None):
        self.folder = Path(folder)
        self.name = name
        self.data = read_voc(self.folder, classes)
        self.origin = origin or ("synthetic" if self.data.synthetic else "real")
        self.official = official
        self._split_notes: list[str] = []
        self.splits = self._resolve_splits(test_from_val)
        self.info = self._describe(description)

    # ------------------------------------------------------------------ splits
    def _stratified_val(self, pool: np.ndarray, count: int) -> np.ndarray:
        """``count`` positions of ``pool`` (image indices) as val: stratified by each image's rarest class, drawn
        with ``SPLIT_SEED``."""
        labels = DetectionSet([self.data.samples[i] for i in pool], self.data.classes).stratification_labels()
        return stratified_choice(labels, count, SPLIT_SEED)

    def _resolve_splits(self, test_from_val: bool) -> dict[str, np.ndarray]:
        """The split rules every VOC-layout reader shares (:func:`benchsuite.data.voc_splits.resolve_voc_splits`),
        on ``ImageSets/Main``, val drawn stratified where the folder has none."""
        resolved = resolve_voc_splits(self.data.image_sets, self.folder / "ImageSets" / "Main",
                                      [s.image_id for s in self.data.samples], self._stratified_val, "stratified",
                                      test_from_val)
        self._split_notes += resolved.notes
        return resolved.splits

    # ------------------------------------------------------------------ provenance
    def split_ids(self, split: str) -> list[str]:
        return [self.data.samples[i].image_id for i in self._indices(split)]

    def _canonical(self) -> bool | None:
        return official_sizes(self.origin, OFFICIAL_COUNTS.get(self.official or ""), self.data.image_sets)

    def _describe(self, description: str | None) -> DatasetInfo:
        d = self.data
        canonical = self._canonical()
        n_obj = sum(len(s) for s in d.samples)
        n_diff = sum(int(s.difficult.sum()) for s in d.samples)
        notes = list(self._split_notes)
        if description is None:
            if self.origin == "synthetic":
                description = ("synthetic VOC-layout stand-in (generated shapes, not real images): numbers "
                               "are not comparable with published VOC results")
            elif self.official is not None:
                title = {"voc2007": "Pascal VOC 2007", "voc2012": "Pascal VOC 2012"}[self.official]
                description = (f"{title}, official split sizes" if canonical else
                               f"{title} layout, split sizes differ from the official release")
            else:
                n = len(d.classes)
                description = f"Pascal VOC layout folder {d.folder.name} ({n} class{'es' if n != 1 else ''})"
        if canonical is False and self.official and self.origin == "real":
            want = OFFICIAL_COUNTS[self.official]
            have = {s: len(d.image_sets.get(s, ())) for s in want}
            notes.append(f"readable images per split {have}, the official release has {want}")
        if self.official is not None and self.origin == "real":
            notes.append("canonical means the official split sizes were found (a count check, not a checksum)")
        notes.append(f"{len(d.samples)} images, {n_obj} objects ({n_diff} difficult)")
        notes.extend(d.problems.lines())
        counts = {s: len(v) for s, v in self.splits.items()}
        return DatasetInfo(
            name=self.name,
            annotations=[BOXES],  # the masks are the segmentation reader's (benchsuite.data.voc_formats)
            origin=self.origin,
            canonical=canonical,
            fingerprint=d.fingerprint,
            root=str(d.folder),
            classes=list(d.classes),
            split_counts=counts,
            split_fingerprints={s: _split_fingerprint(d.fingerprint, s, self.split_ids(s)) for s in self.splits},
            description=description,
            notes=notes,
        )

    # ------------------------------------------------------------------ access
    def _indices(self, split: str) -> np.ndarray:
        return split_indices(self.splits, split, self.name)

    def load(self, split: str, max_images: int | None = None) -> DetectionSet:
        """One split as a DetectionSet (annotations in memory, pixels decoded on demand).

        ``max_images`` takes a fixed subset: stratified by each image's rarest class (background images
        as a class of their own) with ``SUBSET_SEED``, so every pipeline sees the same images.
        """
        ds = DetectionSet([self.data.samples[i] for i in self._indices(split)], self.data.classes,
                          f"{self.name}/{split}")
        if max_images is not None and max_images < len(ds):
            ds = ds.subset(stratified_choice(ds.stratification_labels(), max(0, max_images), SUBSET_SEED))
        return ds

    def manifest(self) -> dict[str, Any]:
        return split_manifest(self.info, self.origin, {s: self.split_ids(s) for s in self.splits}, SUBSET_SEED)

    def write_manifest(self, folder: Path) -> Path:
        """Write ``<folder>/<name>.split.json``: image ids per split and the fingerprints (atomically)."""
        path = Path(folder) / f"{self.name}.split.json"
        atomic_write_json(path, self.manifest())
        return path


# ---------------------------------------------------------------------- openers
def find_voc(data_root: Path, year: int) -> Path | None:
    """``<data_root>/VOCdevkit/VOC<year>`` or ``<data_root>/VOC<year>``, whichever exists first."""
    for folder in (Path(data_root) / "VOCdevkit" / f"VOC{year}", Path(data_root) / f"VOC{year}"):
        if folder.is_dir():
            return folder
    return None


def download_voc(data_root: Path, year: int) -> Path:
    """Fetch VOC<year> through torchvision into ``<data_root>/VOCdevkit`` (needs the network)."""
    image_sets = ("trainval", "test") if year == 2007 else ("trainval",)
    try:
        from torchvision.datasets import VOCDetection

        for image_set in image_sets:
            VOCDetection(root=str(data_root), year=str(year), image_set=image_set, download=True)
    except Exception as exc:
        raise DataError(f"could not download VOC{year} into {data_root}: {type(exc).__name__}: {exc}") from None
    return Path(data_root) / "VOCdevkit" / f"VOC{year}"


def open_synthetic(req: OpenRequest) -> VocDataset:
    folder = synthetic_voc.ensure_synthetic_voc(req.cache_dir)
    return VocDataset(folder, "synthetic-voc", origin="synthetic", classes=synthetic_voc.CLASSES)


def _open_year(req: OpenRequest, year: int) -> VocDataset:
    if req.force_synthetic:
        return open_synthetic(req)
    folder = find_voc(req.data_root, year)
    if folder is None and req.download:
        folder = download_voc(req.data_root, year)
    if folder is None:
        log.warning("no VOC%d under %s (expected VOCdevkit/VOC%d/ or VOC%d/); running on the synthetic "
                    "stand-in", year, req.data_root, year, year)
        return open_synthetic(req)
    return VocDataset(folder, f"voc{year}", classes=VOC_CLASSES, test_from_val=year == 2012,
                      official=f"voc{year}")


# the detection readers of the VOC formats (benchsuite.data.voc_formats registers the formats: boxes or masks)
def open_voc2007(req: OpenRequest) -> VocDataset:
    return _open_year(req, 2007)


def open_voc2012(req: OpenRequest) -> VocDataset:
    return _open_year(req, 2012)


def _is_voc_layout(folder: Path) -> bool:
    return (folder / "JPEGImages").is_dir() and ((folder / "Annotations").is_dir()
                                                 or (folder / "SegmentationClass").is_dir())


def voc_folder_of_spec(spec: str) -> tuple[Path, str]:
    """The VOC layout folder a ``voc:PATH`` spec names, and the data set's name (PATH's folder name).

    PATH is the layout folder itself, or a folder whose only VOC layout child is a real folder (not a link): an
    unpacked archive such as ``pennfudan-voc/PennFudan`` or ``VOCdevkit/VOC2007``, which is then read (and
    logged). Anything else is read as given, so its errors name what the layout lacks.
    """
    _, _, path = spec.partition(":")
    if not path.strip():
        raise ConfigError(f"data set spec {spec!r} names no folder; expected voc:PATH")
    folder = Path(os.path.abspath(Path(path.strip()).expanduser()))
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected {LAYOUT}")
    name = safe_name(folder.name)
    if _is_voc_layout(folder):
        return folder, name
    try:
        children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.is_symlink() and _is_voc_layout(c))
    except OSError:
        children = []
    if len(children) == 1:
        log.info("%s: not a VOC layout folder itself; reading its only VOC layout folder %s", folder,
                 children[0].name)
        return children[0], name
    return folder, name


def open_voc_folder(req: OpenRequest) -> VocDataset:
    """``voc:PATH``: any VOC layout folder, read as given, or the only VOC layout folder inside it (see
    :func:`voc_folder_of_spec`; ``force_synthetic`` does not apply)."""
    folder, name = voc_folder_of_spec(req.spec)
    return VocDataset(folder, name)


def open_synthetic_voc(req: OpenRequest) -> VocDataset:
    """``synthetic-voc``: the default synthetic set; ``synthetic-voc:VARIANT``: one of the data-shape variants
    (``crop``, ``tiny``, ``crowd``, ``wide``, ``grey``; see ``synthetic_voc.VARIANTS``), generated once into the
    cache folder and named ``synthetic-voc-VARIANT`` in records."""
    _, _, variant = req.spec.partition(":")
    variant = variant.strip()
    if not variant:
        return open_synthetic(req)
    if variant not in synthetic_voc.VARIANTS:
        raise ConfigError(f"unknown synthetic VOC variant {variant!r} in {req.spec!r}; expected synthetic-voc or "
                          f"synthetic-voc:{{{','.join(synthetic_voc.VARIANTS)}}}")
    v = synthetic_voc.VARIANTS[variant]
    folder = synthetic_voc.ensure_variant(req.cache_dir, variant)
    return VocDataset(folder, f"synthetic-voc-{variant}", origin="synthetic", classes=v.classes,
                      description=f"synthetic VOC-layout data-shape variant {variant!r} (generated shapes, not real "
                                  f"images): {v.description}")


def contact_sheet(folder: Path, path: Path, ids: list[str], columns: int = 3) -> Path:
    """Draw the annotated boxes of some images of a VOC folder onto one PNG (for looking at the data).

    Outline colours: car red, pedestrian green, sign blue, other classes yellow, difficult objects
    white; truncated objects get a thicker outline.
    """
    from PIL import Image, ImageDraw

    data = read_voc(Path(folder))
    by_id = {s.image_id: s for s in data.samples}
    colours = {"car": (255, 40, 40), "pedestrian": (40, 220, 40), "sign": (60, 120, 255)}
    tiles = []
    for image_id in ids:
        s = by_id[image_id]
        im = Image.open(s.path).convert("RGB")
        d = ImageDraw.Draw(im)
        for box, label, diff, trunc in zip(s.boxes, s.labels, s.difficult, s.truncated):
            c = (255, 255, 255) if diff else colours.get(data.classes[label], (255, 255, 0))
            x1, y1, x2, y2 = box.tolist()
            d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=c, width=3 if trunc else 1)
        tiles.append(im)
    cell_w, cell_h = max(t.width for t in tiles), max(t.height for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (cell_w + 4), rows * (cell_h + 4)), (0, 0, 0))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % columns) * (cell_w + 4), (k // columns) * (cell_h + 4)))
    sheet.save(path)
    return Path(path)
