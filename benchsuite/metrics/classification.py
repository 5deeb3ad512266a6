"""Classification metrics from integer labels.

The confusion matrix has true classes on rows and predicted classes on columns. Macro F1 averages the
per-class F1 over the classes that occur in the true or the predicted labels (scikit-learn's default);
a class with no true and no predicted sample is left out of the average rather than scored 0. Balanced
accuracy is the mean recall over the classes that occur in the true labels (scikit-learn's
``balanced_accuracy_score``): on imbalanced classes it, and macro F1, show what accuracy hides (always
predicting the majority class of a 90/10 set scores 0.9 accuracy and 0.5 balanced accuracy).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows true class, columns predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_pred)} predictions for {len(y_true)} labels")
    flat = y_true * num_classes + y_pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy_from_confusion(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class without true samples)."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes with true samples (NaN when there are none)."""
    recall = per_class_accuracy(cm)
    present = ~np.isnan(recall)
    return float(np.mean(recall[present])) if present.any() else float("nan")


def macro_f1(cm: np.ndarray) -> float:
    f1 = per_class_f1(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return float(np.mean(f1[present])) if present.any() else float("nan")


def accuracy_interval(correct: int, total: int, level: float = 0.95, draws: int = 4000,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of an accuracy over resampled test images.

    Resampling N images with replacement and counting the correct ones is a Binomial(N, acc) draw,
    so the bootstrap is drawn exactly without materialising resamples.
    """
    if total == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    acc = rng.binomial(total, correct / total, size=draws) / total
    lo, hi = np.quantile(acc, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str] | tuple[str, ...]
                           ) -> tuple[dict[str, object], np.ndarray]:
    """The record's metrics block and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred, len(classes))
    acc = accuracy_from_confusion(cm)
    lo, hi = accuracy_interval(int(np.trace(cm)), int(cm.sum()))
    metrics: dict[str, object] = {
        "accuracy": acc,
        "accuracy_ci95": [lo, hi],
        "macro_f1": macro_f1(cm),
        "balanced_accuracy": balanced_accuracy(cm),
        "per_class_accuracy": dict(zip(classes, per_class_accuracy(cm).tolist())),
        "num_images": int(cm.sum()),
    }
    return metrics, cm
