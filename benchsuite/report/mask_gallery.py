"""The mask gallery of a segmentation table: the same few test images for every pipeline, each predicted label map
laid over the image in one colour per class, with the truth's outlines drawn on top.

The images and their truth masks come from the evidence file the segmentation task saved when it scored the split
(:mod:`benchsuite.tasks.segmentation`: ``gallery_index``, ``gallery_image_<k>``, ``gallery_truth_<k>``, at most
:data:`~benchsuite.tasks.segmentation.GALLERY_SIDE` pixels on the longer side), each pipeline's label maps from its
predictions file: the gallery needs no data set.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchsuite.data.voc_colours import VOID, voc_palette
from benchsuite.metrics.segmentation import boundary_map
from benchsuite.report.model import Group, _predictions_path, evidence_path
from benchsuite.report.plots import Plot, _one_per_pipeline
from benchsuite.results.evidence import load_evidence

log = logging.getLogger(__name__)

#: class colours, class 1 first (class 0, background, is left uncoloured): Okabe-Ito, then the VOC colour map
NAMED_COLOURS = (((230, 159, 0), "orange"), ((86, 180, 233), "sky blue"), ((0, 158, 115), "green"),
                 ((240, 228, 66), "yellow"), ((0, 114, 178), "blue"), ((213, 94, 0), "vermillion"),
                 ((204, 121, 167), "pink"))
VOID_RGB = (200, 200, 200)
ALPHA = 0.55
GAP = 6


def class_colours(num_classes: int) -> list[tuple[tuple[int, int, int], str]]:
    """``(rgb, colour name)`` of classes ``1 .. num_classes - 1``."""
    voc = voc_palette(max(num_classes, 1))
    out = []
    for k in range(1, num_classes):
        if k <= len(NAMED_COLOURS):
            out.append(NAMED_COLOURS[k - 1])
        else:
            rgb = tuple(int(v) for v in voc[k])
            out.append((rgb, f"rgb {rgb[0]},{rgb[1]},{rgb[2]}"))  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def overlay(image: np.ndarray, labels: np.ndarray, num_classes: int, outline: np.ndarray | None = None
            ) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8, in grey so that the class colours stand out, with the classes of ``labels``
    ``(H, W)`` laid over it (background left as it is, void in light grey) and the pixels of ``outline`` in white."""
    grey = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    out = np.repeat(grey[..., None], 3, axis=2)
    colours = np.zeros((256, 3), np.float32)
    for k, (rgb, _) in enumerate(class_colours(num_classes), start=1):
        colours[k] = rgb
    colours[VOID] = VOID_RGB
    painted = ((labels != 0) & (labels < num_classes)) | (labels == VOID)
    out[painted] = (1 - ALPHA) * out[painted] + ALPHA * colours[labels[painted]]
    if outline is not None:
        out[outline] = 255
    return np.clip(out, 0, 255).astype(np.uint8)


def _strip(tiles: list[np.ndarray]) -> bytes:
    height = max(t.shape[0] for t in tiles)
    strip = Image.new("RGB", (sum(t.shape[1] for t in tiles) + GAP * (len(tiles) - 1), height), (255, 255, 255))
    x = 0
    for t in tiles:
        strip.paste(Image.fromarray(t), (x, 0))
        x += t.shape[1] + GAP
    buf = io.BytesIO()
    strip.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def mask_gallery(group: Group, run_dir: Path) -> tuple[list[Plot], list[str]]:
    """``(strips, class names)``: a strip of the picked test images, one of their truth, and one per successful
    pipeline of ``group`` with its label maps (empty without evidence files)."""
    from benchsuite.tasks.segmentation import load_label_maps

    rows = _one_per_pipeline(group)
    path = next((p for p in (evidence_path(run_dir, r.record) for r in rows) if p.is_file()), None)
    if path is None:
        return [], []
    ev = load_evidence(path)
    if "gallery_index" not in ev:
        return [], []
    classes = [str(c) for c in ev["classes"]]
    ids = [str(i) for i in ev["image_ids"]]
    picks = [int(i) for i in ev["gallery_index"]]
    images = [_rgb(ev[f"gallery_image_{k}"]) for k in range(len(picks))]
    truths = [ev[f"gallery_truth_{k}"].astype(np.uint8) for k in range(len(picks))]
    if not picks:
        return [], classes
    outlines = [boundary_map((t != 0) & (t != VOID)) for t in truths]
    names = ", ".join(ids[i] for i in picks)
    n = len(classes)
    plots = [Plot(f"{group.slug}-masks-images", "Images", f"test images {names}", _strip(images)),
             Plot(f"{group.slug}-masks-truth", "Truth", "the annotated classes (void in grey)",
                  _strip([overlay(im, t, n) for im, t in zip(images, truths)]))]
    for r in rows:
        try:
            pred_ids, maps = load_label_maps(_predictions_path(run_dir, r.record))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("report: no mask gallery for %s (%s)", r.pipeline, exc)
            continue
        if pred_ids != ids:
            continue
        tiles = []
        for k, i in enumerate(picks):
            h, w = truths[k].shape
            small = cv2.resize(maps[i], (w, h), interpolation=cv2.INTER_NEAREST)
            tiles.append(overlay(images[k], small, n, outlines[k]))
        plots.append(Plot(f"{group.slug}-masks-{r.pipeline}", f"{r.pipeline} ({r.family})",
                          "predicted classes; white: the truth's object outlines", _strip(tiles)))
    return plots, classes
