"""The proposals task: run a Proposer over a VOC-style split, validate its boxes, score recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.api import Budget, Context, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import OutputValidationError
from benchsuite.metrics.proposals import evaluate_proposals
from benchsuite.ops.boxes import check_boxes, clip_boxes
from benchsuite.runner.timing import Stopwatch
from benchsuite.tasks.base import split_cap, timed_fit, timing_method
from benchsuite.tasks.per_image import load_ragged, run_over_images, save_ragged, single_image_latency

#: proposals kept per image for scoring (the largest budget scored is 2,000)
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


class ProposalTask:
    name = "proposals"
    dataset_kind = "detection"

    def execute(self, pipeline: Proposer, dataset: Any, ctx: Context, eval_splits: list[str], job_dir: Path,
                latency_images: int, latency_warmup: int) -> dict[str, Any]:
        budget = ctx.budget
        train = dataset.load("train", budget.max_train_images)
        val = dataset.load("val", budget.max_val_images)
        fit_timing = timed_fit(pipeline, train, val, ctx)
        batch_size = max(1, int(getattr(pipeline, "propose_batch_size", 1)))
        splits: dict[str, Any] = {}
        test_data: DetectionSet | None = None
        for split in eval_splits:
            data = val if split == "val" else dataset.load(split, split_cap(budget, split))
            with Stopwatch(ctx.device, ctx.num_threads) as phase:
                raw, seconds = run_over_images(pipeline.propose_batch, data, batch_size, ctx.device, ctx.progress,
                                               f"propose {split}")
            kept, dropped, returned = [], 0, 0
            for sample, out in zip(data, raw):
                boxes, d = validate_proposals(out, sample.width, sample.height, f"image {sample.image_id}")
                returned += len(np.asarray(out).reshape(-1, 4)) if np.asarray(out).size else 0
                kept.append(boxes)
                dropped += d
            file = job_dir / f"predictions-{split}.npz"
            save_ragged(file, data.image_ids, boxes=kept)
            n = len(data)
            splits[split] = {
                "predictions": file.name, "predict_s": seconds, "images": n,
                "images_per_s": n / seconds if seconds > 0 else float("nan"),
                "seconds_per_image": seconds / n if n else float("nan"),
                "predict": phase.conditions,
                "output": {"proposals_returned": returned, "boxes_dropped_outside_image": dropped},
            }
            if split == "test" or test_data is None:
                test_data = data
        latency = {}
        if test_data is not None:
            latency = single_image_latency(pipeline.propose, test_data, latency_images, latency_warmup, ctx.device)
        method = timing_method(ctx, batch_size, False, latency_images, latency_warmup)
        return {"timing": {**fit_timing, "train_images": len(train), **latency, "method": method}, "splits": splits}

    def evaluate(self, dataset: Any, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        data: DetectionSet = dataset.load(split, split_cap(budget, split))
        ids, pred = load_ragged(predictions)
        if ids != data.image_ids:
            raise OutputValidationError(f"{predictions.name}: images differ from the {split} split")
        metrics = evaluate_proposals([s.boxes for s in data], [s.labels for s in data], [s.difficult for s in data],
                                     pred["boxes"], list(data.classes))
        return metrics, {}
