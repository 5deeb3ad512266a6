"""A gallery of test images per detector: true positives, false positives and misses in three colours.

Each detector is shown at its own operating point: the score threshold that maximises F1 over the whole
split (matching at IoU 0.5 within a class, greedily in descending score, as VOC does). Detections above
it are drawn green (true positive) or red (false positive); objects no kept detection found are drawn in
amber (missed). Every detector is shown on the same images.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchsuite.ops.boxes import box_iou
from benchsuite.report.model import Group, ReportModel, _DataCache, _predictions_path
from benchsuite.report.plots import Plot, _one_per_pipeline

log = logging.getLogger(__name__)

COLOURS = {"tp": (0, 158, 115), "fp": (213, 42, 42), "miss": (240, 170, 0)}
TILE = 260  # longer side of a drawn image, pixels
IMAGES = 3
IOU = 0.5


def match_image(gt_boxes: np.ndarray, gt_labels: np.ndarray, gt_difficult: np.ndarray, boxes: np.ndarray,
                scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections, best score first.

    Returns ``(status, matched)``: ``status (D,)`` 1 true positive, 0 false positive, -1 matched a difficult
    object (ignored); ``matched (D,)`` the object index each detection took, or -1.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    status = np.zeros(len(boxes), np.int64)
    matched = np.full(len(boxes), -1, np.int64)
    if not len(boxes) or not len(gt_boxes):
        return status, matched
    iou = box_iou(boxes, gt_boxes)
    iou[labels[:, None] != gt_labels[None, :]] = 0.0
    taken = np.zeros(len(gt_boxes), bool)
    for d in order:
        cand = np.where(taken, -1.0, iou[d])
        j = int(np.argmax(cand))
        if cand[j] >= IOU:
            matched[d] = j
            if gt_difficult[j]:
                status[d] = -1
            else:
                status[d] = 1
                taken[j] = True
    return status, matched


def best_f1_threshold(all_scores: np.ndarray, all_status: np.ndarray, positives: int) -> float:
    """The score threshold (keep ``score >= t``) that maximises F1; +inf when nothing is detected."""
    keep = all_status >= 0
    s, st = all_scores[keep], all_status[keep]
    if not len(s) or positives == 0:
        return float("inf")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(st[order] == 1)
    fp = np.cumsum(st[order] == 0)
    f1 = 2 * tp / (positives + tp + fp)
    return float(s[order][int(np.argmax(f1))])


def _pick_images(data) -> list[int]:
    with_objects = [i for i, s in enumerate(data) if (~s.difficult).sum() > 0]
    pool = with_objects or list(range(len(data)))
    if len(pool) <= IMAGES:
        return pool
    return [pool[int(k)] for k in np.linspace(0, len(pool) - 1, IMAGES).round()]


def _draw(image: np.ndarray, sample, boxes, labels, status, matched, keep: np.ndarray) -> Image.Image:
    img = Image.fromarray(image)
    scale = TILE / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    found = set(matched[keep & (status == 1)].tolist())
    for j, b in enumerate(sample.boxes):
        if j not in found and not sample.difficult[j]:
            draw.rectangle([float(v) * scale for v in b], outline=COLOURS["miss"], width=3)
    for d in np.flatnonzero(keep & (status >= 0)):
        colour = COLOURS["tp"] if status[d] == 1 else COLOURS["fp"]
        draw.rectangle([float(v) * scale for v in boxes[d]], outline=colour, width=2)
    return img


def detector_gallery(group: Group, run_dir: Path, data_cache: _DataCache | None = None) -> list[Plot]:
    """One strip of images per successful detector of ``group`` (empty when the data cannot be reopened)."""
    from benchsuite.tasks.per_image import load_ragged

    if group.task != "detection":
        return []
    rows = _one_per_pipeline(group)
    if not rows:
        return []
    cache = data_cache or _DataCache(run_dir)
    data = cache.split(rows[0].record)
    if data is None:
        return []
    picks = _pick_images(data)
    images = {i: data.load_image(i) for i in picks}
    plots = []
    for r in rows:
        try:
            ids, pred = load_ragged(_predictions_path(run_dir, r.record))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("report: no gallery for %s (%s)", r.pipeline, exc)
            continue
        if ids != list(data.image_ids):
            continue
        per_image = []
        for i, s in enumerate(data):
            b, sc, lab = pred["boxes"][i].reshape(-1, 4), pred["scores"][i].reshape(-1), pred["labels"][i].reshape(-1)
            per_image.append((b, sc, lab.astype(np.int64), *match_image(s.boxes, s.labels, s.difficult, b, sc,
                                                                       lab.astype(np.int64))))
        scores = np.concatenate([p[1] for p in per_image]) if per_image else np.zeros(0)
        status = np.concatenate([p[3] for p in per_image]) if per_image else np.zeros(0, np.int64)
        positives = sum(int((~s.difficult).sum()) for s in data)
        thr = best_f1_threshold(scores, status, positives)
        tiles = []
        for i in picks:
            b, sc, lab, st, m = per_image[i]
            tiles.append(_draw(images[i], data[i], b, lab, st, m, sc >= thr))
        strip = Image.new("RGB", (sum(t.width for t in tiles) + 6 * (len(tiles) - 1), max(t.height for t in tiles)),
                          (255, 255, 255))
        x = 0
        for t in tiles:
            strip.paste(t, (x, 0))
            x += t.width + 6
        buf = io.BytesIO()
        strip.save(buf, format="PNG", optimize=True)
        thr_text = "no detections" if not np.isfinite(thr) else f"score >= {thr:.3g}"
        plots.append(Plot(f"{group.slug}-gallery-{r.pipeline}", f"{r.pipeline} ({r.family})",
                          f"kept detections: {thr_text} (best F1 on the split); images "
                          f"{', '.join(data[i].image_id for i in picks)}", buf.getvalue()))
    return plots


def all_galleries(model: ReportModel) -> dict[tuple[str, str, str], list[Plot]]:
    cache = _DataCache(model.run_dir)
    out = {}
    for g in model.groups:
        try:
            out[g.key] = detector_gallery(g, model.run_dir, cache)
        except Exception as exc:
            log.warning("report: gallery of %s failed (%s: %s)", g.slug, type(exc).__name__, exc)
            out[g.key] = []
    return out
