"""The semantic segmentation task: a class for every pixel of every image, scored by mean IU.

**The contract** (:class:`Segmenter`): ``fit(train, val, ctx)`` gets two
:class:`~benchsuite.data.voc_segmentation.SegmentationSet` splits (``load_image(i)`` ``(H, W, 3)`` uint8 RGB,
``load_mask(i)`` ``(H, W)`` uint8 class indices with 255 void, ``load_instances(i)``); ``segment(image)`` takes one
``(H, W, 3)`` uint8 RGB image and returns either its label map, an ``(H, W)`` integer array of class indices
``0 .. C-1``, or per-class scores, a ``(C, H, W)`` float array (higher is more likely; the task takes the argmax, the
smaller class on ties). ``segment_batch(images)`` returns one result per image (by default ``segment`` on each).

**The data** is any data set that provides masks (:data:`benchsuite.data.datasets.MASKS`): a VOC layout folder
with ``SegmentationClass/`` (``voc:PATH``, ``voc2007``, ``voc2012``; Penn-Fudan), or the synthetic segmentation
stand-in ``synthetic-voc`` and its variants (``synthetic-voc:tiny``, ``:thin``, ``:grey``).

**The metrics** (:mod:`benchsuite.metrics.segmentation`): the four of the FCN paper (pixel accuracy, mean class
accuracy, mean IU, frequency-weighted IU), per-class IoU, accuracy and boundary F1 (3 px), boundary F1, and the IoU of
objects by size where instance masks exist: COCO's buckets (``iou_small`` < 32², ``iou_medium``, ``iou_large`` >=
96² pixels) and, since real sets such as Penn-Fudan hold almost no object that is small by COCO's bounds, the
objects of the split's smallest third by area (``iou_smallest_third``; the bound is in the record,
``smallest_third_max_area_px``). Void pixels are never scored.

**The evidence** (``evidence-<split>.npz``): the per-image confusion matrices, boundary counts and object rows (the
bootstrap over images draws every interval from them), and the gallery's few images and truth masks, so that the
report's mask gallery needs no data set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Pipeline
from benchsuite.data.datasets import MASKS
from benchsuite.data.voc_segmentation import VOID, SegmentationSet, tiny_splits
from benchsuite.errors import OutputValidationError
from benchsuite.measure.timing import Stopwatch
from benchsuite.metrics import segmentation as seg
from benchsuite.metrics.bootstrap import percentile_interval, resample_weights
from benchsuite.metrics.floor import gain_verdict
from benchsuite.results.atomic import atomic_write_npz, atomic_write_text
from benchsuite.results.evidence import Evidence, load_evidence
from benchsuite.tasks.base import ColumnSpec, MetricSpec, Scored, SplitPrediction, Task, fitted_floor, split_cap
from benchsuite.tasks.checks import PerImageChecks
from benchsuite.tasks.per_image import run_over_images, single_image_latency

__all__ = ["GALLERY_IMAGES", "GALLERY_SIDE", "SegmentationTask", "Segmenter", "load_label_maps", "save_label_maps",
           "validate_segmentation"]

#: test images whose pixels (and truth) the evidence keeps for the report's mask gallery, and their longer side
GALLERY_IMAGES = 3
GALLERY_SIDE = 320
#: the share of a split's objects, smallest first, that ``iou_smallest_third`` scores
SMALLEST_FRACTION = 1 / 3
#: the interval metrics, in the order :meth:`SegmentationTask.intervals` returns them
INTERVAL_METRICS = ("mean_iou", "pixel_accuracy", "boundary_f1", "iou_smallest_third")


class Segmenter(Pipeline):
    """The segmentation contract (see the module docstring): ``fit(train, val, ctx)``, then ``segment(image)`` ->
    an ``(H, W)`` integer label map or ``(C, H, W)`` float class scores."""

    task: ClassVar[str] = "segmentation"
    #: images per ``segment_batch`` call when the runner predicts a split
    segment_batch_size: ClassVar[int] = 1

    def fit(self, train: SegmentationSet, val: SegmentationSet, ctx: Context) -> Segmenter:
        raise NotImplementedError

    def segment(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def segment_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self.segment(im) for im in images]


def validate_segmentation(out: Any, width: int, height: int, num_classes: int, where: str) -> np.ndarray:
    """One image's output as an ``(H, W)`` uint8 label map: an integer ``(H, W)`` map with values in
    ``0 .. num_classes - 1`` as it is, finite ``(C, H, W)`` float scores by their argmax (the smaller class on ties);
    anything else is an OutputValidationError naming ``where`` and what was expected."""
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    if not isinstance(out, np.ndarray):
        raise OutputValidationError(f"{where}: segment() returned {type(out).__name__}; expected a numpy array, an "
                                    f"({height}, {width}) label map or ({num_classes}, {height}, {width}) scores")
    if out.ndim == 2 and out.dtype.kind in "iub":
        if out.shape != (height, width):
            raise OutputValidationError(f"{where}: label map of shape {out.shape} for a {width}x{height} image; "
                                        f"expected ({height}, {width})")
        if out.size and (int(out.min()) < 0 or int(out.max()) >= num_classes):
            bad = int(out.min()) if int(out.min()) < 0 else int(out.max())
            raise OutputValidationError(f"{where}: label {bad} outside 0..{num_classes - 1} (the data set's "
                                        f"{num_classes} classes)")
        return out.astype(np.uint8)
    if out.ndim == 3 and out.dtype.kind == "f":
        if out.shape != (num_classes, height, width):
            raise OutputValidationError(f"{where}: scores of shape {out.shape}; expected ({num_classes}, {height}, "
                                        f"{width}), one map per class")
        if not np.isfinite(out).all():
            raise OutputValidationError(f"{where}: scores hold NaN or infinite values")
        return np.argmax(out, axis=0).astype(np.uint8)
    raise OutputValidationError(f"{where}: segment() returned a {out.dtype} array of shape {out.shape}; expected an "
                                f"integer ({height}, {width}) label map or float ({num_classes}, {height}, {width}) "
                                f"scores")


def save_label_maps(path: Path, image_ids: list[str], maps: list[np.ndarray]) -> None:
    """Write per-image ``(H, W)`` uint8 label maps (any sizes) to ``path`` as a compressed ``npz``, atomically:
    ``image_ids``, ``shapes`` ``(N, 2)`` and the maps flattened one after another (``labels``)."""
    shapes = np.array([m.shape for m in maps], np.int64).reshape(-1, 2)
    flat = np.concatenate([m.reshape(-1) for m in maps]) if maps else np.zeros(0, np.uint8)
    atomic_write_npz(path, {"image_ids": np.asarray(image_ids, str), "shapes": shapes,
                            "labels": flat.astype(np.uint8)})


def load_label_maps(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """The image ids and label maps of a file :func:`save_label_maps` wrote."""
    with np.load(path, allow_pickle=False) as npz:
        ids, shapes, flat = [str(i) for i in npz["image_ids"]], npz["shapes"], npz["labels"]
    ends = np.cumsum(shapes[:, 0] * shapes[:, 1]) if len(shapes) else np.zeros(0, np.int64)
    if len(ends) != len(ids) or (len(ends) and ends[-1] != len(flat)):
        raise ValueError(f"{path}: {len(flat)} labels for the shapes of {len(ids)} images")
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return ids, [flat[a:b].reshape(int(h), int(w)) for a, b, (h, w) in zip(starts, ends, shapes)]


def gallery_picks(object_pixels: np.ndarray, count: int = GALLERY_IMAGES) -> list[int]:
    """Indices of ``count`` images spread over the split among those with object (non-background, non-void)
    pixels, else all (``object_pixels``: ``(N,)`` per image). Every pipeline is shown on the same images."""
    pool = [i for i, n in enumerate(np.asarray(object_pixels)) if n > 0] or list(range(len(object_pixels)))
    if len(pool) <= count:
        return pool
    return [pool[int(k)] for k in np.linspace(0, len(pool) - 1, count).round()]


def shrink(array: np.ndarray, side: int = GALLERY_SIDE, nearest: bool = False) -> np.ndarray:
    """``array`` (an image or a label map) resized so that its longer side is at most ``side`` pixels."""
    h, w = array.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return array
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


#: the floor a segmenter must beat to be a result: the registered pipeline that ignores the pixels and labels every
#: pixel with the class covering most training pixels (``majority-class``)
FLOOR_PIPELINE = "majority-class"


def floor_label_maps(train: SegmentationSet, data: SegmentationSet) -> list[np.ndarray] | None:
    """The :data:`FLOOR_PIPELINE`'s label maps of every image of ``data`` after its fit on ``train`` (it reads the
    image's size, never its pixels); None when that pipeline is not installed or ``train`` has no labelled pixel."""
    from benchsuite.errors import EmptyModelError

    try:
        floor = fitted_floor(FLOOR_PIPELINE, train)
    except EmptyModelError:
        return None
    if floor is None:
        return None
    blank = np.zeros((1, 1, 3), np.uint8)
    return [np.asarray(floor.segment(np.broadcast_to(blank, (s.height, s.width, 3)))) for s in data]


def floor_comparison(data: SegmentationSet, ours: seg.SegmentationEvidence, ours_maps: list[np.ndarray],
                     floor_maps: list[np.ndarray], resamples: int = seg.SEGMENTATION_RESAMPLES, seed: int = 0,
                     split: str = "") -> dict[str, Any]:
    """A segmenter's evidence ``ours`` on ``data`` (its label maps ``ours_maps``) against the floor's label maps on
    the same images: the mean IU gain bootstrapped over images with the same draws for both, judged by
    :func:`benchsuite.metrics.floor.gain_verdict` (a ``non_result`` when its 95% interval reaches zero)."""
    classes = list(data.classes)
    floor_ev = seg.SegmentationEvidence.from_images(
        [seg.image_evidence(data.load_mask(i), m, len(classes), data.load_instances(i))
         for i, m in enumerate(floor_maps)], len(classes))
    ones = np.ones((1, len(data)))
    mine = float(np.nan_to_num(seg.metrics_for_weights(ours, ones)["mean_iou"][0]))
    floor = float(np.nan_to_num(seg.metrics_for_weights(floor_ev, ones)["mean_iou"][0]))
    gains = [seg.metrics_for_weights(ours, w)["mean_iou"] - seg.metrics_for_weights(floor_ev, w)["mean_iou"]
             for w in resample_weights(len(data), resamples, seed)] if len(data) else []
    is_floor = all(np.array_equal(a, b) for a, b in zip(ours_maps, floor_maps, strict=True))
    return gain_verdict(FLOOR_PIPELINE, "mean_iou", "mean IU", mine, floor,
                        np.concatenate(gains) if gains else None, is_floor, split)


def _smallest_thresholds(ev: seg.SegmentationEvidence) -> tuple[float, float]:
    return seg.smallest_objects_thresholds(ev.instances[:, 1], SMALLEST_FRACTION)


def _write_confusion(path: Path, classes: list[str], cm: np.ndarray) -> None:
    header = "true\\pred," + ",".join(classes)
    rows = [f"{c}," + ",".join(str(int(v)) for v in row) for c, row in zip(classes, cm)]
    atomic_write_text(path, "\n".join([header, *rows]) + "\n")


class SegmentationTask(Task):
    """Semantic segmentation on data sets with pixel masks: a label map per image, scored by mean IU."""

    name = "segmentation"
    description = "semantic segmentation (Pascal VOC style masks): a class for every pixel"
    needs = frozenset({MASKS})
    default_dataset = "voc2012"
    order = 3
    pipeline_base = Segmenter
    required_methods = ("fit", "segment")
    input_type = "one (H, W, 3) uint8 RGB image per segment() call (segment_batch: a list of them)"
    output_type = "an (H, W) integer label map of class indices, or (C, H, W) float class scores (argmax taken)"
    batch_size_attribute = "segment_batch_size"
    default_batch_size = 1
    metrics = (MetricSpec("mean_iou", "mean IU"), MetricSpec("pixel_accuracy", "pixel accuracy"),
               MetricSpec("mean_accuracy", "mean accuracy"), MetricSpec("fw_iou", "frequency-weighted IU"),
               MetricSpec("boundary_f1", "boundary F1"),
               MetricSpec("iou_smallest_third", "IoU of the smallest third of objects"),
               MetricSpec("iou_small", "IoU small"), MetricSpec("iou_medium", "IoU medium"),
               MetricSpec("iou_large", "IoU large"))
    primary_metric = "mean_iou"
    interval_metrics = INTERVAL_METRICS
    interval_statistic = (f"{seg.SEGMENTATION_RESAMPLES:,} resamples of per-image confusion matrices, boundary and "
                          f"object counts")
    columns = (ColumnSpec("mean IU", "mean_iou"), ColumnSpec("mean IU 95% CI", "mean_iou", "interval"),
               ColumnSpec("pixel acc", "pixel_accuracy"), ColumnSpec("mean acc", "mean_accuracy"),
               ColumnSpec("fwIU", "fw_iou"), ColumnSpec("boundary F1", "boundary_f1"),
               ColumnSpec("BF1 95% CI", "boundary_f1", "interval"),
               ColumnSpec("IoU smallest third", "iou_smallest_third", optional=True),
               ColumnSpec("smallest third 95% CI", "iou_smallest_third", "interval", optional=True),
               ColumnSpec("IoU small", "iou_small", optional=True),
               ColumnSpec("IoU medium", "iou_medium", optional=True),
               ColumnSpec("IoU large", "iou_large", optional=True))
    per_class_title = "IoU"
    plots = ("tradeoff", "per_class", "confusion")
    sections = ("mask_gallery",)
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_train_images": 24, "max_val_images": 8, "max_test_images": 16, "epochs": 1,
                  "time_limit_s": 420}}
    check_splits = tiny_splits
    checks = PerImageChecks("segment", validate_segmentation, "label maps")

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        return dict(metrics.get("per_class_iou") or {})

    def evaluate(self, dataset: Any, split: str, budget: Any, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """The shared template's metrics, plus ``metrics["floor"]``: the segmenter against the ``majority-class``
        floor fitted on the same training masks (:func:`floor_comparison`; ``non_result`` flags a segmenter that
        has not learned, e.g. one class everywhere, and the report says so beside its row)."""
        metrics, artifacts = super().evaluate(dataset, split, budget, predictions, job_dir)
        data = dataset.load(split, split_cap(budget, split))
        floor = floor_label_maps(dataset.load("train", split_cap(budget, "train")), data)
        if floor is not None and "evidence" in artifacts:
            ours = seg.SegmentationEvidence.from_arrays(dict(load_evidence(job_dir / artifacts["evidence"]).arrays))
            metrics["floor"] = {**floor_comparison(data, ours, load_label_maps(predictions)[1], floor, split=split),
                                "judged_on": split}
        return metrics, artifacts

    def predict_split(self, pipeline: Segmenter, data: SegmentationSet, ctx: Context, batch_size: int, split: str
                      ) -> SplitPrediction:
        from_scores = [0]

        def check(i: int, out: Any) -> np.ndarray:
            s = data[i]
            from_scores[0] += int(getattr(out, "ndim", 0) == 3)
            return validate_segmentation(out, s.width, s.height, data.num_classes, f"image {s.image_id}")

        with Stopwatch(ctx.device, ctx.num_threads) as phase:
            maps, seconds = run_over_images(pipeline.segment_batch, data, batch_size, ctx.device, ctx.progress,
                                            f"segment {split}", each=check)
        return SplitPrediction(maps, seconds, phase.conditions, {"label_maps": len(maps),
                                                                 "from_scores": from_scores[0]})

    def save_split(self, path: Path, data: SegmentationSet, outputs: list[np.ndarray]) -> None:
        save_label_maps(path, data.image_ids, outputs)

    def latency(self, pipeline: Segmenter, data: SegmentationSet, count: int, warmup: int, device: str
                ) -> dict[str, float]:
        return single_image_latency(pipeline.segment, data, count, warmup, device)

    def score(self, data: SegmentationSet, predictions: Path, job_dir: Path, split: str) -> Scored:
        ids, maps = load_label_maps(predictions)
        if ids != data.image_ids:
            raise OutputValidationError(f"{predictions.name}: images differ from the {split} split")
        classes = list(data.classes)
        per_image, object_pixels = [], []
        for i, pred in enumerate(maps):
            truth = data.load_mask(i)
            if pred.shape != truth.shape:
                raise OutputValidationError(f"{predictions.name}: label map {pred.shape} for image {ids[i]} of "
                                            f"{truth.shape}")
            per_image.append(seg.image_evidence(truth, pred, len(classes), data.load_instances(i)))
            object_pixels.append(int(((truth != 0) & (truth != VOID)).sum()))
        ev = seg.SegmentationEvidence.from_images(per_image, len(classes))
        metrics = seg.segmentation_metrics(ev, classes)
        relative = _smallest_thresholds(ev)
        ones = np.ones((1, ev.num_images))
        metrics["iou_smallest_third"] = float(seg.metrics_for_weights(ev, ones, relative)["iou_small"][0])
        metrics["smallest_third_max_area_px"] = relative[0] - 1 if np.isfinite(relative[0]) else None
        cm_file = job_dir / f"confusion-{split}.csv"
        _write_confusion(cm_file, classes, ev.confusion.sum(axis=0))
        picks = gallery_picks(np.asarray(object_pixels))
        gallery: dict[str, Any] = {"gallery_index": np.asarray(picks, np.int64)}
        for k, i in enumerate(picks):
            gallery[f"gallery_image_{k}"] = shrink(data.load_image(i))
            gallery[f"gallery_truth_{k}"] = shrink(data.load_mask(i), nearest=True)
        evidence = {**ev.to_arrays(), "image_ids": np.asarray(ids, str), "classes": np.asarray(classes, str),
                    **gallery}
        return Scored(metrics, {"confusion_matrix": cm_file.name}, evidence)

    def intervals(self, evidence: Evidence) -> dict[str, list[float] | None]:
        ev = seg.SegmentationEvidence.from_arrays(dict(evidence.arrays))
        coco = seg.segmentation_resamples(ev)
        relative = seg.segmentation_resamples(ev, area_thresholds=_smallest_thresholds(ev))
        values = {**coco, "iou_smallest_third": relative["iou_small"]}
        out: dict[str, list[float] | None] = {}
        for key in INTERVAL_METRICS:
            iv = percentile_interval(values[key])
            out[key] = list(iv) if iv else None
        return out
