"""The proposals task: run a Proposer over a VOC-style split, validate its boxes, score recall."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Context, Proposer
from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import BOXES
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import OutputValidationError
from benchsuite.measure.timing import Stopwatch
from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.proposals import evaluate_proposals
from benchsuite.ops.boxes import check_boxes, clip_boxes
from benchsuite.results.evidence import Evidence
from benchsuite.tasks.base import ColumnSpec, MetricSpec, Scored, SplitPrediction, Task
from benchsuite.tasks.checks import PerImageChecks
from benchsuite.tasks.per_image import load_ragged, run_over_images, save_ragged, single_image_latency

#: proposals kept per image for scoring (the largest budget scored is 2,000): the best ones, in the proposer's
#: order; how many were past it is the record's ``output.proposals_beyond_cap``
MAX_STORED = 5000


def validate_proposals(out: Any, width: int, height: int, where: str) -> tuple[np.ndarray, int]:
    """Check one image's ranked boxes, clip them to the image; returns ``(boxes, dropped)``."""
    if not (isinstance(out, np.ndarray) or hasattr(out, "detach")):
        raise OutputValidationError(f"{where}: propose() returned a {type(out).__name__}; expected a numpy array "
                                    f"of shape (N, 4), x1 y1 x2 y2 pixels, best first")
    boxes = out.detach().cpu().numpy() if hasattr(out, "detach") else out
    problems = check_boxes(boxes, what=f"{where}: proposals")
    if problems:
        raise OutputValidationError("; ".join(problems))
    boxes = clip_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), width, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep][:MAX_STORED], int((~keep).sum())


class ProposalTask(Task):
    """Region proposals on VOC-style data: ranked class-agnostic boxes per image, scored by recall."""

    name = "proposals"
    description = "region proposals (Pascal VOC style): ranked boxes per image"
    needs = frozenset({BOXES})
    default_dataset = "voc2007"
    order = 2
    pipeline_base = Proposer
    required_methods = ("propose",)
    input_type = "one (H, W, 3) uint8 RGB image per propose() call (propose_batch: a list of them)"
    output_type = "(N, 4) x1y1x2y2 pixel boxes, best first"
    batch_size_attribute = "propose_batch_size"
    default_batch_size = 1
    metrics = (MetricSpec("recall_at_1000_iou50", "recall@1000 (IoU 0.5)"),
               MetricSpec("recall_at_1000_iou70", "recall@1000 (IoU 0.7)"), MetricSpec("mabo", "MABO"),
               MetricSpec("proposals_per_image", "proposals/image", points=False))
    primary_metric = "recall_at_1000_iou50"
    interval_metrics = ("recall_at_1000_iou50", "mabo")
    interval_statistic = f"{bs.DETECTION_RESAMPLES} resamples of images' recall counts and best overlaps"
    columns = (ColumnSpec("recall@1000 (0.5)", "recall_at_1000_iou50"),
               ColumnSpec("95% CI", "recall_at_1000_iou50", "interval"),
               ColumnSpec("recall@1000 (0.7)", "recall_at_1000_iou70"), ColumnSpec("MABO", "mabo"),
               ColumnSpec("MABO 95% CI", "mabo", "interval"),
               ColumnSpec("proposals/image", "proposals_per_image", "auto"))
    per_class_title = "average best overlap"
    plots = ("tradeoff", "per_class", "recall_curve")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_train_images": 24, "max_val_images": 8, "max_test_images": 16, "epochs": 1}}
    check_splits = synthetic_voc.tiny_splits
    checks = PerImageChecks("propose", lambda out, w, h, n, where: validate_proposals(out, w, h, where)[0],
                            "proposals", boxes=lambda out: (out, None))

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        return dict(metrics.get("abo_per_class") or {})

    def predict_split(self, pipeline: Proposer, data: DetectionSet, ctx: Context, batch_size: int, split: str
                      ) -> SplitPrediction:
        with Stopwatch(ctx.device, ctx.num_threads) as phase:
            raw, seconds = run_over_images(pipeline.propose_batch, data, batch_size, ctx.device, ctx.progress,
                                           f"propose {split}")
        kept, dropped, returned, beyond = [], 0, 0, 0
        for sample, out in zip(data, raw):
            boxes, d = validate_proposals(out, sample.width, sample.height, f"image {sample.image_id}")
            n = len(np.asarray(out).reshape(-1, 4)) if np.asarray(out).size else 0
            returned += n
            beyond += n - d - len(boxes)  # valid proposals past the MAX_STORED best: not scored
            kept.append(boxes)
            dropped += d
        return SplitPrediction(kept, seconds, phase.conditions,
                               {"proposals_returned": returned, "boxes_dropped_outside_image": dropped,
                                "proposals_beyond_cap": beyond, "proposals_cap": MAX_STORED})

    def save_split(self, path: Path, data: DetectionSet, outputs: list[np.ndarray]) -> None:
        save_ragged(path, data.image_ids, boxes=outputs)

    def latency(self, pipeline: Proposer, data: DetectionSet, count: int, warmup: int, device: str
                ) -> dict[str, float]:
        return single_image_latency(pipeline.propose, data, count, warmup, device)

    def score(self, data: DetectionSet, predictions: Path, job_dir: Path, split: str) -> Scored:
        try:  # the worker's file is checked before it is loaded: the pipeline ran in that process
            ids, pred = load_ragged(predictions, max_per_image=MAX_STORED)
        except ValueError as exc:
            raise OutputValidationError(str(exc)) from None
        if ids != data.image_ids:
            raise OutputValidationError(f"{predictions.name}: images differ from the {split} split")
        gt_boxes, gt_labels = [s.boxes for s in data], [s.labels for s in data]
        gt_difficult = [s.difficult for s in data]
        metrics = evaluate_proposals(gt_boxes, gt_labels, gt_difficult, pred["boxes"], list(data.classes))
        ev = bs.proposal_evidence(gt_boxes, gt_labels, gt_difficult, pred["boxes"], data.num_classes)
        return Scored(metrics, {}, {**ev.to_arrays(), "image_ids": np.asarray(data.image_ids, str)})

    def intervals(self, evidence: Evidence) -> dict[str, list[float] | None]:
        rec, mabo = bs.proposal_resamples(bs.ProposalEvidence.from_arrays(dict(evidence.arrays)))
        out: dict[str, list[float] | None] = {}
        for key, values in (("recall_at_1000_iou50", rec), ("mabo", mabo)):
            iv = bs.percentile_interval(values)
            out[key] = list(iv) if iv else None
        return out
