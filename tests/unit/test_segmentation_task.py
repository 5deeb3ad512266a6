"""The segmentation task: its output contract, its predictions files, its scoring against brute force, its evidence
and intervals, and the VOC formats that open the masks reader for it."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.data.datasets import BOXES, MASKS, dataset_key, open_dataset, spec_annotations
from benchsuite.data.voc_segmentation import VOID, VocSegmentationDataset, tiny_splits
from benchsuite.errors import ConfigError, OutputValidationError
from benchsuite.metrics import segmentation as seg
from benchsuite.results.evidence import Evidence, load_evidence, save_evidence
from benchsuite.tasks.registry import get_task
from benchsuite.tasks.segmentation import (
    SegmentationTask,
    gallery_picks,
    load_label_maps,
    save_label_maps,
    validate_segmentation,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("tiny-seg"))


def test_the_task_is_registered_and_runs_on_data_with_masks():
    task = get_task("segmentation")
    assert isinstance(task, SegmentationTask) and task.primary.key == "mean_iou"
    assert task.runs_on("synthetic-voc") and task.runs_on("synthetic-voc:thin")
    assert not task.runs_on("synthetic-voc:crop") and not task.runs_on("cifar10")
    assert not get_task("detection").runs_on("synthetic-voc:thin")


def test_outputs_are_label_maps_or_scores_and_anything_else_is_named():
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.int64)
    assert validate_segmentation(labels, 3, 2, 3, "x").dtype == np.uint8
    scores = np.zeros((3, 2, 3), np.float32)
    scores[2] = 1.0
    scores[1, 0, 0] = 1.0  # a tie with class 2: the smaller class wins
    got = validate_segmentation(scores, 3, 2, 3, "x")
    assert got[0, 0] == 1 and (got.reshape(-1)[1:] == 2).all()
    for bad, message in ((labels + 1, r"label 3 outside 0\.\.2"), (labels[:, :2], r"shape \(2, 2\)"),
                         (scores[:2], r"expected \(3, 2, 3\)"), (np.full((3, 2, 3), np.nan), "NaN"),
                         (labels.astype(np.float32), "float32 array"), ([[0]], "list")):
        with pytest.raises(OutputValidationError, match=message):
            validate_segmentation(bad, 3, 2, 3, "image a")


def test_label_maps_round_trip_with_any_sizes(tmp_path):
    maps = [np.arange(6, dtype=np.uint8).reshape(2, 3), np.zeros((0, 4), np.uint8), np.ones((5, 1), np.uint8)]
    save_label_maps(tmp_path / "p.npz", ["a", "b", "c"], maps)
    ids, back = load_label_maps(tmp_path / "p.npz")
    assert ids == ["a", "b", "c"] and all(np.array_equal(a, b) for a, b in zip(maps, back))


def test_smallest_objects_thresholds_keep_the_smallest_third_and_ties():
    assert seg.smallest_objects_thresholds(np.array([50, 10, 40, 20, 30, 60])) == (21.0, float("inf"))
    low, _ = seg.smallest_objects_thresholds(np.array([5, 5, 5, 9]))
    assert low == 6.0  # ceil(4 / 3) = 2 smallest, and the tie with them
    assert seg.smallest_objects_thresholds(np.array([])) == (0.0, float("inf"))


def _object_areas(truth: np.ndarray, inst: np.ndarray) -> list[int]:
    """Brute force: each object's pixels of its majority (non-void) class."""
    out = []
    for j in np.unique(inst):
        if j in (0, VOID):
            continue
        region = inst == j
        c = int(np.bincount(truth[region & (truth != VOID)]).argmax())
        out.append(int((region & (truth == c)).sum()))
    return out


def test_scoring_matches_brute_force_and_saves_the_gallery(tiny, tmp_path):
    _, _, test = tiny
    task = get_task("segmentation")
    rng = np.random.default_rng(0)
    preds = []
    for i in range(len(test)):  # the truth with a band of errors
        p = np.where(test.load_mask(i) == VOID, 0, test.load_mask(i)).astype(np.uint8)
        p[: p.shape[0] // 3] = rng.integers(0, test.num_classes, p[: p.shape[0] // 3].shape)
        preds.append(p)
    save_label_maps(tmp_path / "predictions-test.npz", test.image_ids, preds)
    scored = task.score(test, tmp_path / "predictions-test.npz", tmp_path, "test")
    m = scored.metrics
    truth = np.concatenate([test.load_mask(i).ravel() for i in range(len(test))])
    pred = np.concatenate([p.ravel() for p in preds])
    keep = truth != VOID
    cm = np.zeros((test.num_classes,) * 2, np.int64)
    np.add.at(cm, (truth[keep].astype(np.int64), pred[keep].astype(np.int64)), 1)
    assert m["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
    assert m["mean_iou"] == pytest.approx(float(np.nanmean(seg.per_class_iou(cm))), abs=1e-12)
    assert (tmp_path / "confusion-test.csv").read_text().startswith("true\\pred,background,car")
    ev = scored.evidence
    assert [int(i) for i in ev["gallery_index"]] == gallery_picks(np.array([1] * len(test)))
    assert ev["gallery_image_0"].shape[:2] == test.load_mask(int(ev["gallery_index"][0])).shape
    assert set(task.intervals(Evidence("segmentation", 1, ev))) == set(task.interval_metrics)


def test_smallest_third_iou_is_the_mean_over_the_smallest_objects(tiny, tmp_path):
    _, _, test = tiny
    task = get_task("segmentation")
    preds = [np.where(test.load_mask(i) == VOID, 0, test.load_mask(i)).astype(np.uint8) for i in range(len(test))]
    preds[0][:, : preds[0].shape[1] // 2] = 0  # objects on the left of the first image are missed
    save_label_maps(tmp_path / "p.npz", test.image_ids, preds)
    m = task.score(test, tmp_path / "p.npz", tmp_path, "test").metrics
    ev = seg.SegmentationEvidence.from_images(
        [seg.image_evidence(test.load_mask(i), preds[i], test.num_classes, test.load_instances(i))
         for i in range(len(test))], test.num_classes)
    rows = ev.instances
    iou = rows[:, 2] / (rows[:, 2] + rows[:, 3] + rows[:, 4])
    k = int(np.ceil(len(rows) / 3))
    bound = np.sort(rows[:, 1])[k - 1]
    assert m["smallest_third_max_area_px"] == bound
    assert m["iou_smallest_third"] == pytest.approx(float(iou[rows[:, 1] <= bound].mean()), abs=1e-12)
    for i in range(len(test)):  # the areas that decide the bound, against brute force
        assert sorted(_object_areas(test.load_mask(i), test.load_instances(i))) == sorted(
            rows[ev.instance_image == i, 1].tolist())


def test_evidence_file_round_trip_gives_the_same_intervals(tiny, tmp_path):
    _, _, test = tiny
    task = get_task("segmentation")
    preds = [np.zeros(test.load_mask(i).shape, np.uint8) for i in range(len(test))]
    save_label_maps(tmp_path / "p.npz", test.image_ids, preds)
    scored = task.score(test, tmp_path / "p.npz", tmp_path, "test")
    save_evidence(tmp_path / "evidence-test.npz", "segmentation", scored.evidence)
    again = task.intervals(load_evidence(tmp_path / "evidence-test.npz"))
    assert again == task.intervals(Evidence("segmentation", 1, scored.evidence))
    lo, hi = again["mean_iou"]
    assert lo <= scored.metrics["mean_iou"] <= hi


def test_a_voc_folder_opens_its_masks_for_a_task_that_needs_masks(cache_dir):
    from benchsuite.data import synthetic_segmentation as synth

    folder = synth.ensure_synthetic_segmentation(cache_dir, "grey")  # a VOC folder with boxes and masks
    spec = f"voc:{folder}"
    assert spec_annotations(spec) == {BOXES, MASKS}
    boxes = open_dataset(spec, cache_dir, cache_dir)
    masks = open_dataset(spec, cache_dir, cache_dir, needs={MASKS})
    assert boxes.info.annotations == [BOXES] and isinstance(masks, VocSegmentationDataset)
    assert masks.info.annotations == [MASKS] and masks.info.name == boxes.info.name
    assert masks.info.fingerprint != boxes.info.fingerprint and masks.info.classes == ["background", "pedestrian"]
    assert dataset_key(spec, {MASKS}) != dataset_key(spec, {BOXES}) and dataset_key(spec) == spec
    with pytest.raises(ConfigError, match="boxes and masks together"):
        open_dataset(spec, cache_dir, cache_dir, needs={MASKS, BOXES})
    synthetic = open_dataset("synthetic-voc:thin", cache_dir, cache_dir, needs={MASKS})
    assert synthetic.info.name == "synthetic-voc-thin" and synthetic.info.origin == "synthetic"


def _evidence(data, maps):
    return seg.SegmentationEvidence.from_images(
        [seg.image_evidence(data.load_mask(i), m, data.num_classes, data.load_instances(i))
         for i, m in enumerate(maps)], data.num_classes)


def test_the_floor_verdict_flags_one_class_everywhere_and_passes_a_segmenter_that_learned(tiny):
    from benchsuite.tasks.segmentation import FLOOR_PIPELINE, floor_comparison, floor_label_maps

    train, _, test = tiny
    floor = floor_label_maps(train, test)
    counts = train.class_pixel_counts()
    assert FLOOR_PIPELINE == "majority-class" and all((m == int(np.argmax(counts))).all() for m in floor)
    truth = [np.where(test.load_mask(i) == VOID, 0, test.load_mask(i)).astype(np.uint8) for i in range(len(test))]
    good = floor_comparison(test, _evidence(test, truth), truth, floor, resamples=200, split="test")
    assert not good["non_result"] and good["gain_ci95"][0] > 0 and good["reason"] is None
    # the floor's mean IU against brute force: its one class's IoU averaged with 0 for every other present class
    cm = np.zeros((test.num_classes,) * 2, np.int64)
    for i, m in enumerate(floor):
        t = test.load_mask(i)
        np.add.at(cm, (t[t != VOID].astype(np.int64), m[t != VOID].astype(np.int64)), 1)
    assert good["mean_iou"] == pytest.approx(float(np.nanmean(seg.per_class_iou(cm))), abs=1e-4)
    itself = floor_comparison(test, _evidence(test, floor), floor, floor, resamples=200)
    assert itself["is_floor"] and not itself["non_result"] and itself["gain"] == 0
    other = [np.full_like(m, 1 - m.flat[0]) for m in floor]  # one class everywhere, but not the majority
    blind = floor_comparison(test, _evidence(test, other), other, floor, resamples=200, split="test")
    assert blind["non_result"] and blind["reason"].startswith("test mean IU") and "below" in blind["reason"]
    nudged = [m.copy() for m in floor]
    nudged[0][0, 0] = 1 - nudged[0][0, 0]  # the floor with one pixel changed: not its own maps, not a result
    close = floor_comparison(test, _evidence(test, nudged), nudged, floor, resamples=200)
    assert close["non_result"] and not close["is_floor"] and close["reason"].startswith("mean IU")
