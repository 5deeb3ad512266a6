"""``yolo:PATH``: detection data in YOLO text labels (the Ultralytics / darknet layout).

Layouts (``PATH`` a folder, or its ``data.yaml``)::

    PATH/data.yaml          train: images/train   val: images/val   test: images/test   names: [a, b] (or {0: a})
    PATH/images/**/x.jpg    with PATH/labels/**/x.txt (the image path with its last images/ made labels/)
    PATH/classes.txt        one class name per line, when there is no data.yaml

Without ``data.yaml``: ``images/train``, ``images/val``, ``images/test`` are the splits when present, else a
seeded stratified split is drawn (:mod:`benchsuite.data.seeded_splits`). A ``data.yaml`` split is a folder of
images or a ``.txt`` list of image paths (relative to the list's folder), or a list of those, relative to
``PATH``; like Ultralytics, a path starting ``../`` that does not exist is tried without it (Roboflow's
exports). Every such path must stay inside ``PATH`` (absolute paths, ``..`` that climbs out, links outside are
refused); a ``path:`` key that leads outside is ignored (with a warning) and the splits are read relative to the
``data.yaml``'s folder.

**Pixel convention.** A label line ``class cx cy w h`` holds fractions of the image width ``W`` and height ``H``
in continuous coordinates (0 is the left edge of the first pixel, 1 the right edge of the last), so the pixel-edge
box is ``x1 = (cx - w / 2) * W, x2 = (cx + w / 2) * W`` (and ``y`` alike) and a box covering pixel columns 10..19
is ``cx = 15 / W, w = 10 / W``. Computed in float64 and stored as float32, a box written by
:func:`benchsuite.data.format_writers.yolo_line` reads back exactly.

A line is ``class cx cy w h`` (5 numbers) or a segmentation polygon ``class x1 y1 x2 y2 ...`` (an odd count of 7
or more; its bounding box is used). Any other count, a class outside ``0..nc-1``, a value that is not a finite
number or a coordinate outside 0..1 is an error naming ``file:line``. An image without a label file, or with an
empty one, is a background image. YOLO has no *difficult* flag: every object counts.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import yaml

from benchsuite.data.boxsets import BoxDataset, RawImage, build_samples
from benchsuite.data.confine import (
    MAX_LABEL_LINES,
    MAX_TEXT_BYTES,
    checked_name,
    confined,
    is_inside,
    read_limited,
    real_folder,
    resolve_inside,
    walk_files,
)
from benchsuite.data.datasets import BOXES, OpenRequest, dataset_format
from benchsuite.data.imagefolder import image_suffixes
from benchsuite.data.problems import Problems
from benchsuite.data.seeded_splits import SPLIT_NAMES
from benchsuite.data.spec_options import parse_spec
from benchsuite.data.voc import safe_name
from benchsuite.errors import DataError

USAGE = "yolo:PATH[?val_fraction=F&test_fraction=F] (PATH a folder with data.yaml or classes.txt, or a data.yaml)"
OPTIONS = ("val_fraction", "test_fraction")
LAYOUT = "a YOLO folder: images/, labels/ and data.yaml or classes.txt"


def parse_label_line(line: str, num_classes: int) -> tuple[int, tuple[float, float, float, float]]:
    """``(class, (x1, y1, x2, y2))`` normalised, from one label line; ValueError says what is wrong."""
    tokens = line.split()
    n = len(tokens)
    if n != 5 and (n < 7 or n % 2 == 0):
        raise ValueError(f"{n} number(s); expected 5 (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...)")
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise ValueError(f"{line.strip()[:60]!r} holds something that is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{line.strip()[:60]!r} holds a value that is not finite")
    cls = values[0]
    if not cls.is_integer() or not 0 <= cls < num_classes:
        raise ValueError(f"class {tokens[0]!r} outside 0..{num_classes - 1} (the class list has {num_classes})")
    coords = values[1:]
    bad = [t for t, v in zip(tokens[1:], coords) if not 0.0 <= v <= 1.0]
    if bad:
        raise ValueError(f"coordinate {bad[0]} outside 0..1; YOLO coordinates are fractions of the image size")
    if n == 5:
        cx, cy, w, h = coords
        return int(cls), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    xs, ys = coords[0::2], coords[1::2]
    return int(cls), (min(xs), min(ys), max(xs), max(ys))


def read_label_file(path: Path, num_classes: int, source: str, problems: Problems
                    ) -> tuple[list[tuple[float, float, float, float]], list[int], bytes]:
    """The boxes (normalised) and classes of one label file; bad lines go to ``problems`` as errors."""
    data = read_limited(path, MAX_TEXT_BYTES, "YOLO label file")
    lines = data.decode("utf-8", errors="replace").splitlines()
    if len(lines) > MAX_LABEL_LINES:
        raise DataError(f"{source}: {len(lines):,} lines, over the limit of {MAX_LABEL_LINES:,} objects per image")
    boxes, labels = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cls, box = parse_label_line(line, num_classes)
        except ValueError as exc:
            problems.error(f"{source}:{number}", str(exc), "bad label line")
            continue
        boxes.append(box)
        labels.append(cls)
    return boxes, labels, data


def label_path(image: Path, root: Path) -> Path | None:
    """The label file of ``image``: its path relative to ``root`` with the last ``images`` component made
    ``labels`` and the suffix ``.txt`` (None when the path has no ``images`` component)."""
    parts = list(image.relative_to(root).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return root.joinpath(*parts).with_suffix(".txt")
    return None


def _names(value: Any, source: Path) -> list[str]:
    if isinstance(value, list):
        names = value
    elif isinstance(value, dict):
        keys = sorted(value)
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in keys) or keys != list(range(len(keys))):
            raise DataError(f"{source}: names has keys {keys[:8]}; expected the class indices 0..n-1")
        names = [value[k] for k in keys]
    else:
        raise DataError(f"{source}: names is a {type(value).__name__}; expected a list or a mapping index -> name")
    if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names):
        raise DataError(f"{source}: names holds a value that is not a name (a list, a mapping, ...); expected text")
    out = [checked_name(str(n), source) for n in names]
    if len(set(out)) != len(out):
        raise DataError(f"{source}: a class name is listed twice; expected unique names")
    return out


class YoloSource:
    """The classes and the image files by split (``""``: no split given) of a YOLO folder."""

    def __init__(self, spec: str, problems: Problems):
        parts = parse_spec(spec, USAGE, OPTIONS)
        self.parts = parts
        target = Path(parts.path).expanduser()
        yaml_path = None
        if target.is_file():
            yaml_path, target = target, target.parent
        self.root = real_folder(target, LAYOUT)
        self.name = safe_name(self.root.name) or "yolo"
        self.digest = hashlib.sha256()
        if yaml_path is None:
            yaml_path = next((self.root / n for n in ("data.yaml", "dataset.yaml") if (self.root / n).is_file()), None)
        self.suffixes = image_suffixes()
        if yaml_path is not None:
            self.yaml = Path(os.path.realpath(yaml_path))
            if not is_inside(self.yaml, self.root):
                raise DataError(f"{yaml_path}: leads outside {self.root}; refused")
            self.classes, self.images = self._from_yaml(problems)
        else:
            self.yaml = None
            self.classes, self.images = self._from_folders()

    def _from_yaml(self, problems: Problems) -> tuple[list[str], dict[str, list[Path]]]:
        data = read_limited(self.yaml, MAX_TEXT_BYTES, "data.yaml")
        self.digest.update(data)
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise DataError(f"{self.yaml}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict):
            raise DataError(f"{self.yaml}: expected a mapping with train, val, test and names")
        if "names" not in doc:
            raise DataError(f"{self.yaml}: no names; expected the class names (a list, or index: name)")
        classes = _names(doc["names"], self.yaml)
        if "nc" in doc and (not isinstance(doc["nc"], int) or doc["nc"] != len(classes)):
            nc = doc["nc"] if isinstance(doc["nc"], int) else f"a {type(doc['nc']).__name__}"
            raise DataError(f"{self.yaml}: nc is {nc} but names lists {len(classes)} classes")
        base = self.root
        if isinstance(doc.get("path"), str) and doc["path"].strip():
            try:
                base = resolve_inside(self.root, doc["path"], self.yaml, "path")
            except DataError as exc:
                problems.warn("data.yaml path ignored", self.yaml,
                              f"{str(exc).partition(': ')[2]}; ignored: the splits are read relative to {self.root}")
        images: dict[str, list[Path]] = {}
        for key in ("train", "val", "test"):
            value = doc.get(key)
            if value in (None, "", []):
                continue
            entries = value if isinstance(value, list) else [value]
            if not all(isinstance(e, str) for e in entries):
                raise DataError(f"{self.yaml}: {key} is not a path; expected a folder or .txt list (or a list of them)")
            images[key] = [p for e in entries for p in self._split_images(base, e, key)]
        if "train" not in images:
            raise DataError(f"{self.yaml}: no train split; expected train: a folder of images")
        return classes, images

    def _split_images(self, base: Path, entry: str, key: str) -> list[Path]:
        where = f"{self.yaml} ({key})"
        escape: DataError | None = None
        try:
            target: Path | None = resolve_inside(base, entry, where, key)
        except DataError as exc:
            if not entry.startswith("../"):
                raise
            target, escape = None, exc
        if (target is None or not target.exists()) and entry.startswith("../"):
            stripped = resolve_inside(base, entry[3:], where, key)  # Ultralytics's rule for Roboflow's exports
            target = stripped if stripped.exists() else target
        if target is None:
            raise escape or DataError(f"{where}: {entry!r} not found")
        if not target.exists():
            raise DataError(f"{where}: {entry!r} not found under {base}; expected a folder of images or a .txt list")
        if target.is_dir():
            return list(walk_files(target, self.suffixes))
        if target.suffix.lower() == ".txt":
            data = read_limited(target, MAX_TEXT_BYTES, "image list (.txt)")
            self.digest.update(data)
            out = []
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if line.strip():
                    out.append(resolve_inside(target.parent, line.strip(), f"{target}:{number}", "image path"))
            return out
        raise DataError(f"{where}: {entry!r} is neither a folder of images nor a .txt list of images")

    def _from_folders(self) -> tuple[list[str], dict[str, list[Path]]]:
        names_file = next((p for p in (self.root / "classes.txt", self.root / "labels" / "classes.txt",
                                       self.root / "obj.names") if p.is_file()), None)
        if names_file is None:
            raise DataError(f"{self.root}: no data.yaml and no classes.txt; expected {LAYOUT}")
        data = read_limited(confined(names_file, self.root, "class list"), MAX_TEXT_BYTES, "class list")
        self.digest.update(data)
        lines = [ln for ln in data.decode("utf-8", errors="replace").splitlines() if ln.strip()]
        classes = _names(lines, names_file)
        images_dir = self.root / "images"
        if not images_dir.is_dir():
            raise DataError(f"{images_dir}: missing; expected {LAYOUT}")
        images_dir = confined(images_dir, self.root, "folder of images")
        split_dirs = {SPLIT_NAMES[p.name]: confined(p, self.root, "split folder") for p in sorted(images_dir.iterdir())
                      if p.is_dir() and p.name in SPLIT_NAMES}
        if split_dirs:
            return classes, {s: list(walk_files(p, self.suffixes)) for s, p in split_dirs.items()}
        return classes, {"": list(walk_files(images_dir, self.suffixes))}


def read_yolo(source: YoloSource, problems: Problems) -> list[RawImage]:
    raws = []
    seen: dict[Path, str] = {}
    for split, images in source.images.items():
        for image in images:
            rel = image.relative_to(source.root).as_posix()
            if image in seen:
                problems.error(f"{source.yaml or source.root}", f"image {rel} is in the {seen[image]} and the {split} "
                                                                f"splits; expected each image in one split",
                               "image in two splits")
                continue
            seen[image] = split
            label = label_path(image, source.root)
            if label is None:
                problems.error(image, "an image outside any images/ folder: its labels cannot be found (they are at "
                                    "the image's path with images/ made labels/)", "no label folder")
                continue
            boxes: list[tuple[float, float, float, float]] = []
            labels: list[int] = []
            source_name = str(image)
            if label.exists() or label.is_symlink():
                source_name = str(label)
                try:
                    real = Path(os.path.realpath(label))
                    if not is_inside(real, source.root):
                        raise DataError(f"{label}: leads outside {source.root}; refused")
                    boxes, labels, data = read_label_file(real, len(source.classes), source_name, problems)
                    rel_label = label.relative_to(source.root).as_posix()
                    source.digest.update(f"\0{rel_label}\0".encode() + hashlib.sha256(data).digest())
                except DataError as exc:
                    problems.add_error(exc)
                    continue
            raws.append(RawImage.of(image, source_name, split, boxes, labels, normalised=True))
    return raws


def open_yolo_source(spec: str, inspect: bool = False) -> BoxDataset:
    problems = Problems(spec)
    source = YoloSource(spec, problems)
    raws = read_yolo(source, problems)
    data = build_samples(source.root, raws, source.classes, problems, source.digest.digest())
    n_background = sum(1 for s in data.samples if not len(s))
    data.notes.append(f"{n_background} image(s) without objects (no label file, or an empty one): background images")
    options = {"layout": f"data.yaml ({source.yaml.name})" if source.yaml else "images/, labels/, classes.txt",
               "boxes": "x1 = (cx - w/2) W, x2 = (cx + w/2) W, y alike (pixel edges); no difficult flag"}
    return BoxDataset(data, source.name, "yolo", options, source.parts, inspect=inspect)


@dataset_format("yolo", provides=[BOXES], usage=USAGE)
def open_yolo(req: OpenRequest) -> BoxDataset:
    """``yolo:PATH`` (see the module docstring)."""
    return open_yolo_source(req.spec, inspect=req.inspect)
