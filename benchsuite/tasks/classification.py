"""The classification task: run a Classifier on labelled images (CIFAR-10, class folders), validate its output, score
it by accuracy, macro F1 and balanced accuracy (the last two show what accuracy hides on imbalanced classes)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Classifier, ClassifierOutput, Context, batched
from benchsuite.data import synthetic_cifar
from benchsuite.data.datasets import IMAGE_LABELS
from benchsuite.data.images import ImageSet
from benchsuite.errors import OutputValidationError
from benchsuite.measure.timing import Stopwatch, measure_latency
from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.classification import balanced_accuracy, classification_metrics, confusion_matrix, macro_f1
from benchsuite.results.atomic import atomic_write_npz, atomic_write_text
from benchsuite.results.evidence import Evidence
from benchsuite.tasks.base import ColumnSpec, MetricSpec, Scored, SplitPrediction, Task
from benchsuite.tasks.checks import ArrayBatchChecks

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


def confusion_csv(cm: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix as CSV text (rows true, columns predicted); class names, which are data (folder
    names), are quoted as CSV needs."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true\\pred", *classes])
    writer.writerows([c, *(int(v) for v in row)] for c, row in zip(classes, cm))
    return buf.getvalue()


def save_predictions(path: Path, out: ClassifierOutput) -> None:
    arrays: dict[str, np.ndarray] = {"labels": out.labels}
    if out.scores is not None:
        arrays["scores"] = out.scores
    for name, labels in out.variants.items():
        arrays[VARIANT_PREFIX + name] = labels
    atomic_write_npz(path, arrays)


class ClassificationTask(Task):
    """Image classification on CIFAR-style data: one class label per image, scored by accuracy."""

    name = "classification"
    description = "image classification (CIFAR-10, class folders): one class per image"
    needs = frozenset({IMAGE_LABELS})
    default_dataset = "cifar10"
    order = 0
    pipeline_base = Classifier
    required_methods = ("fit", "predict")
    input_type = "(N, H, W, 3) uint8 RGB images"
    output_type = "(N,) int class indices, or a ClassifierOutput (labels, optional (N, C) scores, variants)"
    batch_size_attribute = "predict_batch_size"
    default_batch_size = 1024
    metrics = (MetricSpec("accuracy", "accuracy"), MetricSpec("macro_f1", "macro F1"),
               MetricSpec("balanced_accuracy", "balanced accuracy"))
    primary_metric = "accuracy"
    interval_metrics = ("accuracy",)
    interval_statistic = f"{bs.CLASSIFICATION_RESAMPLES:,} resamples of per-image correctness"
    columns = (ColumnSpec("accuracy", "accuracy"), ColumnSpec("95% CI", "accuracy", "interval"),
               ColumnSpec("macro F1", "macro_f1"), ColumnSpec("balanced acc.", "balanced_accuracy", optional=True))
    per_class_title = "accuracy (recall of the class)"
    plots = ("tradeoff", "per_class", "confusion")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_train_images": 600, "max_val_images": 200, "max_test_images": 300, "epochs": 2}}
    check_splits = synthetic_cifar.tiny_splits
    checks = ArrayBatchChecks("predict", validate_output, atol=1e-6)

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        return dict(metrics.get("per_class_accuracy") or {})

    def predict_split(self, pipeline: Classifier, data: ImageSet, ctx: Context, batch_size: int, split: str
                      ) -> SplitPrediction:
        parts = []
        total = (len(data) + batch_size - 1) // batch_size
        with Stopwatch(ctx.device, ctx.num_threads) as clock:
            for batch in ctx.progress(batched(data.images, batch_size), desc=f"predict {split}", total=total):
                parts.append(validate_output(pipeline.predict(batch), len(batch), data.num_classes))
        return SplitPrediction(_concatenate(parts), clock.seconds, clock.conditions)

    def save_split(self, path: Path, data: ImageSet, outputs: ClassifierOutput) -> None:
        save_predictions(path, outputs)

    def latency(self, pipeline: Classifier, data: ImageSet, count: int, warmup: int, device: str
                ) -> dict[str, float]:
        images, n = data.images, len(data)
        return measure_latency(lambda i: pipeline.predict(images[i % n][None]), count, warmup, device)

    def score(self, data: ImageSet, predictions: Path, job_dir: Path, split: str) -> Scored:
        truth = data.labels
        classes = list(data.classes)
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
                                             "macro_f1": macro_f1(vcm), "balanced_accuracy": balanced_accuracy(vcm)}
        cm_file = job_dir / f"confusion-{split}.csv"
        atomic_write_text(cm_file, confusion_csv(cm, classes))
        evidence = {"truth": np.asarray(truth, np.int64), "predicted": np.asarray(labels, np.int64),
                    "correct": np.asarray(labels) == np.asarray(truth)}
        return Scored(metrics, {"confusion_matrix": cm_file.name}, evidence)

    def intervals(self, evidence: Evidence) -> dict[str, list[float] | None]:
        iv = bs.percentile_interval(bs.accuracy_resamples(evidence["correct"]))
        return {"accuracy": list(iv) if iv else None}

    def metric_resamples(self, evidence: Evidence, resamples: int, seed: int = 0) -> dict[str, np.ndarray]:
        return {"accuracy": bs.accuracy_resamples(evidence["correct"], resamples, seed)}
