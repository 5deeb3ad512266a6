"""The detection task: run a Detector over a VOC-style split, validate its boxes, score them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Context, Detections, Detector
from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import BOXES
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import OutputValidationError
from benchsuite.measure.timing import Stopwatch
from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.detection import Matches, match, summarize
from benchsuite.metrics.export import write_coco_json, write_voc_results
from benchsuite.ops.boxes import check_detections, clip_boxes
from benchsuite.results.evidence import Evidence, pack_ragged
from benchsuite.tasks.base import ColumnSpec, MetricSpec, Scored, SplitPrediction, Task
from benchsuite.tasks.checks import PerImageChecks
from benchsuite.tasks.per_image import load_ragged, run_over_images, save_ragged, single_image_latency


def validate_detections(out: Any, width: int, height: int, num_classes: int, where: str
                        ) -> tuple[Detections, int, int]:
    """Check one image's output and clip it to the image.

    Returns ``(detections, boxes_clipped, boxes_dropped)``: boxes reaching outside the image are
    clipped; boxes left with no area by the clipping (entirely outside) are dropped and counted.
    """
    if isinstance(out, Detections):
        boxes, scores, labels = out.boxes, out.scores, out.labels
    elif isinstance(out, dict) and {"boxes", "scores", "labels"} <= out.keys():
        boxes, scores, labels = out["boxes"], out["scores"], out["labels"]
    elif isinstance(out, (tuple, list)) and len(out) == 3:
        boxes, scores, labels = out
    else:
        raise OutputValidationError(f"{where}: detect() returned {type(out).__name__}; expected Detections or "
                                    f"(boxes, scores, labels)")
    for name, value in (("boxes", boxes), ("scores", scores), ("labels", labels)):
        if not (isinstance(value, np.ndarray) or hasattr(value, "detach")):
            raise OutputValidationError(f"{where}: detect() returned {name} as a {type(value).__name__}; expected "
                                        f"a numpy array (boxes (N, 4), scores (N,), labels (N,))")
    boxes, scores, labels = (v.detach().cpu().numpy() if hasattr(v, "detach") else v for v in (boxes, scores, labels))
    problems = check_detections(boxes, scores, labels, num_classes)
    if problems:
        raise OutputValidationError(f"{where}: " + "; ".join(problems))
    # float64 as returned: rounding to float32 could move an IoU that sits exactly on a threshold
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    clipped = clip_boxes(boxes, width, height)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    n_clipped = int((np.any(clipped != boxes, axis=1) & keep).sum())  # dropped boxes are counted apart
    return Detections(clipped[keep], scores[keep], labels[keep]), n_clipped, int((~keep).sum())


#: test images whose pixels the evidence keeps for the report's gallery of detections
GALLERY_IMAGES = 3


def gallery_picks(difficult: list[np.ndarray], count: int = GALLERY_IMAGES) -> list[int]:
    """Indices of ``count`` images spread over the split, among those with a non-difficult object (else all);
    ``difficult`` holds each image's per-object difficult flags. Every detector is shown on the same images."""
    with_objects = [i for i, d in enumerate(difficult) if (~np.asarray(d, bool)).sum() > 0]
    pool = with_objects or list(range(len(difficult)))
    if len(pool) <= count:
        return pool
    return [pool[int(k)] for k in np.linspace(0, len(pool) - 1, count).round()]


class DetectionTask(Task):
    """Object detection on VOC-style data: boxes, scores and class labels per image, scored by VOC mAP50."""

    name = "detection"
    description = "object detection (Pascal VOC style): labelled boxes per image"
    needs = frozenset({BOXES})
    default_dataset = "voc2007"
    order = 1
    pipeline_base = Detector
    required_methods = ("fit", "detect")
    input_type = "one (H, W, 3) uint8 RGB image per detect() call (detect_batch: a list of them)"
    output_type = "Detections or (boxes (N, 4) x1y1x2y2 pixels, scores (N,), labels (N,))"
    batch_size_attribute = "detect_batch_size"
    default_batch_size = 1
    metrics = (MetricSpec("map50", "mAP50"), MetricSpec("coco_ap", "COCO AP"), MetricSpec("ap_small", "AP small"),
               MetricSpec("ap_medium", "AP medium"), MetricSpec("ap_large", "AP large"),
               MetricSpec("lamr", "LAMR", higher_is_better=False))
    primary_metric = "map50"
    interval_metrics = ("map50",)
    interval_statistic = (f"{bs.DETECTION_RESAMPLES} resamples of images, detections matched once on the full "
                          f"split")
    columns = (ColumnSpec("mAP50", "map50"), ColumnSpec("95% CI", "map50", "interval"),
               ColumnSpec("COCO AP", "coco_ap"), ColumnSpec("AP small", "ap_small"),
               ColumnSpec("AP medium", "ap_medium"), ColumnSpec("AP large", "ap_large"),
               ColumnSpec("LAMR", "lamr", optional=True))
    per_class_title = "AP at IoU 0.5"
    plots = ("tradeoff", "per_class", "pr_curves", "size_ap")
    sections = ("gallery",)
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_train_images": 24, "max_val_images": 8, "max_test_images": 16, "epochs": 1, "time_limit_s": 420}}
    check_splits = synthetic_voc.tiny_splits
    checks = PerImageChecks("detect", lambda out, w, h, n, where: validate_detections(out, w, h, n, where)[0],
                            "detections")

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        return {k: v.get("ap50") for k, v in (metrics.get("per_class") or {}).items()}

    def predict_split(self, pipeline: Detector, data: DetectionSet, ctx: Context, batch_size: int, split: str
                      ) -> SplitPrediction:
        with Stopwatch(ctx.device, ctx.num_threads) as phase:
            raw, seconds = run_over_images(pipeline.detect_batch, data, batch_size, ctx.device, ctx.progress,
                                           f"detect {split}")
        dets, clipped, dropped = [], 0, 0
        for sample, out in zip(data, raw):
            d, c, r = validate_detections(out, sample.width, sample.height, data.num_classes,
                                          f"image {sample.image_id}")
            dets.append(d)
            clipped += c
            dropped += r
        return SplitPrediction(dets, seconds, phase.conditions,
                               {"detections": int(sum(len(d) for d in dets)), "boxes_clipped": clipped,
                                "boxes_dropped_outside_image": dropped})

    def save_split(self, path: Path, data: DetectionSet, outputs: list[Detections]) -> None:
        save_ragged(path, data.image_ids, boxes=[d.boxes for d in outputs], scores=[d.scores for d in outputs],
                    labels=[d.labels for d in outputs])

    def latency(self, pipeline: Detector, data: DetectionSet, count: int, warmup: int, device: str
                ) -> dict[str, float]:
        return single_image_latency(pipeline.detect, data, count, warmup, device)

    def score(self, data: DetectionSet, predictions: Path, job_dir: Path, split: str) -> Scored:
        ids, pred = load_ragged(predictions)
        if ids != data.image_ids:
            raise OutputValidationError(f"{predictions.name}: images differ from the {split} split")
        classes = list(data.classes)
        gt_boxes = [s.boxes for s in data]
        gt_labels = [s.labels for s in data]
        gt_difficult = [s.difficult for s in data]
        matches = match(gt_boxes, gt_labels, gt_difficult, pred["boxes"], pred["scores"], pred["labels"],
                        len(classes))
        export = job_dir / f"export-{split}"
        write_voc_results(export / "voc", ids, pred["boxes"], pred["scores"], pred["labels"], classes)
        sizes = [(s.width, s.height) for s in data]
        write_coco_json(export / "coco_ground_truth.json", export / "coco_detections.json", ids, sizes,
                        gt_boxes, gt_labels, gt_difficult, pred["boxes"], pred["scores"], pred["labels"], classes)
        artifacts = {"voc_results": f"export-{split}/voc",
                     "coco_ground_truth": f"export-{split}/coco_ground_truth.json",
                     "coco_detections": f"export-{split}/coco_detections.json"}
        return Scored(summarize(matches, classes), artifacts, self._evidence(data, matches))

    @staticmethod
    def _evidence(data: DetectionSet, matches: Matches) -> dict[str, Any]:
        """The bootstrap's per-detection outcomes, the ground truth and the gallery's images (see
        :func:`gallery_picks`): everything the report needs without the data set."""
        gt_difficult = [np.asarray(s.difficult, bool).reshape(-1) for s in data]
        boxes, offsets = pack_ragged([np.asarray(s.boxes, np.float64).reshape(-1, 4) for s in data], (4,))
        labels, _ = pack_ragged([np.asarray(s.labels, np.int64).reshape(-1) for s in data])
        difficult, _ = pack_ragged(gt_difficult)
        picks = gallery_picks(gt_difficult)
        return {**bs.detection_evidence(matches).to_arrays(), "image_ids": np.asarray(data.image_ids, str),
                "classes": np.asarray(data.classes, str), "gt_boxes": boxes.astype(np.float64),
                "gt_labels": labels.astype(np.int64), "gt_difficult": difficult.astype(bool), "gt_offsets": offsets,
                "gallery_index": np.asarray(picks, np.int64),
                **{f"gallery_image_{k}": data.load_image(i) for k, i in enumerate(picks)}}

    def intervals(self, evidence: Evidence) -> dict[str, list[float] | None]:
        ev = bs.DetectionEvidence.from_arrays(dict(evidence.arrays))
        iv = bs.percentile_interval(bs.map50_resamples(ev))
        return {"map50": list(iv) if iv else None}
