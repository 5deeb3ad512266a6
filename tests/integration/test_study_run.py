"""Studies end to end on the smoke data (issue 25): every point an ordinary job with the axis and value in its id and
records, a plugin pipeline taking part without code of its own, the report's study section (curves, cost,
crossover headline) in a page Chromium opens, ``compare`` and ``export`` of study runs, corruption scored by one fit
per pipeline, resolution with AP by object size, and the same records from ``--jobs 2`` and from an interrupted
and resumed run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.errors import ConfigError
from benchsuite.report.compare import compare_runs
from benchsuite.results.export import export_run
from benchsuite.runner.plan import choose_work
from benchsuite.runner.run import RunConfig, run
from benchsuite.studies.axes import StudyPlan

pytestmark = pytest.mark.slow

#: a one-epoch, narrow cnn: a deep classifier in a few seconds (its accuracy does not matter here)
TINY_CNN = {"cnn": {"epochs": 1, "widths": [8, 16, 32]}}
#: what must be the same in two runs of one study (timings and times may differ)
SAME = ("status", "metrics", "params", "study", "split_fingerprint", "dataset_fingerprint", "dataset", "split")


def _study(out: Path, cache_dir: Path, axis: str, values: str, pipelines: list[str], **kw) -> RunConfig:
    kw.setdefault("tasks", ["classification"])
    return RunConfig(profile="smoke", out=out, cache_dir=cache_dir, data_root=out.parent / "no-data",
                     pipelines=pipelines, study=StudyPlan(axis, values), **kw)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def _essentials(run_dir: Path) -> dict[tuple[str, str], dict]:
    return {(r["job_id"], r["split"]): {k: r.get(k) for k in SAME} for r in _records(run_dir)}


def test_train_size_points_are_ordinary_jobs_and_the_report_draws_the_study(tmp_path, cache_dir, kit_dist,
                                                                           assert_records_match_schema):
    out = tmp_path / "ts"
    result = run(_study(out, cache_dir, "train-size", "20%,100%", ["nn-l1", "kit-good", "cnn"], params=TINY_CNN))
    recs = _records(out)
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    ids = sorted(r["job_id"] for r in recs)
    assert "classification--cifar10.train-size-20pct--kit-good--s0" in ids  # the axis and value in the job id
    by = {(r["pipeline"], r["study"]["text"]): r for r in recs}
    small, full = by[("nn-l1", "0.2")], by[("nn-l1", "1.0")]
    assert small["study"]["axis"] == "train-size" and small["study"]["label"] == "20%"
    assert small["timing"]["train_images"] == 120 and full["timing"]["train_images"] == 600  # of the capped 600
    assert small["params"]["refit_on_trainval"] is False  # a point trains on its own images
    assert by[("cnn", "0.2")]["params"]["epochs"] == 2 and by[("cnn", "1.0")]["params"]["epochs"] == 1  # the floor
    assert by[("kit-good", "0.2")]["fit_info"]["reference_images"] == 120  # the plugin saw the subset
    assert small["study"]["fingerprint"] != full["study"]["fingerprint"]
    manifests = sorted(p.name for p in (out / "splits").glob("*.study.json"))
    assert manifests == ["cifar10.train-size-100pct.s0.study.json", "cifar10.train-size-20pct.s0.study.json"]
    assert_records_match_schema(out)

    md = (out / "report.md").read_text()
    assert "## Study: train-size on cifar10 (classification)" in md
    assert re.search(r"- \*\*train-size on cifar10\*\* \(classification, accuracy\): (no crossover|the best)", md)
    html = result.html_path.read_text()
    for title in ("accuracy against train-size", "Cost against train-size"):
        assert f'<img alt="{title}" src="data:image/png;base64,' in html
    assert "## classification: cifar10.train-size-20pct" not in md  # the points are shown in the study only

    table = pd.read_csv(export_run(out, "csv", tmp_path / "ts.csv"))
    assert {"study.axis", "study.position", "study.label", "study.seed"} <= set(table.columns)
    assert sorted(table["study.position"].unique()) == [0.2, 1.0]

    again = tmp_path / "ts-seed1"
    run(_study(again, cache_dir, "train-size", "20%,100%", ["nn-l1", "kit-good"], seeds=[1], write_report=False))
    text, changes = compare_runs(out, again)
    assert "## Study crossovers" in text and "train-size on cifar10 (classification): A " in text
    assert {c.dataset for c in changes} == {"cifar10.train-size-20pct", "cifar10.train-size-100pct"}


def test_one_fit_scores_every_corruption_and_the_report_has_a_panel_per_family(tmp_path, cache_dir, kit_dist):
    out = tmp_path / "cor"
    run(_study(out, cache_dir, "corruption", "gaussian-noise-5,contrast-5", ["nn-l1", "kit-good"]))
    recs = _records(out)
    jobs = {r["job_id"] for r in recs}
    assert jobs == {"classification--cifar10.corruption--nn-l1--s0", "classification--cifar10.corruption--kit-good--s0"}
    for job in jobs:
        mine = [r for r in recs if r["job_id"] == job]
        assert sorted(r["split"] for r in mine) == ["test", "test.contrast-5", "test.gaussian-noise-5"]
        assert len({r["timing"]["fit_s"] for r in mine}) == 1  # trained once, on clean images
        assert {r["study"]["curve"] for r in mine} == {"", "contrast", "gaussian-noise"}
    clean = next(r for r in recs if r["pipeline"] == "kit-good" and r["split"] == "test")
    faded = next(r for r in recs if r["pipeline"] == "kit-good" and r["split"] == "test.contrast-5")
    assert faded["metrics"]["accuracy"] != clean["metrics"]["accuracy"]  # the colour histograms saw the change
    md = (out / "report.md").read_text()
    assert "## Study: corruption on cifar10 (classification)" in md and "| Gaussian noise 5 |" in md


def test_resolution_scales_detection_data_and_reports_ap_by_size(tmp_path, cache_dir):
    out = tmp_path / "res"
    run(_study(out, cache_dir, "resolution", "0.5,1", ["mean-box"], tasks=["detection"],
               datasets=["synthetic-voc"]))
    recs = _records(out)
    assert sorted(r["dataset"] for r in recs) == ["synthetic-voc.resolution-x0.5", "synthetic-voc.resolution-x1"]
    half, whole = sorted(recs, key=lambda r: r["study"]["position"])
    assert half["split_fingerprint"] != whole["split_fingerprint"]  # the test images changed
    md = (out / "report.md").read_text()
    assert "AP by object size at every point" in md and "| x0.5 | mean-box |" in md


def test_axes_refuse_what_they_cannot_derive_before_any_job(tmp_path, cache_dir):
    with pytest.raises(ConfigError, match="resolution axis changes the images in memory, but ss-hog-svm reads"):
        choose_work(_study(tmp_path / "a", cache_dir, "resolution", "0.5", ["ss-hog-svm"], tasks=["detection"]))
    with pytest.raises(ConfigError, match="train-size: fraction '200%' outside"):
        choose_work(_study(tmp_path / "b", cache_dir, "train-size", "200%", ["nn-l1"]))


def _argv(out: Path, cache_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchsuite", "study", "train-size", "--values", "20%,50%,100%", "--profile",
            "smoke", "--tasks", "classification", "--pipelines", "nn-l1,kit-good", "--out", str(out),
            "--cache-dir", str(cache_dir), "--no-report", *extra]


def test_a_study_gives_the_same_records_with_two_jobs_and_when_interrupted_and_resumed(tmp_path, cache_dir,
                                                                                     kit_dist):
    parallel = tmp_path / "parallel"
    done = subprocess.run(_argv(parallel, cache_dir, "--jobs", "2"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    stopped = tmp_path / "stopped"
    proc = subprocess.Popen(_argv(stopped, cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = stopped / "records.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and records.read_text().count("\n") >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err[-3000:]
    if proc.returncode == 130:
        assert "--resume" in err and records.read_text().count("\n") < 6
    resumed = subprocess.run(_argv(stopped, cache_dir, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, want = _essentials(stopped), _essentials(parallel)
    assert len(_records(stopped)) == len(got) == 6  # one record per job and split, none twice
    assert got == want
