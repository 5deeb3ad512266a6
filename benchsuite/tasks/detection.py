"""The detection task: run a Detector over a VOC-style split, validate its boxes, score them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.api import Budget, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import OutputValidationError
from benchsuite.metrics.detection import evaluate_detections
from benchsuite.metrics.export import write_coco_json, write_voc_results
from benchsuite.ops.boxes import check_detections, clip_boxes
from benchsuite.runner.timing import Stopwatch
from benchsuite.tasks.base import split_cap, timed_fit, timing_method
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


class DetectionTask:
    name = "detection"
    dataset_kind = "detection"

    def execute(self, pipeline: Detector, dataset: Any, ctx: Context, eval_splits: list[str], job_dir: Path,
                latency_images: int, latency_warmup: int) -> dict[str, Any]:
        budget = ctx.budget
        train = dataset.load("train", budget.max_train_images)
        val = dataset.load("val", budget.max_val_images)
        fit_timing = timed_fit(pipeline, train, val, ctx)
        batch_size = max(1, int(getattr(pipeline, "detect_batch_size", 1)))
        splits: dict[str, Any] = {}
        test_data: DetectionSet | None = None
        for split in eval_splits:
            data = val if split == "val" else dataset.load(split, split_cap(budget, split))
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
            file = job_dir / f"predictions-{split}.npz"
            save_ragged(file, data.image_ids, boxes=[d.boxes for d in dets], scores=[d.scores for d in dets],
                        labels=[d.labels for d in dets])
            n = len(data)
            splits[split] = {
                "predictions": file.name, "predict_s": seconds, "images": n,
                "images_per_s": n / seconds if seconds > 0 else float("nan"),
                "seconds_per_image": seconds / n if n else float("nan"),
                "predict": phase.conditions,
                "output": {"detections": int(sum(len(d) for d in dets)), "boxes_clipped": clipped,
                           "boxes_dropped_outside_image": dropped},
            }
            if split == "test" or test_data is None:
                test_data = data
        latency = {}
        if test_data is not None:
            latency = single_image_latency(pipeline.detect, test_data, latency_images, latency_warmup, ctx.device)
        method = timing_method(ctx, batch_size, False, latency_images, latency_warmup)
        return {"timing": {**fit_timing, "train_images": len(train), "val_images": len(val), **latency,
                           "method": method},
                "splits": splits}

    def evaluate(self, dataset: Any, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        data: DetectionSet = dataset.load(split, split_cap(budget, split))
        ids, pred = load_ragged(predictions)
        if ids != data.image_ids:
            raise OutputValidationError(f"{predictions.name}: images differ from the {split} split")
        classes = list(data.classes)
        gt_boxes = [s.boxes for s in data]
        gt_labels = [s.labels for s in data]
        gt_difficult = [s.difficult for s in data]
        metrics = evaluate_detections(gt_boxes, gt_labels, gt_difficult, pred["boxes"], pred["scores"],
                                      pred["labels"], classes)
        export = job_dir / f"export-{split}"
        write_voc_results(export / "voc", ids, pred["boxes"], pred["scores"], pred["labels"], classes)
        sizes = [(s.width, s.height) for s in data]
        write_coco_json(export / "coco_ground_truth.json", export / "coco_detections.json", ids, sizes,
                        gt_boxes, gt_labels, gt_difficult, pred["boxes"], pred["scores"], pred["labels"], classes)
        return metrics, {"voc_results": f"export-{split}/voc",
                         "coco_ground_truth": f"export-{split}/coco_ground_truth.json",
                         "coco_detections": f"export-{split}/coco_detections.json"}
