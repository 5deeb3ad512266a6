"""Write detections (and ground truth) in the official tools' formats, so numbers can be checked there.

- :func:`write_voc_results`: one ``<prefix><class>.txt`` per class, as the Pascal VOC devkit reads them (a class
  name that is not a plain file name gets a safe one, listed in ``classes.json`` beside the files).
- :func:`write_coco_json`: a COCO ground-truth file and a COCO results file for pycocotools' ``COCOeval``.

Boxes come in the suite's convention (``x1, y1, x2, y2`` pixels, no "+1"; see :mod:`benchsuite.ops.boxes`).
Files are written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchsuite.ops.boxes import as_boxes
from benchsuite.results.atomic import atomic_write_text
from benchsuite.results.safe_paths import inside, safe_name


def _number(value: float) -> str:
    """Shortest text that reads back as the same float (``repr``); integral values without ``.0``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def write_voc_results(
    folder: Path | str,
    image_ids: Sequence[str],
    det_boxes: Sequence[np.ndarray],
    det_scores: Sequence[np.ndarray],
    det_labels: Sequence[np.ndarray],
    class_names: Sequence[str],
    prefix: str = "comp4_det_test_",
) -> list[Path]:
    """Write the VOC devkit's per-class detection files; returns their paths (one per class, in order).

    Each line is ``image_id score xmin ymin xmax ymax`` with VOC's 1-based inclusive coordinates:
    ``xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2``. Numbers are written at full precision (a
    class without detections gets an empty file, which the devkit reads as "no detections").

    Class names come from the data: a name that is not a plain file name (a ``/``, ``..``, a very long name) is
    made safe (:func:`benchsuite.results.safe_paths.safe_name`: a slug and a short hash) and every file stays inside
    ``folder``; when any name was changed, ``classes.json`` in ``folder`` maps each class name to its file.

    Args:
        folder: where the files go (created if needed).
        image_ids: per image its VOC id (``"000005"``).
        det_boxes: per image ``(D_i, 4)``; det_scores: per image ``(D_i,)``; det_labels: per image
            ``(D_i,)`` class indices.
        class_names: class ``c`` goes to ``<prefix><class_names[c]>.txt``.
    """
    if not len(image_ids) == len(det_boxes) == len(det_scores) == len(det_labels):
        raise ValueError("write_voc_results: per-image lists of different lengths")
    lines: list[list[str]] = [[] for _ in class_names]
    for image_id, boxes, scores, labels in zip(image_ids, det_boxes, det_scores, det_labels):
        b = as_boxes(boxes)
        s = np.asarray(scores, np.float64).reshape(-1)
        lab = np.asarray(labels, np.int64).reshape(-1)
        if not len(b) == len(s) == len(lab):
            raise ValueError(f"image {image_id}: {len(b)} boxes, {len(s)} scores, {len(lab)} labels")
        voc = b + np.array([1.0, 1.0, 0.0, 0.0])
        for box, score, label in zip(voc, s, lab):
            if not 0 <= label < len(class_names):
                raise ValueError(f"image {image_id}: label {label} outside [0, {len(class_names)})")
            lines[label].append(" ".join([str(image_id), _number(score), *(_number(v) for v in box)]))
    folder = Path(folder)
    paths = []
    files = {}
    for name, rows in zip(class_names, lines):
        file = safe_name(f"{prefix}{name}", 240) + ".txt"
        files[str(name)] = file
        path = inside(folder, file, what="detection file") if folder.is_dir() else folder / file
        atomic_write_text(path, "".join(row + "\n" for row in rows))
        paths.append(path)
    if any(file != f"{prefix}{name}.txt" for name, file in files.items()):
        atomic_write_text(folder / "classes.json", json.dumps(files, indent=2, sort_keys=True) + "\n")
    return paths


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` COCO ``[x, y, w, h]`` from ``x1, y1, x2, y2``; ``w = x2 - x1`` as the metrics compute it."""
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)


def coco_dicts(
    image_ids: Sequence[object],
    sizes: Sequence[tuple[int, int]],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray] | None,
    det_boxes: Sequence[np.ndarray],
    det_scores: Sequence[np.ndarray],
    det_labels: Sequence[np.ndarray],
    class_names: Sequence[str],
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The COCO ground-truth dataset and results list that :func:`write_coco_json` writes (see there)."""
    n = len(image_ids)
    if not n == len(sizes) == len(gt_boxes) == len(gt_labels) == len(det_boxes) == len(det_scores) == len(
            det_labels) or (gt_difficult is not None and len(gt_difficult) != n):
        raise ValueError("write_coco_json: per-image lists of different lengths")
    images, annotations, results = [], [], []
    for i in range(n):
        coco_id = i + 1
        width, height = (int(v) for v in sizes[i])
        images.append({"id": coco_id, "file_name": str(image_ids[i]), "width": width, "height": height})
        g = as_boxes(gt_boxes[i])
        g_lab = np.asarray(gt_labels[i], np.int64).reshape(-1)
        g_diff = (np.zeros(len(g), bool) if gt_difficult is None
                  else np.asarray(gt_difficult[i], bool).reshape(-1))
        for box, label, diff in zip(_xywh(g), g_lab, g_diff):
            annotations.append({
                "id": len(annotations) + 1,  # ids start at 1: pycocotools reads id 0 as "no match"
                "image_id": coco_id,
                "category_id": int(label) + 1,
                "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
                "ignore": int(diff),
            })
        d = as_boxes(det_boxes[i])
        d_scores = np.asarray(det_scores[i], np.float64).reshape(-1)
        d_lab = np.asarray(det_labels[i], np.int64).reshape(-1)
        for box, score, label in zip(_xywh(d), d_scores, d_lab):
            results.append({"image_id": coco_id, "category_id": int(label) + 1,
                            "bbox": [float(v) for v in box], "score": float(score)})
    categories = [{"id": c + 1, "name": name, "supercategory": "none"} for c, name in enumerate(class_names)]
    dataset = {"info": {"description": "benchsuite export"}, "images": images, "annotations": annotations,
               "categories": categories}
    return dataset, results


def write_coco_json(
    gt_path: Path | str,
    det_path: Path | str,
    image_ids: Sequence[object],
    sizes: Sequence[tuple[int, int]],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray] | None,
    det_boxes: Sequence[np.ndarray],
    det_scores: Sequence[np.ndarray],
    det_labels: Sequence[np.ndarray],
    class_names: Sequence[str],
) -> None:
    """Write a COCO ground-truth file and a COCO results file for pycocotools.

    Ids: image ``i`` of the lists gets COCO id ``i + 1`` (its own id goes to ``file_name``), so
    pycocotools' sorted image ids follow the list order, as the suite's metrics do for tied scores;
    class ``c`` gets category id ``c + 1``; annotation ids count from 1. Boxes are ``[x, y, w, h]`` with
    ``w = x2 - x1``, ``area = w * h``, ``iscrowd = 0``. Difficult objects carry ``"ignore": 1``; note that
    pycocotools overwrites ``ignore`` with ``iscrowd`` when it loads annotations, so with difficult
    objects its numbers count them as ordinary positives (the suite's metrics ignore them).

    Args:
        gt_path, det_path: the two files to write.
        image_ids: per image its own id (any value; written as ``file_name``).
        sizes: per image ``(width, height)`` in pixels (the order of :func:`~benchsuite.ops.boxes.clip_boxes`;
            note that ``image.shape[:2]`` is ``(height, width)``).
        gt_boxes, gt_labels, gt_difficult: per image ``(M_i, 4)``, ``(M_i,)``, ``(M_i,)`` (None: no
            difficult objects).
        det_boxes, det_scores, det_labels: per image ``(D_i, 4)``, ``(D_i,)``, ``(D_i,)``.
        class_names: the category names.
    """
    dataset, results = coco_dicts(image_ids, sizes, gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores,
                                  det_labels, class_names)
    atomic_write_text(Path(gt_path), json.dumps(dataset) + "\n")
    atomic_write_text(Path(det_path), json.dumps(results) + "\n")
