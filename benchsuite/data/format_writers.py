"""Write annotated images in each format the suite reads: COCO JSON, YOLO labels, loose VOC XML, a VOC devkit
folder and class folders. The synthetic generators use them to put their sets in every format (so tests and the
data-shape matrix run offline on all of them), and ``tests/fixtures/convert_formats.py`` converts a real VOC folder
keeping its split.

Detection writers take ``splits``: split name (``train``, ``val``, ``test``) -> the :class:`DetectionSample` of that
split, and the class names; image files are copied under their own names (which must be unique). Boxes are the
suite's pixel-edge ``x1, y1, x2, y2``:

- COCO ``bbox`` = ``[x1, y1, x2 - x1, y2 - y1]``; difficult objects are written ``iscrowd: 1`` (ignored when scored,
  as VOC's difficult ones);
- YOLO ``cx cy w h`` = ``((x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H)``, written with
  Python's shortest round-trip form so that reading them back gives the same boxes to float32 precision. YOLO has
  no difficult flag: difficult objects are written as ordinary ones;
- VOC XML ``xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2`` (1-based inclusive), with the flags.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchsuite.data.detection import DetectionSample

Splits = Mapping[str, Sequence[DetectionSample]]


def _number(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else value


def _copy_image(sample: DetectionSample, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(sample.path).name
    target = folder / name
    if target.exists():
        raise ValueError(f"{target}: two images named {name}; the writers keep file names, which must be unique")
    shutil.copyfile(sample.path, target)
    return name


def voc_xml(sample: DetectionSample, filename: str, classes: Sequence[str]) -> bytes:
    """One Pascal VOC annotation for ``sample`` (1-based inclusive boxes)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", sample.width), ("height", sample.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for box, label, difficult, truncated in zip(sample.boxes, sample.labels, sample.difficult, sample.truncated):
        el = ET.SubElement(root, "object")
        ET.SubElement(el, "name").text = classes[int(label)]
        ET.SubElement(el, "truncated").text = str(int(truncated))
        ET.SubElement(el, "difficult").text = str(int(difficult))
        bb = ET.SubElement(el, "bndbox")
        x1, y1, x2, y2 = (float(v) for v in box)
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bb, tag).text = repr(_number(value))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def write_coco(splits: Splits, classes: Sequence[str], out: Path, one_file: bool = False,
               category_ids: Sequence[int] | None = None) -> Path:
    """COCO JSON: ``out/images/`` and ``out/annotations/instances_<split>.json`` (or one ``instances.json`` with
    every image when ``one_file``). ``category_ids``: the id of each class (default 1, 2, ...; give gaps to test
    non-contiguous ids). Returns the spec's path: ``out`` (a folder of split files) or the one file."""
    out = Path(out)
    ids = list(category_ids) if category_ids is not None else list(range(1, len(classes) + 1))
    categories = [{"id": int(i), "name": name, "supercategory": "object"} for i, name in zip(ids, classes)]
    groups = {"all": [s for v in splits.values() for s in v]} if one_file else dict(splits)
    ann_id = 1
    image_id = 1
    written = out
    for split, samples in groups.items():
        images, annotations = [], []
        for sample in samples:
            name = _copy_image(sample, out / "images")
            images.append({"id": image_id, "file_name": name, "width": sample.width, "height": sample.height})
            for box, label, difficult in zip(sample.boxes, sample.labels, sample.difficult):
                x1, y1, x2, y2 = (float(v) for v in box)
                annotations.append({"id": ann_id, "image_id": image_id, "category_id": ids[int(label)],
                                    "bbox": [_number(x1), _number(y1), _number(x2 - x1), _number(y2 - y1)],
                                    "area": _number((x2 - x1) * (y2 - y1)), "iscrowd": int(difficult)})
                ann_id += 1
            image_id += 1
        path = out / "annotations" / ("instances.json" if one_file else f"instances_{split}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
        written = path if one_file else out
    return written


def yolo_line(label: int, box: Sequence[float], width: int, height: int) -> str:
    """One YOLO label line: ``class cx cy w h``, normalised by the image size, in shortest round-trip form."""
    x1, y1, x2, y2 = (float(v) for v in box)
    values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
    return " ".join([str(int(label)), *(repr(v) for v in values)])


def write_yolo(splits: Splits, classes: Sequence[str], out: Path, data_yaml: bool = True) -> Path:
    """The Ultralytics layout: ``out/images/<split>/``, ``out/labels/<split>/<stem>.txt`` and ``out/data.yaml``
    naming the split folders and the classes (``data_yaml`` False: ``out/images/``, ``out/labels/`` without split
    folders and a ``classes.txt``, so the reader draws the split). Returns ``out``."""
    out = Path(out)
    for split, samples in splits.items():
        sub = split if data_yaml else ""
        for sample in samples:
            name = _copy_image(sample, out / "images" / sub)
            lines = [yolo_line(int(lab), box, sample.width, sample.height)
                     for box, lab in zip(sample.boxes, sample.labels)]
            label = out / "labels" / sub / f"{Path(name).stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(f"{line}\n" for line in lines))
    if data_yaml:
        text = "".join(f"{s}: images/{s}\n" for s in splits)
        text += f"nc: {len(classes)}\nnames: {json.dumps(list(classes))}\n"
        (out / "data.yaml").write_text(text)
    else:
        (out / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return out


def write_vocxml(splits: Splits, classes: Sequence[str], out: Path, split_folders: bool = True,
                 beside: bool = False) -> Path:
    """Loose Pascal VOC XML without ``ImageSets``: each image with its ``<stem>.xml`` next to it
    (``out/<split>/``), or, with ``beside``, ``out/<split>/images/`` and ``out/<split>/annotations/``; without
    ``split_folders`` everything goes under ``out`` and the reader draws the split. Returns ``out``."""
    out = Path(out)
    for split, samples in splits.items():
        base = out / split if split_folders else out
        for sample in samples:
            name = _copy_image(sample, base / "images" if beside else base)
            xml_dir = base / "annotations" if beside else base
            xml_dir.mkdir(parents=True, exist_ok=True)
            (xml_dir / f"{Path(name).stem}.xml").write_bytes(voc_xml(sample, name, classes))
    return out


def write_voc_devkit(splits: Splits, classes: Sequence[str], out: Path) -> Path:
    """A VOC devkit folder (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/<split>.txt``); returns ``out``."""
    out = Path(out)
    main = out / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, samples in splits.items():
        ids = []
        for sample in samples:
            name = _copy_image(sample, out / "JPEGImages")
            (out / "Annotations").mkdir(exist_ok=True)
            (out / "Annotations" / f"{Path(name).stem}.xml").write_bytes(voc_xml(sample, name, classes))
            ids.append(Path(name).stem)
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return out


def write_imagefolder(out: Path, images: Sequence[np.ndarray], labels: Sequence[int], classes: Sequence[str],
                      splits: Sequence[str] | None = None, suffix: str = ".png") -> Path:
    """Class folders: ``out/<class>/<n>.png`` (or ``out/<split>/<class>/...`` with ``splits``, one per image).
    ``images``: ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 arrays of any sizes. Returns ``out``."""
    out = Path(out)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = out / (splits[i] if splits is not None else "") / classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image, np.uint8)).save(folder / f"{i:06d}{suffix}")
    return out
