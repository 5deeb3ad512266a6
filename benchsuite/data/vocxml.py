"""``vocxml:PATH``: Pascal VOC XML annotations anywhere under a folder, without ``ImageSets/`` (as LabelImg, CVAT
and Roboflow write them).

Every ``*.xml`` under ``PATH`` whose root element is ``<annotation>`` is read (others are ignored, with a
warning) with the VOC reader's parser (:func:`benchsuite.data.voc.parse_annotation`: 1-based inclusive boxes,
``difficult`` and ``truncated`` flags). Its image is found among the image files under ``PATH``:

1. by ``<filename>`` (its last path component; the rest of the path is not used): the image of that name, the one
   in the XML's own folder (or its parent's ``images/`` / ``JPEGImages/``) when several share the name;
2. else by ``<filename>``'s stem, then by the XML file's own stem, the same way.

A ``<filename>`` that matches no image (nor does either stem), or that matches several images equally, is an
error naming the XML; so are two XMLs claiming one image. Images that no XML claims are not used (counted in the
notes). Classes are the object names found, sorted. Splits: an XML under a folder named ``train``, ``val``
(``valid``, ``validation``) or ``test`` (at any depth below ``PATH``) is in that split; without such folders a
seeded stratified split is drawn (:mod:`benchsuite.data.seeded_splits`). The paths in the XML are never opened:
images are looked up among the files found under ``PATH``, which stay inside it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from benchsuite.data.boxsets import BoxDataset, RawImage, build_samples
from benchsuite.data.confine import MAX_TEXT_BYTES, checked_name, read_limited, real_folder, walk_files
from benchsuite.data.datasets import BOXES, OpenRequest, dataset_format
from benchsuite.data.imagefolder import image_suffixes
from benchsuite.data.problems import Problems
from benchsuite.data.seeded_splits import SPLIT_NAMES
from benchsuite.data.spec_options import parse_spec
from benchsuite.data.voc import _Malformed, parse_annotation, safe_name
from benchsuite.errors import DataError

USAGE = "vocxml:PATH[?val_fraction=F&test_fraction=F]"
OPTIONS = ("val_fraction", "test_fraction")
LAYOUT = "a folder holding Pascal VOC XML files and their images"
IMAGE_FOLDERS = ("images", "JPEGImages", "imgs", "img")


class ImageIndex:
    """The image files under a folder, by name and by stem."""

    def __init__(self, root: Path, files: list[Path]):
        self.root = root
        self.by_name: dict[str, list[Path]] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for f in files:
            self.by_name.setdefault(f.name, []).append(f)
            self.by_stem.setdefault(f.stem, []).append(f)

    @staticmethod
    def _nearest(candidates: list[Path], xml: Path) -> list[Path]:
        """The candidates nearest the XML: in its folder, then in an image folder beside it, else all."""
        here = [c for c in candidates if c.parent == xml.parent]
        if here:
            return here
        beside = [c for c in candidates if c.parent.parent == xml.parent.parent and c.parent.name in IMAGE_FOLDERS]
        if beside:
            return beside
        beside = [c for c in candidates if c.parent.parent == xml.parent and c.parent.name in IMAGE_FOLDERS]
        return beside or candidates

    def match(self, xml: Path, filename: str | None) -> Path:
        """The image of ``xml`` (see the module docstring); a DataError naming the XML when none or several."""
        tries = []
        if filename:
            tries += [("name", filename), ("stem", Path(filename).stem)]
        tries.append(("stem", xml.stem))
        for kind, key in tries:
            candidates = (self.by_name if kind == "name" else self.by_stem).get(key, [])
            if not candidates:
                continue
            nearest = self._nearest(candidates, xml)
            if len(nearest) > 1:
                names = ", ".join(c.relative_to(self.root).as_posix() for c in nearest[:4])
                raise DataError(f"{xml}: <filename> {filename!r} matches {len(nearest)} images equally ({names}); "
                                f"expected one")
            return nearest[0]
        what = f"<filename> {filename!r}" if filename else "no <filename>, and the XML's stem"
        raise DataError(f"{xml}: {what} matches no image under {self.root} (nor does its stem {xml.stem!r}); "
                        f"expected the image beside its XML")


def _split_of(path: Path, root: Path) -> str:
    for part in path.relative_to(root).parts[:-1]:
        if part in SPLIT_NAMES:
            return SPLIT_NAMES[part]
    return ""


def read_vocxml(root: Path, problems: Problems) -> tuple[list[RawImage], tuple[str, ...], bytes, list[str]]:
    """Every annotation XML under ``root``: images, classes, a digest of the XML bytes, notes."""
    def skipped(path: Path, why: str) -> None:
        problems.warn("linked entry not followed", path, f"{why}: left out")

    xmls = list(walk_files(root, frozenset({".xml"}), skipped))
    index = ImageIndex(root, list(walk_files(root, image_suffixes())))
    digest = hashlib.sha256()
    found = []
    for xml in xmls:
        rel = xml.relative_to(root).as_posix()
        try:
            data = read_limited(xml, MAX_TEXT_BYTES, "VOC annotation (.xml)")
        except DataError as exc:
            problems.add_error(exc)
            continue
        try:
            ann = parse_annotation(data, xml.stem)
        except _Malformed as exc:
            if str(exc).startswith("root element"):
                problems.warn("XML that is not a VOC annotation (ignored)", xml, f"{exc}: ignored")
            else:
                problems.error(xml, f"malformed VOC annotation: {exc}", "malformed annotation")
            continue
        try:
            image = index.match(xml, ann.filename)
            names = [checked_name(o.name, xml) for o in ann.objects]
        except DataError as exc:
            problems.add_error(exc)
            continue
        digest.update(f"\0{rel}\0".encode() + hashlib.sha256(data).digest())
        found.append((xml, rel, image, ann, names))
    if not found and not problems.errors:
        raise DataError(f"{root}: no Pascal VOC annotation (.xml with an <annotation> root) under it; expected "
                        f"{LAYOUT}")
    classes = tuple(sorted({n for *_, names in found for n in names}))
    position = {c: k for k, c in enumerate(classes)}
    with_split = [(_split_of(xml, root)) for xml, *_ in found]
    raws = []
    for (xml, _, image, ann, names), split in zip(found, with_split):
        if any(with_split) and not split:
            problems.warn("XML outside the split folders (ignored)", xml,
                          "outside the train/val/test folders beside it: ignored")
            continue
        raws.append(RawImage.of(image, str(xml), split,
                                [(o.box[0] - 1, o.box[1] - 1, o.box[2], o.box[3]) for o in ann.objects],
                                [position[n] for n in names], [o.difficult for o in ann.objects],
                                [o.truncated for o in ann.objects], stated_size=ann.size))
    claimed = {raw.path for raw in raws}
    unclaimed = sum(1 for files in index.by_name.values() for f in files if f not in claimed)
    notes = [f"{unclaimed} image file(s) under the folder have no annotation XML: not used"] if unclaimed else []
    return raws, classes, digest.digest(), notes


def open_vocxml_source(spec: str, inspect: bool = False) -> BoxDataset:
    parts = parse_spec(spec, USAGE, OPTIONS)
    root = real_folder(Path(parts.path).expanduser(), LAYOUT)
    problems = Problems(spec)
    raws, classes, digest, notes = read_vocxml(root, problems)
    data = build_samples(root, raws, classes, problems, digest)
    data.notes += notes
    options = {"boxes": "VOC 1-based inclusive: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax",
               "matching": "<filename>, then its stem, then the XML's stem, nearest the XML"}
    return BoxDataset(data, safe_name(root.name) or "vocxml", "vocxml", options, parts, inspect=inspect)


@dataset_format("vocxml", provides=[BOXES], usage=USAGE)
def open_vocxml(req: OpenRequest) -> BoxDataset:
    """``vocxml:PATH`` (see the module docstring)."""
    return open_vocxml_source(req.spec, inspect=req.inspect)
