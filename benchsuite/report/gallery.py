"""A gallery of test images per detector: true positives, false positives and misses in three colours.

Each detector is shown at its own operating point: the score threshold that maximises F1 over the whole
split. Every detection's outcome is the devkit's, as mAP50 counts it (:func:`benchsuite.metrics.detection.match`:
a duplicate of a found object is a false positive, a detection on a difficult object is not drawn). Detections
above the threshold are drawn green (true positive) or red (false positive); objects no kept detection found are
drawn in amber (missed). Every detector is shown on the same images, chosen by the detection task when it scored the
split (:func:`benchsuite.tasks.detection.gallery_picks`); their pixels and the ground truth come from the evidence
file it saved beside the predictions, so the gallery needs no data set.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchsuite.metrics.detection import FP, IGNORED, TP, match
from benchsuite.report.model import Group, ReportModel, _predictions_path, evidence_path
from benchsuite.report.plots import Plot, _one_per_pipeline
from benchsuite.results.evidence import load_evidence, unpack_ragged

log = logging.getLogger(__name__)

COLOURS = {"tp": (0, 158, 115), "fp": (213, 42, 42), "miss": (240, 170, 0)}
TILE = 260  # longer side of a drawn image, pixels


def best_f1_threshold(all_scores: np.ndarray, all_status: np.ndarray, positives: int) -> float:
    """The score threshold (keep ``score >= t``) that maximises F1; +inf when nothing is detected."""
    keep = all_status != IGNORED
    s, st = all_scores[keep], all_status[keep]
    if not len(s) or positives == 0:
        return float("inf")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(st[order] == TP)
    fp = np.cumsum(st[order] == FP)
    f1 = 2 * tp / (positives + tp + fp)
    return float(s[order][int(np.argmax(f1))])


@dataclass(frozen=True)
class _Truth:
    """One test image's ground truth, as the task's evidence file holds it."""

    image_id: str
    boxes: np.ndarray  # (M, 4) x1y1x2y2 pixels
    labels: np.ndarray  # (M,) int
    difficult: np.ndarray  # (M,) bool


@dataclass(frozen=True)
class _Split:
    """What the gallery needs of a split, read from an evidence file: ground truth and the picked images."""

    truth: list[_Truth]
    num_classes: int
    picks: list[int]
    images: dict[int, np.ndarray]

    @property
    def image_ids(self) -> list[str]:
        return [t.image_id for t in self.truth]


def _read_split(path: Path) -> _Split:
    ev = load_evidence(path)
    offsets = ev["gt_offsets"]
    boxes = unpack_ragged(ev["gt_boxes"].reshape(-1, 4), offsets)
    labels = unpack_ragged(ev["gt_labels"].astype(np.int64), offsets)
    difficult = unpack_ragged(ev["gt_difficult"].astype(bool), offsets)
    truth = [_Truth(str(i), b, lab, d) for i, b, lab, d in zip(ev["image_ids"], boxes, labels, difficult)]
    picks = [int(i) for i in ev["gallery_index"]]
    return _Split(truth, len(ev["classes"]), picks, {i: ev[f"gallery_image_{k}"] for k, i in enumerate(picks)})


def detection_status(data: _Split, boxes: list[np.ndarray], scores: list[np.ndarray], labels: list[np.ndarray]
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image ``(status (D_i,), matched (D_i,))``: each detection's devkit outcome (:data:`TP`, :data:`FP`,
    :data:`IGNORED`) and the index in the image of the object it was assigned (-1 for none)."""
    m = match([t.boxes for t in data.truth], [t.labels for t in data.truth], [t.difficult for t in data.truth],
              boxes, scores, labels, data.num_classes)
    local = np.where(m.matched[0] >= 0, m.matched[0] - m.gt_offsets[m.det_image], -1)
    return list(zip(m.per_image(m.status[0]), m.per_image(local)))


def _draw(image: np.ndarray, sample: _Truth, boxes: np.ndarray, status: np.ndarray, matched: np.ndarray,
          keep: np.ndarray) -> Image.Image:
    img = Image.fromarray(image)
    scale = TILE / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    found = set(matched[keep & (status == TP)].tolist())
    for j, b in enumerate(sample.boxes):
        if j not in found and not sample.difficult[j]:
            draw.rectangle([float(v) * scale for v in b], outline=COLOURS["miss"], width=3)
    for d in np.flatnonzero(keep & (status != IGNORED)):
        colour = COLOURS["tp"] if status[d] == TP else COLOURS["fp"]
        draw.rectangle([float(v) * scale for v in boxes[d]], outline=colour, width=2)
    return img


def detector_gallery(group: Group, run_dir: Path) -> list[Plot]:
    """One strip of images per successful detector of ``group``, from the evidence files its task saved (empty
    when there are none: a run folder written before evidence files)."""
    from benchsuite.tasks.per_image import load_ragged

    rows = _one_per_pipeline(group)
    if not rows:
        return []
    path = evidence_path(run_dir, rows[0].record)
    if not path.is_file():
        return []
    data = _read_split(path)
    picks = data.picks
    plots = []
    for r in rows:
        try:
            ids, pred = load_ragged(_predictions_path(run_dir, r.record))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("report: no gallery for %s (%s)", r.pipeline, exc)
            continue
        if ids != data.image_ids:
            continue
        boxes = [b.reshape(-1, 4) for b in pred["boxes"]]
        scores = [sc.reshape(-1) for sc in pred["scores"]]
        outcome = detection_status(data, boxes, scores, [lab.reshape(-1).astype(np.int64) for lab in pred["labels"]])
        positives = sum(int((~s.difficult).sum()) for s in data.truth)
        thr = best_f1_threshold(np.concatenate(scores) if scores else np.zeros(0),
                                np.concatenate([st for st, _ in outcome]) if outcome else np.zeros(0, np.int8),
                                positives)
        tiles = []
        for i in picks:
            status, matched = outcome[i]
            tiles.append(_draw(data.images[i], data.truth[i], boxes[i], status, matched, scores[i] >= thr))
        if not tiles:
            continue
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
                          f"{', '.join(data.truth[i].image_id for i in picks)}", buf.getvalue()))
    return plots


def all_galleries(model: ReportModel) -> dict[tuple[str, str, str], list[Plot]]:
    """The galleries of the groups whose task contributes one (its ``sections`` name ``"gallery"``)."""
    out = {}
    for g in model.groups:
        if "gallery" not in getattr(g.spec, "sections", ()):
            continue
        try:
            out[g.key] = detector_gallery(g, model.run_dir)
        except Exception as exc:
            log.warning("report: gallery of %s failed (%s: %s)", g.slug, type(exc).__name__, exc)
            out[g.key] = []
    return out
