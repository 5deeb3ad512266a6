"""The report's data model, rendering, compare and export on a run folder written by hand."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.cli import main
from benchsuite.errors import ConfigError
from benchsuite.report.compare import compare_runs
from benchsuite.report.markdown import write_report
from benchsuite.report.model import build_model
from benchsuite.report.plots import pareto_front
from benchsuite.results.export import export_run
from benchsuite.results.table import load_run

CLASSES = ["plane", "car", "bird"]


def _record(pipeline, family, task="classification", seed=0, status="ok", metrics=None, fit=1.0, ips=100.0,
            predict_s=2.0, ref=False, error=None, fit_info=None):
    dataset = "cifar10" if task == "classification" else "voc2007"
    return {
        "run_id": "hand", "job_id": f"{task}--{dataset}--{pipeline}--s{seed}", "task": task, "dataset": dataset,
        "dataset_fingerprint": "fp-" + dataset, "data_origin": "real", "data_canonical": True, "split": "test",
        "split_fingerprint": "sfp-" + dataset, "pipeline": pipeline, "family": family,
        "pretrained_reference": ref, "status": status, "failure": None if status == "ok" else "exception",
        "error": error, "metrics": metrics or {}, "memory": {"peak_rss_mb": 512.0},
        "timing": {"fit_s": fit, "images_per_s": ips, "predict_s": predict_s, "latency_ms_p50": 1.5,
                   "latency_ms_p95": 2.5},
        "params": {}, "fit_info": fit_info or {}, "seed": seed, "device": "cpu", "profile": "quick",
        "artifacts": {}, "finished_at": "2026-01-01T00:00:00",
    }


def _cls(acc, lo, hi):
    return {"accuracy": acc, "accuracy_ci95": [lo, hi], "macro_f1": acc - 0.01,
            "per_class_accuracy": dict(zip(CLASSES, [acc, acc - 0.05, acc + 0.05]))}


def _det(ap, small=None):
    return {"map50": ap, "coco_ap": ap / 2, "ap_small": small, "ap_medium": ap / 2, "ap_large": ap / 1.5,
            "per_class": {c: {"ap50": ap} for c in CLASSES},
            "pr_curves": {c: {"recall": [0.1, 0.5], "precision": [1.0, ap]} for c in CLASSES}}


def write_run(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True)
    run = {"run_id": folder.name, "profile": "quick", "created_at": "2026-01-01T00:00:00Z",
           "argv": ["run", "--profile", "quick"],
           "config": {"device": "cpu", "device_requested": "auto", "jobs": 1, "seeds": [0],
                      "eval_splits": ["test"]},
           "machine": {"cpu": "Test CPU", "cores": 2, "memory_gb": 8, "gpu": None, "platform": "Linux"},
           "versions": {"python": "3.11", "torch": "2.0"}, "git": {"commit": "abcdef1234567", "dirty": False},
           "datasets": [
               {"name": "cifar10", "origin": "real", "canonical": True, "fingerprint": "fp-cifar10",
                "description": "CIFAR-10, canonical release", "split_counts": {"train": 45000, "test": 10000},
                "split_fingerprints": {"test": "sfp-cifar10"}, "root": "/data/cifar", "notes": []},
               {"name": "voc2007", "origin": "real", "canonical": False, "fingerprint": "fp-voc2007",
                "description": "VOC layout", "split_counts": {"test": 70},
                "split_fingerprints": {"test": "sfp-voc2007"}, "root": "/data/voc", "notes": []}]}
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


#: what a pipeline's ``report_group`` and ``report_note`` declarations put into its records (Task.execute)
STUDY = {"report_group": "Fusion study", "report_note": "FPN paper: AP_small **17.8** versus **9.6**."}


def hand_records() -> list[dict]:
    return [
        _record("nn-l1", "classical", metrics=_cls(0.35, 0.33, 0.37), fit=1.0, ips=1000.0),
        _record("hog-svm", "classical", metrics=_cls(0.55, 0.53, 0.57), fit=10.0, ips=5000.0),
        _record("cnn", "deep", metrics=_cls(0.70, 0.68, 0.72), fit=200.0, ips=2500.0, predict_s=4.0),
        _record("resnet-ref", "deep", metrics=_cls(0.93, 0.92, 0.94), ref=True, fit=0.5, ips=300.0,
                fit_info={"weights": "imagenet-v1"}),
        _record("broken", "deep", status="failed", error="RuntimeError: boom"),
        _record("hog-det", "classical", task="detection", metrics=_det(0.30, 0.05), fit=30.0, ips=4.0),
        _record("frcnn", "deep", task="detection", seed=0, metrics=_det(0.58, 0.2), fit=300.0, ips=2.0),
        _record("frcnn", "deep", task="detection", seed=1, metrics=_det(0.62, 0.2), fit=340.0, ips=2.0),
        _record("fusion-fpn", "deep", task="detection", metrics=_det(0.50, 0.15), fit=100.0, ips=1.0,
                fit_info=STUDY),
        _record("fusion-last", "deep", task="detection", metrics=_det(0.40, 0.07), fit=90.0, ips=1.2,
                fit_info=STUDY),
    ]


@pytest.fixture()
def hand_run(tmp_path) -> Path:
    return write_run(tmp_path / "hand", hand_records())


def test_headline_picks_best_trained_pipeline_of_each_family(hand_run):
    model = build_model(hand_run)
    groups = {g.task: g for g in model.groups}
    h = groups["classification"].headline
    assert (h.classical.pipeline, h.deep.pipeline, h.reference.pipeline) == ("hog-svm", "cnn", "resnet-ref")
    assert h.gap == pytest.approx(0.15) and h.gap_clear
    assert h.fit_ratio == pytest.approx(20.0) and h.speed_ratio == pytest.approx(0.5)
    d = groups["detection"].headline
    assert d.deep.pipeline == "frcnn" and d.deep.seeds == [0, 1]
    assert d.deep.primary.value == pytest.approx(0.60)  # the seed mean, not the best seed
    assert d.gap == pytest.approx(0.30) and d.fit_ratio == pytest.approx(320.0 / 30.0)
    assert [r.pipeline for r in model.failures] == ["broken"]
    (study,) = model.studies()  # the records that declare a report group, and nothing else
    assert study.title == "Fusion study" and study.notes == [STUDY["report_note"]]
    assert [(g.task, [r.pipeline for r in rows]) for g, rows in study.parts] == [
        ("detection", ["fusion-fpn", "fusion-last"])]


def test_report_files_say_what_the_model_says(hand_run):
    paths = write_report(hand_run)
    md = paths.markdown.read_text()
    assert "SYNTHETIC" not in md
    assert "best deep `cnn` 0.700 (95% CI 0.680–0.720) vs best classical `hog-svm` 0.550" in md
    assert "deep ahead by **15.0 points** (the 95% intervals do not overlap)" in md
    assert "| hog-svm | classical | 0 | 0.550 | 0.530–0.570 |" in md
    assert "resnet-ref (pretrained ref.)" in md and "imagenet-v1" in md
    assert "`broken` (classification, cifar10, seed 0): exception: RuntimeError: boom" in md
    assert "## Fusion study" in md and "17.8" in md and "9.6" in md
    study = md[md.index("## Fusion study"):]
    assert "| fusion-fpn | voc2007 | deep | 0 | 0.500 |" in study and "frcnn" not in study.split("##")[1]
    assert "not canonical" in md
    page = paths.html.read_text()
    assert page.count('src="data:image/png;base64,') >= 4  # trade-off, per class, PR, sizes ...
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for png in (hand_run / "report_files").glob("*.png"):
        assert f"report_files/{png.name}" in md


def test_synthetic_data_is_said_in_the_first_lines(tmp_path):
    run = write_run(tmp_path / "syn", hand_records()[:3])
    info = json.loads((run / "run.json").read_text())
    info["datasets"][0]["origin"] = "synthetic"
    (run / "run.json").write_text(json.dumps(info))
    md = write_report(run, html=False, plots=False).markdown.read_text().splitlines()
    assert any("SYNTHETIC DATA" in line for line in md[:4])


def test_pareto_front_keeps_only_undominated_points():
    pts = [(1.0, 0.9), (10.0, 0.5), (5.0, 0.4), (100.0, 0.2), (50.0, 0.1)]
    assert pareto_front(pts) == [0, 1, 3]


def test_compare_flags_a_clear_drop_and_slow_fit_only(hand_run, tmp_path):
    records = hand_records()
    worse = copy.deepcopy(records)
    by = {r["pipeline"] + str(r["seed"]): r for r in worse}
    by["cnn0"]["metrics"] = _cls(0.60, 0.58, 0.62)  # a drop outside both intervals
    by["hog-svm0"]["metrics"] = _cls(0.54, 0.52, 0.56)  # inside the noise
    by["nn-l10"]["timing"]["fit_s"] = 3.0  # x3, above the 0.5 s floor
    by["hog-det0"]["timing"]["fit_s"] = 30.2
    run_b = write_run(tmp_path / "worse", worse)
    _, changes = compare_runs(hand_run, run_b)
    flagged = {c.pipeline: c.flags for c in changes if c.flags}
    assert flagged == {"cnn": ["worse -10.0 pts"], "nn-l1": ["slower fit ×3"]}
    assert {c.pipeline for c in changes if c.regression} == {"cnn", "nn-l1"}
    _, same = compare_runs(hand_run, hand_run)
    assert not any(c.flags for c in same)


def test_compare_cli_exit_status(hand_run, tmp_path, capsys):
    worse = hand_records()
    worse[2]["metrics"] = _cls(0.60, 0.58, 0.62)
    run_b = write_run(tmp_path / "worse", worse)
    out = tmp_path / "cmp.md"
    assert main(["compare", str(hand_run), str(run_b), "--out", str(out)]) == 0
    assert main(["compare", str(hand_run), str(run_b), "--fail-on-regression"]) == 1
    text = capsys.readouterr().out
    assert "**REGRESSION** `cnn`" in text and "| classification | cifar10 | test | cnn |" in text
    assert main(["compare", str(hand_run), str(hand_run), "--fail-on-regression"]) == 0
    shutil.rmtree(run_b)
    assert main(["compare", str(hand_run), str(run_b)]) == 2  # not a run folder: a clear error


def test_export_csv_round_trip(hand_run):
    path = export_run(hand_run, "csv")
    back = pd.read_csv(path)
    table = load_run(hand_run)
    assert list(back.columns) == list(table.columns) and len(back) == len(table) == 10
    pd.testing.assert_series_equal(back["metrics.map50"], table["metrics.map50"].astype(float), check_names=False)
    assert back.loc[back.pipeline == "hog-svm", "metrics.accuracy_ci95.lo"].item() == pytest.approx(0.53)
    assert list(back["pipeline"]) == list(table["pipeline"])


def test_export_parquet_round_trip_or_clear_message(hand_run):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'benchsuite\[parquet\]'"):
            export_run(hand_run, "parquet")
        return
    back = pd.read_parquet(export_run(hand_run, "parquet"))
    assert list(back["pipeline"]) == list(load_run(hand_run)["pipeline"])


def test_compare_declines_timing_calls_across_machines_and_under_contention(hand_run, tmp_path):
    slower = hand_records()
    by = {r["pipeline"] + str(r["seed"]): r for r in slower}
    by["nn-l10"]["timing"]["fit_s"] = 3.0  # x3: a slowdown on one machine kind
    other_machine = write_run(tmp_path / "other", slower)
    info = json.loads((other_machine / "run.json").read_text())
    info["machine"]["cpu"] = "Another CPU"
    (other_machine / "run.json").write_text(json.dumps(info))
    text, changes = compare_runs(hand_run, other_machine)
    flags = {c.pipeline: c.flags for c in changes if c.flags}
    assert flags == {"nn-l1": ["timing not compared: different machines (would be: slower fit ×3)"]}
    assert not any(c.regression for c in changes) and "Different machines" in text
    _, forced = compare_runs(hand_run, other_machine, force=True)
    assert {c.pipeline: c.flags for c in forced if c.flags} == {"nn-l1": ["slower fit ×3"]}

    by["nn-l10"]["timing"]["contended"] = True
    contended = write_run(tmp_path / "busy", slower)
    text, changes = compare_runs(hand_run, contended)
    assert {c.pipeline: c.flags for c in changes if c.flags} == {
        "nn-l1": ["timing not compared: timed under contention in B (would be: slower fit ×3)"]}
    assert "Contention" in text


def test_shortened_records_are_named_in_the_headline_and_not_quality_compared(hand_run, tmp_path):
    records = hand_records()
    by = {r["pipeline"] + str(r["seed"]): r for r in records}
    by["cnn0"]["metrics"] = _cls(0.50, 0.48, 0.52)  # a clear drop, but from a cut schedule
    by["cnn0"]["shortcuts"] = [{"what": "epochs", "asked": 9, "done": 1, "reason": "--time-budget 60 s"}]
    run_b = write_run(tmp_path / "cut", records)
    md = write_report(run_b, html=False, plots=False).markdown.read_text()
    head = md[:md.index("## Data and run")]
    assert "did less work than the profile asked" in head and "epochs 1 of 9 (--time-budget 60 s)" in head
    assert "Not comparable: `cnn`" in head and "| cnn (shortened) |" in md
    _, changes = compare_runs(hand_run, run_b)
    (cnn,) = [c for c in changes if c.pipeline == "cnn"]
    assert cnn.flags == ["quality not compared: shortened in B (less work than the profile asked)"]
    assert not cnn.regression


def test_harness_floor_rows_are_shown_apart_and_never_headline(tmp_path):
    records = hand_records()
    floor = _record("null-classifier", "classical", metrics=_cls(0.10, 0.09, 0.11), fit=0.0001, ips=1e6)
    floor["harness_floor"] = True
    floor["timing"]["wall_s"] = 1.3
    only_floor_and_deep = [r for r in records if r["family"] == "deep"] + [floor]
    run_dir = write_run(tmp_path / "floor", only_floor_and_deep)
    model = build_model(run_dir, intervals=False)
    (g,) = [g for g in model.groups if g.task == "classification"]
    assert g.headline.classical is None and g.headline.deep.pipeline == "cnn"
    md = write_report(run_dir, html=False, plots=False).markdown.read_text()
    assert "Harness floor (`null-classifier`" in md and "job wall 1.30 s" in md
    assert "| null-classifier (harness floor) |" in md


def test_a_non_result_is_never_the_best_of_its_family_in_the_headline(tmp_path):
    records = hand_records()
    floor = _record("mean-box", "classical", task="detection", metrics=_det(0.20), fit=0.1, ips=1e4)
    blind = _record("blind-det", "classical", task="detection", metrics=_det(0.35), fit=5.0, ips=50.0)
    blind["metrics"]["floor"] = {"pipeline": "mean-box", "non_result": True, "reason": "val mAP50 gain interval "
                                 "[-0.02, 0.10] reaches 0"}
    by = {r["pipeline"] + str(r["seed"]): r for r in records}
    for name in ("frcnn0", "frcnn1", "fusion-fpn0", "fusion-last0"):  # every deep detector flagged too
        by[name]["metrics"]["floor"] = {"pipeline": "mean-box", "non_result": True, "reason": "blind"}
    run_dir = write_run(tmp_path / "flagged", [*records, floor, blind])
    (g,) = [g for g in build_model(run_dir, intervals=False).groups if g.task == "detection"]
    h = g.headline
    assert h.classical.pipeline == "hog-det" and h.deep is None and h.gap is None
    assert [s.pipeline for s in h.passed_over] == ["blind-det", "frcnn", "fusion-fpn", "fusion-last"]
    md = write_report(run_dir, html=False, plots=False).markdown.read_text()
    head = md[:md.index("## Data and run")]
    assert "only classical pipelines gave a result; best `hog-det`" in head
    assert "Left out as non-results" in head and "`blind-det`" in head
    assert "| blind-det (non-result) |" in md and "| mean-box |" in md


def _with_drift(records: list[dict], drifts: dict[str, float | None]) -> list[dict]:
    for r in records:
        r["determinism"] = {"exact_reruns": "not checked", "cpu_drift": drifts.get(r["pipeline"])}
    return records


def test_compare_across_cpu_types_sets_each_change_against_the_measured_drift(tmp_path):
    drifts = {"nn-l1": 0.0, "hog-svm": 0.002, "cnn": 0.003}
    a = write_run(tmp_path / "xeon", _with_drift(hand_records(), drifts))
    moved = _with_drift(hand_records(), drifts)
    by = {r["pipeline"]: r for r in moved}
    by["hog-svm"]["metrics"] = _cls(0.5511, 0.53, 0.57)   # +0.0011: within hog-svm's 0.002
    by["cnn"]["metrics"] = _cls(0.7050, 0.68, 0.72)       # +0.005: beyond cnn's 0.003
    by["hog-det"]["metrics"] = _det(0.31, 0.05)           # no drift measured
    b = write_run(tmp_path / "epyc", moved)
    info = json.loads((b / "run.json").read_text())
    info["machine"]["cpu"] = "AMD EPYC"
    (b / "run.json").write_text(json.dumps(info))
    text, changes = compare_runs(a, b)
    notes = {c.pipeline: c.reproducibility for c in changes}
    assert notes["nn-l1"] == "same on both CPU types"
    assert notes["hog-svm"].startswith("within the cross-CPU drift (Δ 0.11 pts ≤ 0.20 pts")
    assert notes["cnn"].startswith("beyond the cross-CPU drift (Δ 0.50 pts > 0.30 pts")
    assert "not measured" in notes["hog-det"]
    assert "## Across CPU types" in text and "Test CPU" in text and "AMD EPYC" in text


def test_compare_of_two_runs_of_one_commit_on_one_machine_checks_the_reruns(tmp_path):
    a = write_run(tmp_path / "first", hand_records())
    again = hand_records()
    {r["pipeline"]: r for r in again}["hog-svm"]["metrics"] = _cls(0.5501, 0.53, 0.57)
    b = write_run(tmp_path / "second", again)
    text, changes = compare_runs(a, b)
    notes = {c.pipeline: c.reproducibility for c in changes}
    assert notes["nn-l1"].startswith("identical rerun")
    assert notes["hog-svm"].startswith("rerun differs: seed 0 accuracy 0.55 vs 0.5501")
    assert "## Reruns" in text and "gave identical metrics" in text

    info = json.loads((b / "run.json").read_text())
    info["git"]["commit"] = "another"  # another commit: a comparison of code, not a rerun
    (b / "run.json").write_text(json.dumps(info))
    _, changes = compare_runs(a, b)
    assert not any(c.reproducibility for c in changes)


def test_a_non_result_is_marked_beside_its_row_with_its_reason(tmp_path):
    reason = "mAP50 0.102 is below the mean-box floor's 0.173 (gain's 95% interval -0.120 to -0.020)"
    floor = {"pipeline": "mean-box", "map50": 0.173, "gain": -0.071, "gain_ci95": [-0.12, -0.02], "is_floor": False,
             "non_result": True, "reason": reason}
    records = [_record("hog-det", "classical", task="detection", metrics={**_det(0.102), "floor": floor}),
               _record("mean-box", "classical", task="detection",
                       metrics={**_det(0.173), "floor": {**floor, "non_result": True, "is_floor": True}}),
               _record("frcnn", "deep", task="detection",
                       metrics={**_det(0.6), "floor": {**floor, "non_result": False, "reason": None}})]
    md = write_report(write_run(tmp_path / "flagged", records)).markdown.read_text()
    assert "| hog-det (non-result) |" in md
    assert f"`hog-det` (seed 0): {reason}" in md
    assert "mean-box (non-result)" not in md and "frcnn (non-result)" not in md  # the floor itself, a result


def test_work_one_pipeline_did_for_others_is_said_beside_the_rows_that_read_it(tmp_path):
    """Issue 28, part 5: a consumer that read its proposals from the cache has fit seconds without them; the
    report says so beside its group, and in the headline, with what the producer's job paid (``produced``)."""
    producer_job = "proposals--voc2007--selective-search--s0"
    used = {"selective-search": {"producer_job": producer_job, "cached_images": 170, "computed_images": 0,
                                 "read_s": 0.1, "compute_s": 0.0, "declared": True}}
    rcnn = {**_record("rcnn", "deep", task="detection", metrics=_det(0.8), fit=100.0), "consumed": used}
    hog = _record("hog-det", "classical", task="detection", metrics=_det(0.7), fit=300.0)
    ss = {**_record("selective-search", "classical", task="proposals",
                    metrics={"recall_at_2000_iou50": 0.96, "mabo": 0.8}), "job_id": producer_job,
          "produced": {"consumer_jobs": [rcnn["job_id"]], "images": {"train": 80, "val": 20}, "computed_images": 100,
                       "cached_images": 0, "read_s": 0.0, "compute_s": 136.0, "proposer_key": "selective-search-x"}}
    md = write_report(write_run(tmp_path / "shared", [rcnn, hog, ss])).markdown.read_text()
    assert "Work shared between pipelines" in md
    line = next(x for x in md.splitlines() if x.startswith("- `rcnn` (seed 0) read the output of `selective-search`"))
    assert "for 170 images from the cache and computed 0 itself" in line
    assert "computed 80 train, 20 val images once for 1 consumer job(s) in 136 s" in line
    headline = next(x for x in md.splitlines() if "best deep `rcnn`" in x)
    assert "`rcnn` read another pipeline's cached output" in headline
    alone = write_report(write_run(tmp_path / "alone", [_record("rcnn", "deep", task="detection",
                                                                  metrics=_det(0.8)), hog])).markdown.read_text()
    assert "Work shared" not in alone and "cached output" not in alone
