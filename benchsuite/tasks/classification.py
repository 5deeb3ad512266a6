"""The classification task: run a Classifier on CIFAR-style data, validate its output, score it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.api import Budget, Classifier, ClassifierOutput, Context, batched
from benchsuite.data.datasets import Cifar10Dataset
from benchsuite.errors import OutputValidationError
from benchsuite.metrics.classification import classification_metrics, confusion_matrix, macro_f1
from benchsuite.runner.timing import Stopwatch, measure_latency
from benchsuite.tasks.base import split_cap, timed_fit, timing_method

VARIANT_PREFIX = "variant::"


def _is_array(value: Any) -> bool:
    """A numpy array or an array-like tensor (torch): the containers a prediction may come in."""
    return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "shape"))


def _as_labels(value: Any, n: int, num_classes: int, what: str) -> np.ndarray:
    if not _is_array(value):
        raise OutputValidationError(f"{what}: a {type(value).__name__}; expected a numpy array of shape ({n},) "
                                    f"holding integer class indices (np.asarray(...) before returning)")
    try:
        arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    except Exception as exc:
        raise OutputValidationError(f"{what}: cannot convert {type(value).__name__} to an array ({exc})") from None
    if arr.shape != (n,):
        raise OutputValidationError(f"{what}: shape {arr.shape}, expected ({n},) class indices")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise OutputValidationError(f"{what}: dtype {arr.dtype}, expected integer class indices")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise OutputValidationError(f"{what}: values {arr.min()}..{arr.max()} outside 0..{num_classes - 1}")
    return arr.astype(np.int64)


def validate_output(out: Any, n: int, num_classes: int) -> ClassifierOutput:
    """Check what ``predict`` returned for ``n`` images and return it as a ClassifierOutput."""
    if isinstance(out, dict) and "labels" in out:
        out = ClassifierOutput(out["labels"], out.get("scores"), dict(out.get("variants") or {}))
    if not isinstance(out, ClassifierOutput):
        return ClassifierOutput(_as_labels(out, n, num_classes, "predict() result"))
    labels = _as_labels(out.labels, n, num_classes, "predict().labels")
    scores = None
    if out.scores is not None:
        scores = np.asarray(out.scores, dtype=np.float32)
        if scores.shape != (n, num_classes) or not np.isfinite(scores).all():
            raise OutputValidationError(f"predict().scores: shape {scores.shape} with finite values expected "
                                        f"({n}, {num_classes})")
    variants = {str(k): _as_labels(v, n, num_classes, f"predict().variants[{k!r}]")
                for k, v in out.variants.items()}
    return ClassifierOutput(labels, scores, variants)


def _concatenate(parts: list[ClassifierOutput]) -> ClassifierOutput:
    labels = np.concatenate([p.labels for p in parts]) if parts else np.zeros(0, np.int64)
    has_scores = bool(parts) and all(p.scores is not None for p in parts)
    scores = np.concatenate([p.scores for p in parts]) if has_scores else None
    names = set(parts[0].variants) if parts else set()
    if any(set(p.variants) != names for p in parts):
        raise OutputValidationError("predict(): variant names differ between batches")
    variants = {k: np.concatenate([p.variants[k] for p in parts]) for k in sorted(names)}
    return ClassifierOutput(labels, scores, variants)


def save_predictions(path: Path, out: ClassifierOutput) -> None:
    arrays: dict[str, np.ndarray] = {"labels": out.labels}
    if out.scores is not None:
        arrays["scores"] = out.scores
    for name, labels in out.variants.items():
        arrays[VARIANT_PREFIX + name] = labels
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


class ClassificationTask:
    name = "classification"
    dataset_kind = "classification"

    def execute(self, pipeline: Classifier, dataset: Cifar10Dataset, ctx: Context, eval_splits: list[str],
                job_dir: Path, latency_images: int, latency_warmup: int) -> dict[str, Any]:
        budget = ctx.budget
        train = dataset.load("train", budget.max_train_images)
        val = dataset.load("val", budget.max_val_images)
        fit_timing = timed_fit(pipeline, train, val, ctx)
        batch_size = max(1, int(getattr(pipeline, "predict_batch_size", 1024)))
        splits: dict[str, Any] = {}
        test_images = None
        for split in eval_splits:
            data = val if split == "val" else dataset.load(split, split_cap(budget, split))
            parts = []
            total = (len(data) + batch_size - 1) // batch_size
            with Stopwatch(ctx.device, ctx.num_threads) as clock:
                for batch in ctx.progress(batched(data.images, batch_size), desc=f"predict {split}", total=total):
                    parts.append(validate_output(pipeline.predict(batch), len(batch), data.num_classes))
            output = _concatenate(parts)
            file = job_dir / f"predictions-{split}.npz"
            save_predictions(file, output)
            splits[split] = {"predictions": file.name, "predict_s": clock.seconds, "images": len(data),
                             "images_per_s": len(data) / clock.seconds if clock.seconds > 0 else float("nan"),
                             "predict": clock.conditions}
            if split == "test" or test_images is None:
                test_images = data.images
        latency: dict[str, Any] = {}
        if latency_images > 0 and test_images is not None and len(test_images):
            n = len(test_images)
            latency = measure_latency(lambda i: pipeline.predict(test_images[i % n][None]),
                                      latency_images, latency_warmup, ctx.device)
        method = timing_method(ctx, batch_size, False, latency_images, latency_warmup)
        return {"timing": {**fit_timing, "train_images": len(train), "val_images": len(val), **latency,
                           "method": method},
                "splits": splits}

    def evaluate(self, dataset: Cifar10Dataset, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        truth = dataset.load(split, split_cap(budget, split)).labels
        classes = dataset.info.classes
        with np.load(predictions) as npz:
            labels = npz["labels"]
            variants = {k[len(VARIANT_PREFIX):]: npz[k] for k in npz.files if k.startswith(VARIANT_PREFIX)}
        if len(labels) != len(truth):
            raise OutputValidationError(f"{predictions.name}: {len(labels)} predictions for {len(truth)} images")
        metrics, cm = classification_metrics(truth, labels, classes)
        if variants:
            metrics["variants"] = {}
            for name, pred in variants.items():
                vcm = confusion_matrix(truth, pred, len(classes))
                metrics["variants"][name] = {"accuracy": float(np.trace(vcm) / vcm.sum()),
                                             "macro_f1": macro_f1(vcm)}
        cm_file = job_dir / f"confusion-{split}.csv"
        header = "true\\pred," + ",".join(classes)
        rows = [f"{c}," + ",".join(str(int(v)) for v in row) for c, row in zip(classes, cm)]
        cm_file.write_text("\n".join([header, *rows]) + "\n")
        return metrics, {"confusion_matrix": cm_file.name}
