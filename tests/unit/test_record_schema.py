"""The record schema (benchsuite.results.schema): validation that names the key and the type, the one shape of a
validation choice (Context.record_selection), version-1 records read as the current version, and the runner's
check of the records it writes."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.results.schema import (
    SCHEMA_VERSION,
    RecordSchemaError,
    fit_info_problems,
    record_problems,
    upgrade_record,
    validate_record,
)
from benchsuite.results.store import RunStore
from benchsuite.results.tidy import records_table
from benchsuite.runner.records import checked_record


def _record(**changes) -> dict:
    """A record as the runner writes it (a successful detection job on its test split)."""
    rec = {
        "schema_version": SCHEMA_VERSION, "run_id": "r1", "job_id": "detection--synthetic-voc--hog-svm-det--s0",
        "task": "detection", "dataset": "synthetic-voc", "dataset_fingerprint": "abc", "data_origin": "synthetic",
        "data_canonical": None, "split": "test", "split_fingerprint": "def", "pipeline": "hog-svm-det",
        "family": "classical", "pretrained_reference": False, "harness_floor": False, "status": "ok",
        "failure": None, "error": None, "metrics": {"map50": 0.5, "map50_ci95": [0.4, 0.6]},
        "timing": {"fit_s": 1.5, "fit_decode_s": 0.1, "fit_imports": [], "predict_s": 0.5, "images": 16,
                   "images_per_s": 32.0, "latency_ms_p50": 30.0, "latency_ms_p95": None, "contended": False,
                   "fit": {"wall_s": 1.5, "cpu_s": 1.4, "threads": 2, "cores": 2, "others_cpu_cores": 0.01,
                           "run_delay_s": 0.0, "wait_share": 0.0, "load_start": 0.5, "load_end": 0.6,
                           "contended": False},
                   "method": {"clock": "wall clock"}, "shared_machine": False, "wall_s": 4.0},
        "memory": {"peak_rss_mb": 180.0, "gpu_peak_mb": None}, "params": {"c_values": [0.01, 0.1]},
        "fit_info": {"C": 0.1, "val_map50": 0.4,
                     "selection": {"metric": "val_map50", "grid": [{"C": 0.01}, {"C": 0.1}], "scores": [0.3, 0.4],
                                   "chosen": {"C": 0.1}, "score": 0.4}},
        "shortcuts": [], "shortened": False, "output": {"detections": 40}, "seed": 0, "device": "cpu",
        "determinism": {"cpu": "bit-identical"}, "profile": "smoke", "artifacts": {"predictions": "jobs/x/p.npz"},
        "log": "jobs/x/log.txt", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:05+00:00",
    }
    rec.update(changes)
    return rec


# ------------------------------------------------------------------------------------------------ validation


def test_a_record_as_the_runner_writes_it_validates():
    rec = _record()
    assert record_problems(rec) == []
    assert validate_record(rec) is rec


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": "0"}, "seed: expected int, got str '0'"),
    ({"status": "done"}, "status: expected one of 'ok', 'failed', got str 'done'"),
    ({"timing": {"fit_s": "fast"}}, "timing.fit_s: expected number or null, got str 'fast'"),
    ({"timing": {"fit": {"threads": 1.5}}}, "timing.fit.threads: expected int, got float 1.5"),
    ({"shortened": 1}, "shortened: expected bool, got int 1"),
    ({"fit_info": {"val_map50": {"nms_iou=0.3": 0.4}}},
     "fit_info.val_map50: expected number or null, got dict {'nms_iou=0.3': 0.4}"),
    ({"fit_info": {"selection": {"metric": "val_map50", "grid": [{"C": 0.1}], "scores": ["x"], "chosen": {}}}},
     "fit_info.selection.scores[0]: expected number or null, got str 'x'"),
    ({"fit_info": {"selection": {"metric": "val_map50", "grid": [], "scores": [], "chosen": {}}}},
     "fit_info.selection.score: missing (expected number or null)"),
    ({"fit_info": {"selection_per_class": {"car": {"metric": "val_ap50", "grid": [{"C": [1]}], "scores": [0.1],
                                                   "chosen": {}, "score": None}}}},
     "fit_info.selection_per_class.car.grid[0].C: expected string or int or number or bool or null, got list [1]"),
    ({"artifacts": {"predictions": 3}}, "artifacts.predictions: expected string, got int 3"),
])
def test_validation_names_the_key_and_the_expected_type(change, message):
    rec = _record(**change)
    assert message in record_problems(rec)
    with pytest.raises(RecordSchemaError, match=message.split(":")[0].replace("[", r"\[").replace("]", r"\]")):
        validate_record(rec)


def test_a_missing_required_key_is_named_and_unknown_keys_are_allowed():
    rec = _record(node="host-1", executor={"name": "local"}, something_new={"a": 1})
    del rec["metrics"]
    assert record_problems(rec) == ["metrics: missing (expected an object of (any JSON value))"]


# ------------------------------------------------------------------------------------------------ selections


def test_record_selection_stores_one_shape_with_python_values():
    ctx = Context()
    ctx.record_selection(metric="val_accuracy", grid=[{"k": np.int64(1)}, {"k": 3}],
                         scores=[np.float32(0.25), float("nan")], chosen={"k": np.int64(1)})
    sel = ctx.info["selection"]
    assert sel == {"metric": "val_accuracy", "grid": [{"k": 1}, {"k": 3}], "scores": [0.25, None],
                   "chosen": {"k": 1}, "score": 0.25}
    assert type(sel["grid"][0]["k"]) is int and type(sel["scores"][0]) is float
    assert json.loads(json.dumps(ctx.info)) == ctx.info and fit_info_problems(ctx.info) == []


def test_a_staged_search_adds_its_candidates_and_the_later_choice_wins():
    ctx = Context()
    ctx.record_selection(metric="val_map50", grid=[{"C": 0.1}, {"C": 1.0}], scores=[0.2, 0.3], chosen={"C": 1.0})
    ctx.record_selection(metric="val_map50", grid=[{"C": 1.0, "stride": 8}, {"C": 1.0, "stride": 16}],
                         scores=[0.3, 0.35], chosen={"C": 1.0, "stride": 16, "nms": 0.4}, score=0.36)
    sel = ctx.info["selection"]
    assert sel["grid"] == [{"C": 0.1}, {"C": 1.0}, {"C": 1.0, "stride": 8}, {"C": 1.0, "stride": 16}]
    assert sel["scores"] == [0.2, 0.3, 0.3, 0.35]
    assert sel["chosen"] == {"C": 1.0, "stride": 16, "nms": 0.4} and sel["score"] == 0.36


def test_choices_per_class_go_under_their_class():
    ctx = Context()
    for name, best in (("car", 0.5), ("sign", 0.25)):
        ctx.record_selection(metric="val_ap50", grid=[{"nms_iou": 0.3}, {"nms_iou": 0.5}], scores=[best, 0.0],
                             chosen={"nms_iou": 0.3}, for_class=name)
    assert set(ctx.info["selection_per_class"]) == {"car", "sign"} and "selection" not in ctx.info
    assert ctx.info["selection_per_class"]["sign"]["score"] == 0.25
    assert fit_info_problems(ctx.info) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": [{"k": 1}], "scores": [0.1, 0.2]}, "1 candidates in grid but 2 scores"),
    ({"grid": [{"k": [1, 2]}], "scores": [0.1]}, r"selection.grid\[0\].k: expected a JSON scalar"),
    ({"grid": [3], "scores": [0.1]}, r"selection.grid\[0\]: expected an object of settings"),
    ({"grid": [{"k": 1}], "scores": ["high"]}, r"selection.scores\[0\]: expected a number or null"),
    ({"metric": ""}, "selection.metric: expected a non-empty string"),
])
def test_record_selection_refuses_other_shapes(kwargs, message):
    args = {"metric": "val_accuracy", "grid": [{"k": 1}], "scores": [0.1], "chosen": {"k": 1}, **kwargs}
    with pytest.raises(RecordSchemaError, match=message):
        Context().record_selection(**args)


def test_a_second_metric_for_the_same_selection_is_refused():
    ctx = Context()
    ctx.record_selection(metric="val_accuracy", grid=[{"k": 1}], scores=[0.1], chosen={"k": 1})
    with pytest.raises(RecordSchemaError, match="already recorded with metric 'val_accuracy'"):
        ctx.record_selection(metric="val_map50", grid=[{"k": 1}], scores=[0.1], chosen={"k": 1})


# ------------------------------------------------------------------------------------------------ version 1

#: fit_info blocks as version 1 wrote them (no schema_version), one per way a pipeline stored its choice
V1_FIT_INFO = {
    "nn-l1": {"k": 3, "val_accuracy_by_k": {"1": 0.3, "3": 0.35}, "trained_on": "train+val"},
    "hog-svm": {"C": 0.1, "val_accuracy_by_C": {"0.01": 0.5, "0.1": 0.6}, "feature_dim": 100},
    "hog-svm-det": {"C": 0.01, "val_map50_by_C": {"0.01": 0.4, "0.1": 0.3},
                    "val_map50_by_step_stride": {"step=1.2,stride=8": 0.4, "step=1.2,stride=16": 0.45},
                    "val_map50": 0.45},
    "ism": {"codebook_size": 64, "val_map50": {"codebook=32,power=1,bandwidth=0.1": 0.2,
                                               "codebook=64,power=1,bandwidth=0.1": 0.25}},
    "rcnn": {"nms_iou": 0.3, "val_map50": {"nms_iou=0.3": 0.5, "nms_iou=0.5": 0.5}},
    "rcnn-no-val": {"nms_iou": 0.3, "val_map50": {}},
    "opencv-hog-people": {"val_ap50_by_setting": {"context=0.000,hit=0.5": 0.1, "context=0.100,hit=0.5": 0.2},
                          "val_ap50": 0.2},
    "ss-hog-svm": {"per_class": {"car": {"C": 0.1, "nms_iou": 0.3, "val_ap50": 0.7,
                                         "val_ap50_by_C_nms": {"0.1": {"0.3": 0.7, "0.5": 0.6}}},
                                 "sign": {"skipped": "no positives or negatives in train"}}},
    "viola-jones": {"chosen_on_val": {"car": {"stages_missed": 0, "nms_iou": 0.3, "score_mode": "sum",
                                              "val_ap50": 0.4,
                                              "val_ap50_grid": {"score=sum,missed=0,nms=0.3": 0.4,
                                                                "score=sum,missed=1,nms=0.3": 0.35}},
                                      "val_features_per_window": 3.5}},
}


def _v1(pipeline: str) -> dict:
    rec = _record(pipeline=pipeline, fit_info=copy.deepcopy(V1_FIT_INFO[pipeline]))
    del rec["schema_version"]
    return rec


def test_version_1_records_are_read_as_the_current_version():
    out = {p: upgrade_record(_v1(p)) for p in V1_FIT_INFO}
    for p, rec in out.items():
        assert rec["schema_version"] == SCHEMA_VERSION and record_problems(rec) == [], p
    assert out["nn-l1"]["fit_info"]["selection"] == {
        "metric": "val_accuracy", "grid": [{"k": 1}, {"k": 3}], "scores": [0.3, 0.35], "chosen": {"k": 3},
        "score": 0.35}
    assert "val_accuracy_by_k" not in out["nn-l1"]["fit_info"]
    det = out["hog-svm-det"]["fit_info"]["selection"]
    assert det["grid"] == [{"C": 0.01}, {"C": 0.1}, {"pyramid_step": 1.2, "stride": 8},
                           {"pyramid_step": 1.2, "stride": 16}]
    assert det["chosen"] == {"C": 0.01, "pyramid_step": 1.2, "stride": 16} and det["score"] == 0.45
    ism = out["ism"]["fit_info"]
    assert ism["val_map50"] == 0.25 and ism["selection"]["chosen"] == {
        "codebook_size": 64, "specificity_power": 1, "bandwidth": 0.1}
    assert out["rcnn"]["fit_info"]["selection"]["chosen"] == {"nms_iou": 0.3}  # the first best, as rcnn chose
    assert "val_map50" not in out["rcnn-no-val"]["fit_info"] and "selection" not in out["rcnn-no-val"]["fit_info"]
    assert out["opencv-hog-people"]["fit_info"]["selection"]["chosen"] == {"context": 0.1, "hit_threshold": 0.5}
    car = out["ss-hog-svm"]["fit_info"]["selection_per_class"]["car"]
    assert car["grid"] == [{"C": 0.1, "nms_iou": 0.3}, {"C": 0.1, "nms_iou": 0.5}] and car["score"] == 0.7
    vj = out["viola-jones"]["fit_info"]["selection_per_class"]["car"]
    assert vj["chosen"] == {"score_mode": "sum", "stages_missed": 0, "nms_iou": 0.3}
    assert "val_ap50_grid" not in out["viola-jones"]["fit_info"]["chosen_on_val"]["car"]


def test_upgrading_leaves_the_stored_record_alone_and_current_records_as_they_are():
    old = _v1("ism")
    before = copy.deepcopy(old)
    upgrade_record(old)
    assert old == before
    current = _record()
    assert upgrade_record(current) is current


def test_a_run_folder_of_both_versions_reads_as_one_table_of_one_type_per_column(tmp_path):
    lines = [_v1("ism"), _v1("rcnn"), _record(job_id="j-new", pipeline="hog-svm-det")]
    lines[1]["job_id"] = "j-rcnn"
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    records = RunStore(tmp_path).records()
    assert [r["schema_version"] for r in records] == [SCHEMA_VERSION] * 3
    table = records_table(records)
    assert table["fit_info.val_map50"].tolist() == [0.25, 0.5, 0.4]
    assert not [c for c in table.columns if c.startswith("fit_info.val_map50.")]
    assert table["fit_info.selection.metric"].tolist() == ["val_map50"] * 3


def test_a_newer_version_is_read_as_it_is_with_a_warning(caplog):
    rec = _record(schema_version=SCHEMA_VERSION + 1)
    assert upgrade_record(rec) is rec
    assert "newer than this suite's" in caplog.text


# ------------------------------------------------------------------------------------------------ the runner


def test_the_runner_keeps_a_valid_record_as_it_is():
    rec = _record()
    assert checked_record(copy.deepcopy(rec)) == rec


def test_a_pipeline_that_reports_a_wrong_shape_gets_a_failed_record_naming_it():
    rec = checked_record(_record(fit_info={"val_map50": {"nms_iou=0.3": 0.4},
                                           "shortcuts": [{"what": "epochs"}]},
                                 shortcuts=[{"what": "epochs"}], shortened=True))
    assert rec["status"] == "failed" and rec["failure"] == "invalid-output" and rec["metrics"] == {}
    assert "fit_info.val_map50: expected number or null" in rec["error"]
    assert "fit_info.shortcuts[0].reason: missing" in rec["error"]
    assert rec["fit_info"] == {} and rec["shortcuts"] == [] and rec["shortened"] is False
    assert record_problems(rec) == []


def test_non_finite_scores_are_stored_as_null():
    ctx = Context()
    ctx.record_selection(metric="val_ap50", grid=[{"t": 0.5}], scores=[math.inf], chosen={"t": 0.5})
    assert ctx.info["selection"]["scores"] == [None] and ctx.info["selection"]["score"] is None


def test_benchsuite_check_names_a_selection_of_another_shape():
    from benchsuite.api import Classifier
    from benchsuite.testing import check_pipeline

    class OwnSelection(Classifier):
        """Records its choice on val in a shape of its own."""

        id = "own-selection"
        family = "classical"
        devices = ("cpu",)

        def fit(self, train, val, ctx):
            ctx.record(selection={"k": 1})
            return self

        def predict(self, images):
            return np.zeros(len(images), np.int64)

    (result,) = check_pipeline(OwnSelection, checks=["fit_info_json"])
    assert result.failed and "fit_info.selection.metric: missing (expected string)" in result.message
    assert "ctx.select()" in result.message
