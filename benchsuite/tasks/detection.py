"""The detection task: run a Detector over a VOC-style split, validate its boxes, score them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Budget, Context, Detections, Detector
from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import BOXES
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import OutputValidationError
from benchsuite.measure.timing import Stopwatch
from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.detection import Matches, match, summarize
from benchsuite.metrics.export import write_coco_json, write_voc_results
from benchsuite.metrics.floor import gain_verdict
from benchsuite.ops.boxes import check_detections, clip_boxes
from benchsuite.results.evidence import Evidence, pack_ragged
from benchsuite.tasks.base import ColumnSpec, MetricSpec, Scored, SplitPrediction, Task, fitted_floor, split_cap
from benchsuite.tasks.checks import PerImageChecks, detection_parts
from benchsuite.tasks.per_image import load_ragged, run_over_images, save_ragged, single_image_latency

#: the most detections one image may have after validation (clipping): the built-in detectors keep at most 100
#: per class and image; more is a detector that skipped its non-maximum suppression, and would make the scoring
#: process's memory grow with it (the job fails with a message that says so)
MAX_DETECTIONS_PER_IMAGE = 5000


def validate_detections(out: Any, width: int, height: int, num_classes: int, where: str
                        ) -> tuple[Detections, int, int]:
    """Check one image's output and clip it to the image.

    Returns ``(detections, boxes_clipped, boxes_dropped)``: boxes reaching outside the image are
    clipped; boxes left with no area by the clipping (entirely outside) are dropped and counted. More than
    :data:`MAX_DETECTIONS_PER_IMAGE` detections left is an :class:`OutputValidationError`.
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
    count = int(np.prod(getattr(scores, "shape", (0,)) or (1,)))
    if count > 4 * MAX_DETECTIONS_PER_IMAGE:  # far too many: refused before any copy or check of them
        raise OutputValidationError(_too_many(where, count))
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
    if int(keep.sum()) > MAX_DETECTIONS_PER_IMAGE:
        raise OutputValidationError(_too_many(where, int(keep.sum())))
    return Detections(clipped[keep], scores[keep], labels[keep]), n_clipped, int((~keep).sum())


def _too_many(where: str, count: int) -> str:
    return (f"{where}: detect() returned {count:,} detections, more than the {MAX_DETECTIONS_PER_IMAGE:,} per image "
            f"the detection task scores (MAX_DETECTIONS_PER_IMAGE); keep the best ones before returning them "
            f"(non-maximum suppression, a score threshold, the top ones by score)")


#: the floor a detector must beat to be a result: the registered pipeline that ignores the pixels and predicts
#: where the class's training boxes usually are (``mean-box``)
FLOOR_PIPELINE = "mean-box"


def floor_detections(train: DetectionSet, data: DetectionSet, seed: int = 0) -> list[Detections] | None:
    """The :data:`FLOOR_PIPELINE`'s detections on every image of ``data`` after its fit on ``train`` (boxes only:
    it reads the image's size, never its pixels); None when that pipeline is not installed."""
    out = floor_detections_on(train, [data], seed)
    return None if out is None else out[0]


def floor_detections_on(train: DetectionSet, datas: Sequence[DetectionSet], seed: int = 0
                        ) -> list[list[Detections]] | None:
    """:func:`floor_detections` for several data sets from one fit of the floor on ``train``: one list of
    detections per data set, in order; None when the floor pipeline is not installed."""
    floor = fitted_floor(FLOOR_PIPELINE, train, seed)
    if floor is None:
        return None
    blank = np.zeros((1, 1, 3), np.uint8)
    return [[floor.detect(np.broadcast_to(blank, (s.height, s.width, 3))) for s in data] for data in datas]


def floor_comparison(data: DetectionSet, ours: list[Detections], floor: list[Detections], resamples: int,
                     seed: int = 0, split: str = "") -> dict[str, Any]:
    """A detector's detections ``ours`` on ``data`` (the ``split`` named in the reason) against the floor's on
    the same images.

    The gain is the detector's mAP50 minus the floor's, bootstrapped over images with the same draws for both
    (paired: ``resamples`` resamples, 95% percentile interval). The detector is a ``non_result`` when that
    interval reaches zero or below: its mAP50 is not distinguishable from (or is under) that of a detector that
    ignores the pixels. Detections identical to the floor's are the floor itself (``is_floor``), never flagged.
    """
    classes = list(data.classes)
    gt = ([s.boxes for s in data], [s.labels for s in data], [s.difficult for s in data])

    def matched(dets: list[Detections]) -> Matches:
        return match(*gt, [d.boxes for d in dets], [d.scores for d in dets], [d.labels for d in dets], len(classes))

    m_ours, m_floor = matched(ours), matched(floor)
    ours_map = float(summarize(m_ours, classes, ("voc",))["map50"] or 0.0)
    floor_map = float(summarize(m_floor, classes, ("voc",))["map50"] or 0.0)
    is_floor = all(np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
                   and np.array_equal(a.labels, b.labels) for a, b in zip(ours, floor))
    gains = bs.map50_gain_resamples(m_ours, m_floor, resamples, seed)
    return gain_verdict(FLOOR_PIPELINE, "map50", "mAP50", ours_map, floor_map, gains, is_floor, split)


#: the job file with a detector's detections on the val images from its own selection on val: a detector that
#: has them at no cost (it replayed detection on val to choose its settings) sets ``val_detections_`` (one
#: :class:`~benchsuite.api.Detections` per val image, in order) in ``fit``, and the floor is then judged on val
SELECTION_VAL_FILE = "selection-val.npz"


#: the fewest val images that let val decide a non-result: on fewer, the paired interval of a working detector
#: still reaches zero (Penn-Fudan's 20 val images: ism's val gain +0.11, interval -0.11 to +0.39, where its 70
#: test images give +0.18, +0.07 to +0.30), so the larger scored split decides and the record says why
MIN_VAL_IMAGES_TO_JUDGE = 50


def floor_verdict(scored: dict[str, Any], split: str, val: dict[str, Any] | None, val_images: int = 0
                  ) -> dict[str, Any]:
    """``metrics.floor`` of a scored split: the :func:`floor_comparison` that decides ``non_result``, named by
    ``judged_on``. With the val comparison (``val``) of at least :data:`MIN_VAL_IMAGES_TO_JUDGE` images
    (``val_images``) val decides (the issue's rule: a val score not above the floor's is a non-result), and the
    scored split's comparison stays beside it as ``on_scored_split``; otherwise the scored split decides, and a
    smaller val comparison stays beside it as ``on_val`` with the reason it did not decide."""
    if val is None:
        return {**scored, "judged_on": split}
    if val_images < MIN_VAL_IMAGES_TO_JUDGE:
        why = f"val has {val_images} images, under the {MIN_VAL_IMAGES_TO_JUDGE} that let it decide"
        return {**scored, "judged_on": split, "on_val": {**val, "split": "val", "not_deciding": why}}
    return {**val, "judged_on": "val", "on_scored_split": {**scored, "split": split}}


def _read_detections(path: Path) -> tuple[list[str], list[Detections]]:
    """The image ids and per-image detections of a predictions file (:meth:`DetectionTask.save_split`)."""
    ids, pred = load_ragged(path, max_per_image=MAX_DETECTIONS_PER_IMAGE)
    return ids, [Detections(b, s, lab) for b, s, lab in zip(pred["boxes"], pred["scores"], pred["labels"])]


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
                            "detections", boxes=detection_parts)

    def per_class(self, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        return {k: v.get("ap50") for k, v in (metrics.get("per_class") or {}).items()}

    def evaluate(self, dataset: Any, split: str, budget: Budget, predictions: Path, job_dir: Path
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """The shared template's metrics, plus ``metrics["floor"]``: the detector against the ``mean-box`` floor
        fitted on the same training images (:func:`floor_comparison`; ``non_result`` flags a detector that has
        not learned, and the report says so beside its row). It is judged on val when the job left the
        detector's val detections (:data:`SELECTION_VAL_FILE`) of enough images, else on this split
        (:func:`floor_verdict`)."""
        metrics, artifacts = super().evaluate(dataset, split, budget, predictions, job_dir)
        data = dataset.load(split, split_cap(budget, split))
        train = dataset.load("train", split_cap(budget, "train"))
        selection = job_dir / SELECTION_VAL_FILE
        val = dataset.load("val", split_cap(budget, "val")) if split != "val" and selection.is_file() else None
        floors = floor_detections_on(train, [data] if val is None else [data, val])  # one fit serves both
        if floors is not None:
            scored = floor_comparison(data, _read_detections(predictions)[1], floors[0], bs.DETECTION_RESAMPLES,
                                      split=split)
            on_val, val_images = None, 0
            if val is not None:
                ids, val_dets = _read_detections(selection)
                if ids != val.image_ids:
                    raise OutputValidationError(f"{selection.name}: images differ from the val split")
                val_images = len(val)
                on_val = floor_comparison(val, val_dets, floors[1], bs.DETECTION_RESAMPLES, split="val")
            metrics["floor"] = floor_verdict(scored, split, on_val, val_images)
        return metrics, artifacts

    def execute(self, pipeline: Any, dataset: Any, ctx: Context, eval_splits: list[str], job_dir: Path,
                latency_images: int, latency_warmup: int) -> dict[str, Any]:
        """The shared template's, then the detector's own val detections (``val_detections_``, when it kept
        them from its selection on val and val is not a scored split) validated into :data:`SELECTION_VAL_FILE`
        for the floor's verdict (:meth:`evaluate`)."""
        out = super().execute(pipeline, dataset, ctx, eval_splits, job_dir, latency_images, latency_warmup)
        dets = getattr(pipeline, "val_detections_", None)
        if dets is not None and "val" not in eval_splits:
            val = dataset.load("val", ctx.budget.max_val_images)
            if len(dets) != len(val):
                raise OutputValidationError(f"val_detections_: {len(dets)} entries for {len(val)} val images")
            checked = [validate_detections(d, s.width, s.height, val.num_classes, f"val image {s.image_id}")[0]
                       for d, s in zip(dets, val)]
            self.save_split(job_dir / SELECTION_VAL_FILE, val, checked)
        return out

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
        try:  # the worker's file is checked before it is loaded: the pipeline ran in that process
            ids, pred = load_ragged(predictions, max_per_image=MAX_DETECTIONS_PER_IMAGE)
        except ValueError as exc:
            raise OutputValidationError(str(exc)) from None
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

    def metric_resamples(self, evidence: Evidence, resamples: int, seed: int = 0) -> dict[str, np.ndarray]:
        return {"map50": bs.map50_resamples(bs.DetectionEvidence.from_arrays(dict(evidence.arrays)), resamples, seed)}
