"""``coco:ANNOTATIONS.json``: detection data in COCO JSON (what CVAT, Label Studio, Roboflow and COCO itself export).

Specs::

    coco:PATH/instances.json                      one file: a seeded stratified split is drawn
    coco:PATH/train.json?val=val.json&test=test.json   one file per split (val optional: drawn from train)
    coco:PATH                                     a folder: one JSON file per split, found by the split's name in
                                                  its path (instances_train2017.json, valid/_annotations.coco.json)
    ...?images=DIR                                the images folder, when it is not found beside the file

Reading (see :mod:`benchsuite.data.boxsets` for what every detection format shares):

- ``categories`` give the classes, ordered by category id; ids need not be contiguous; a category with no
  annotation in any file is left out (noted). Every file must declare the same categories.
- ``images[].file_name`` is looked up in the ``images=`` folder, else beside the JSON file, in ``images/`` there,
  and, when the JSON lies in an ``annotations/`` folder (COCO's and CVAT's layout), in its parent, the parent's
  ``images/`` and the parent's folder named after the file (``instances_val2017.json`` -> ``val2017/``). A
  ``file_name`` that leaves that folder (absolute, ``..``, a link outside) is refused.
- ``bbox`` ``[x, y, w, h]`` is the pixel-edge box ``x1 = x, y1 = y, x2 = x + w, y2 = y + h`` (COCO's coordinates
  are continuous, as the suite's). ``iscrowd: 1`` objects are kept as *difficult*: neither a hit nor a miss
  when scoring, as VOC's difficult objects. An image without annotations is a background image.
- Every id, number and reference is checked (finite, in range, declared) before use: a bad one is an error naming
  the file and the entry. A file over :data:`benchsuite.data.confine.MAX_JSON_BYTES` is refused before it is read.

Options: ``images``, ``val``, ``test`` (files or folders relative to the spec's folder, or absolute: they are
the user's own choices), ``val_fraction`` (default 0.2 of train), ``test_fraction`` (default 0.2 of all images).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data.boxsets import BoxDataset, RawImage, build_samples
from benchsuite.data.confine import MAX_JSON_BYTES, checked_name, confined, is_inside, read_limited, resolve_inside
from benchsuite.data.datasets import BOXES, OpenRequest, dataset_format
from benchsuite.data.problems import Problems
from benchsuite.data.seeded_splits import SPLIT_NAMES
from benchsuite.data.spec_options import parse_spec
from benchsuite.data.voc import safe_name
from benchsuite.errors import ConfigError, DataError

USAGE = "coco:ANNOTATIONS.json[?images=DIR&val=FILE&test=FILE] or coco:FOLDER"
OPTIONS = ("images", "val", "test", "val_fraction", "test_fraction")
_SPLIT_TOKEN = re.compile(r"(?<![a-z])(train|validation|valid|val|test)(?![a-z])")
_MAX_ID = 2**63


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_MAX_ID < value < _MAX_ID


def _brief(value: Any) -> str:
    """A short description of a JSON value for a message (a container is not printed whole)."""
    if isinstance(value, (dict, list)):
        return f"a {'object' if isinstance(value, dict) else 'list'} of {len(value)} item(s)"
    return repr(value[:60] if isinstance(value, str) else value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_coco_json(path: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed top level of a COCO file and its bytes; size, syntax and top-level shape checked."""
    data = read_limited(path, MAX_JSON_BYTES, "COCO annotation file (.json)")
    try:
        top = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); expected a COCO annotation file") from None
    if not isinstance(top, dict):
        raise DataError(f"{path}: the top level is a {type(top).__name__}; expected a COCO object with images, "
                        f"annotations and categories")
    for key in ("images", "categories"):
        if not isinstance(top.get(key), list):
            raise DataError(f"{path}: no {key!r} list; expected a COCO object with images, annotations and categories")
    if not isinstance(top.get("annotations", []), list):
        raise DataError(f"{path}: 'annotations' is a {type(top['annotations']).__name__}; expected a list")
    return top, data


def read_categories(top: dict[str, Any], path: Path) -> dict[int, str]:
    """Category id -> name, every entry checked (ids unique integers, names unique, non-empty)."""
    out: dict[int, str] = {}
    for i, cat in enumerate(top["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DataError(f"{path}: categories[{i}] is {_brief(cat)}; expected {{\"id\": integer, \"name\": "
                            f"text}}")
        name = checked_name(cat["name"], f"{path}: categories[{i}]", "category name")
        if cat["id"] in out:
            raise DataError(f"{path}: category id {cat['id']} declared twice ({out[cat['id']]!r}, {name!r})")
        if name in out.values():
            raise DataError(f"{path}: category name {name!r} declared twice; expected unique names")
        out[int(cat["id"])] = name
    if not out:
        raise DataError(f"{path}: no categories; expected at least one")
    return out


def image_folders(json_path: Path, root: Path, images: Path | None) -> list[Path]:
    """Where a COCO file's ``file_name`` values are looked up, in order (existing folders only)."""
    if images is not None:
        return [images]
    here = json_path.parent
    found = [here, here / "images"]
    if here.name == "annotations":
        found += [here.parent, here.parent / "images", here.parent / json_path.stem.split("_")[-1]]
    out = []
    for f in found:
        real = Path(os.path.realpath(f))
        if f.is_dir() and real not in out:
            if os.path.islink(f):  # a folder found by name that links outside is refused, as everywhere
                out.append(confined(f, root, "folder of images"))
            elif is_inside(real, root):
                out.append(real)
    return out


def _find_image(file_name: str, folders: list[Path], where: str) -> Path | None:
    for folder in folders:
        candidate = resolve_inside(folder, file_name, where, "file_name")
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return None


def read_coco_file(path: Path, split: str, root: Path, images: Path | None, problems: Problems
                   ) -> tuple[list[RawImage], dict[int, str], set[int], bytes]:
    """The images of one COCO file as RawImages with category ids as labels (mapped to class indices later), the
    categories, the category ids used, and the file's bytes. Errors go to ``problems``."""
    top, data = load_coco_json(path)
    categories = read_categories(top, path)
    folders = image_folders(path, root, images)
    if not folders:
        raise DataError(f"{path}: no images folder found beside it (looked for {path.parent}, "
                        f"{path.parent / 'images'}); give one with ?images=DIR")
    entries: dict[Any, tuple[Path, str, tuple[int, int] | None]] = {}
    for i, img in enumerate(top["images"]):
        where = f"{path} (images[{i}])"
        if not isinstance(img, dict) or not (_is_int(img.get("id")) or isinstance(img.get("id"), str)):
            problems.error(where, f"is {_brief(img)}; expected an object with an integer id and a file_name",
                           "bad image entry")
            continue
        name = img.get("file_name")
        if not isinstance(name, str) or not name:
            problems.error(where, f"image id {img['id']} has no file_name", "bad image entry")
            continue
        if img["id"] in entries:
            problems.error(where, f"image id {img['id']} is declared twice", "bad image entry")
            continue
        try:
            found = _find_image(name, folders, where)
        except DataError as exc:
            problems.add_error(exc)
            continue
        if found is None:
            problems.error(where, f"image id {img['id']}: file_name {name!r} not found in "
                                  f"{', '.join(str(f) for f in folders)}", "missing image")
            continue
        w, h = img.get("width"), img.get("height")
        stated = (int(w), int(h)) if _is_int(w) and _is_int(h) and w > 0 and h > 0 else None
        entries[img["id"]] = (found, f"{path} (image id {img['id']}, {name})", stated)
    objects: dict[Any, list[tuple[list[float], int, bool]]] = {k: [] for k in entries}
    declared = {img["id"] for img in top["images"]
                if isinstance(img, dict) and (_is_int(img.get("id")) or isinstance(img.get("id"), str))}
    used: set[int] = set()
    for i, ann in enumerate(top.get("annotations", [])):
        where = f"{path} (annotations[{i}])"
        problem = _annotation_problem(ann, categories)
        if problem:
            problems.error(where, problem, "bad annotation")
            continue
        if ann["image_id"] not in objects:
            if ann["image_id"] not in declared:
                problems.error(where, f"image_id {ann['image_id']} is not among the file's images", "bad annotation")
            continue  # an image already reported (missing, malformed)
        x, y, w, h = (float(v) for v in ann["bbox"])
        crowd = bool(ann.get("iscrowd", 0))
        objects[ann["image_id"]].append(([x, y, x + w, y + h], int(ann["category_id"]), crowd))
        used.add(int(ann["category_id"]))
    raws = []
    for key, (found, source, stated) in entries.items():
        objs = objects[key]
        raws.append(RawImage.of(found, source, split, [o[0] for o in objs], [o[1] for o in objs],
                                [o[2] for o in objs], stated_size=stated))
    return raws, categories, used, data


def _annotation_problem(ann: Any, categories: dict[int, str]) -> str:
    """'' when an annotation entry is well formed, else what is wrong with it."""
    if not isinstance(ann, dict):
        return f"is {_brief(ann)}; expected an object"
    if not (_is_int(ann.get("image_id")) or isinstance(ann.get("image_id"), str)):
        return f"image_id {_brief(ann.get('image_id'))}; expected an image's id"
    cat = ann.get("category_id")
    if not _is_int(cat) or cat not in categories:
        return f"category_id {_brief(cat)} is not a declared category ({', '.join(map(str, sorted(categories)))})"
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_finite(v) for v in bbox):
        shown = bbox if isinstance(bbox, list) and len(bbox) <= 8 else _brief(bbox)
        return f"bbox {str(shown)[:120]}; expected [x, y, width, height], four finite numbers"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"bbox {bbox} has a negative width or height"
    if ann.get("iscrowd", 0) not in (0, 1, True, False):
        return f"iscrowd {_brief(ann.get('iscrowd'))}; expected 0 or 1"
    return ""


def split_files(folder: Path) -> dict[str, Path]:
    """The JSON files of a folder (and its sub-folders, two levels) by the split their path names."""
    found: dict[str, list[Path]] = {}
    for depth in ("*.json", "*/*.json", "*/*/*.json"):
        for path in sorted(folder.glob(depth)):
            confined(path, folder, "JSON file")
            rel = path.relative_to(folder).as_posix().lower()
            tokens = {SPLIT_NAMES[m] for m in _SPLIT_TOKEN.findall(rel)}
            if len(tokens) == 1:
                found.setdefault(tokens.pop(), []).append(path)
    for split, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.relative_to(folder).as_posix() for p in paths[:4])
            raise DataError(f"{folder}: {len(paths)} JSON files for the {split} split ({names}); expected one")
    if not found:
        raise DataError(f"{folder}: no JSON file whose name says its split (train, val, test); expected "
                        f"coco:FILE.json or one file per split")
    return {s: found[s][0] for s in ("train", "val", "test") if s in found}


def _option_path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return Path(os.path.realpath(path if path.is_absolute() else base / path))


class CocoSource:
    """What a ``coco:`` spec names: the files by split (``""``: one file, split by seed), the data set folder and
    the images folder if given."""

    def __init__(self, spec: str):
        parts = parse_spec(spec, USAGE, OPTIONS)
        self.parts = parts
        target = Path(os.path.realpath(Path(parts.path).expanduser()))
        if target.is_dir():
            if "val" in parts.options or "test" in parts.options:
                raise ConfigError(f"data set spec {spec!r}: val= and test= go with coco:TRAIN.json, not a folder")
            self.root = target
            self.files = split_files(target)
        elif target.exists():
            self.files = {"": target} if not (set(parts.options) & {"val", "test"}) else {"train": target}
            for split in ("val", "test"):
                if split in parts.options:
                    self.files[split] = _option_path(target.parent, parts.options[split])
            self.root = Path(os.path.commonpath([str(_file_root(f)) for f in self.files.values()]))
        else:
            raise DataError(f"{target}: no such file or folder; expected {USAGE}")
        self.images = _option_path(self.root, parts.options["images"]) if "images" in parts.options else None
        if self.images is not None and not self.images.is_dir():
            raise DataError(f"{self.images}: no such folder (the spec's images=)")
        self.name = safe_name(self.root.name) or "coco"
        if self.images is not None:  # the data set's folder holds the annotation files and the images
            self.root = Path(os.path.commonpath([str(self.root), str(self.images)]))


def _file_root(path: Path) -> Path:
    """The data set folder of a COCO file: its folder, or the parent of an ``annotations/`` folder."""
    return path.parent.parent if path.parent.name == "annotations" else path.parent


def read_coco(source: CocoSource, problems: Problems) -> tuple[list[RawImage], tuple[str, ...], bytes, list[str]]:
    """Every file of ``source``: the images (labels as class indices), the classes, a digest of the files, notes."""
    all_raws: list[RawImage] = []
    categories: dict[int, str] | None = None
    used: set[int] = set()
    digest = hashlib.sha256()
    for split, path in source.files.items():
        try:
            raws, cats, used_here, data = read_coco_file(path, split, source.root, source.images, problems)
        except DataError as exc:
            problems.add_error(exc)
            continue
        if categories is not None and cats != categories:
            problems.error(path, "declares other categories than the other split files; expected the same "
                                 "categories in every file", "categories differ")
            continue
        categories = cats
        used |= used_here
        all_raws += raws
        digest.update(f"\0{split}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    if categories is None:
        return [], (), digest.digest(), []
    kept = sorted(c for c in categories if c in used)
    index = {c: k for k, c in enumerate(kept)}
    notes = []
    unused = [categories[c] for c in sorted(categories) if c not in used]
    if unused:
        notes.append(f"{len(unused)} categor(ies) without any annotation left out of the classes: "
                     f"{', '.join(unused[:10])}{', ...' if len(unused) > 10 else ''}")
    for raw in all_raws:
        raw.labels = np.array([index[int(c)] for c in raw.labels], np.int64)
    return all_raws, tuple(categories[c] for c in kept), digest.digest(), notes


def open_coco_source(spec: str, inspect: bool = False) -> BoxDataset:
    source = CocoSource(spec)
    problems = Problems(spec)
    raws, classes, digest, notes = read_coco(source, problems)
    data = build_samples(source.root, raws, classes, problems, digest)
    data.notes += notes
    options = {"files": {s or "all": str(p) for s, p in source.files.items()},
               "images": str(source.images) if source.images else "beside the annotation files",
               "bbox": "[x, y, w, h] -> x1 = x, y1 = y, x2 = x + w, y2 = y + h (pixel edges)",
               "iscrowd": "kept as difficult (ignored when scoring)"}
    return BoxDataset(data, source.name, "coco", options, source.parts, inspect=inspect)


@dataset_format("coco", provides=[BOXES], usage=USAGE)
def open_coco(req: OpenRequest) -> BoxDataset:
    """``coco:ANNOTATIONS.json`` or ``coco:FOLDER`` (see the module docstring)."""
    return open_coco_source(req.spec, inspect=req.inspect)
