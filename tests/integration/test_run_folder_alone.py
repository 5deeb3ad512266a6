"""The report reads, never recomputes from data (issue 16): a smoke run folder copied elsewhere, with its data sets
out of reach, gives the same report.html and compare output (intervals and gallery included) as in place; one
written before tasks saved evidence says its intervals are unavailable instead of failing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchsuite.report.compare import compare_runs
from benchsuite.report.markdown import write_report
from benchsuite.report.model import build_model
from benchsuite.runner.run import RunConfig, run

PIPELINES = ["nn-l1", "mean-box", "sliding-boxes"]
INTERVALS = {"classification": "accuracy", "detection": "map50", "proposals": "recall_at_1000_iou50"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, cache_dir) -> tuple[Path, Path]:
    """A smoke run of one pipeline per task, its synthetic data in a cache of its own: ``(run_dir, cache)``."""
    root = tmp_path_factory.mktemp("alone")
    cache = root / "cache"
    shutil.copytree(cache_dir, cache)  # what the session generated already; the run adds what is missing
    result = run(RunConfig(profile="smoke", pipelines=PIPELINES, out=root / "run", cache_dir=cache,
                           data_root=root / "no-data"))
    assert all(r["status"] == "ok" for r in result.records), [r.get("error") for r in result.records]
    return result.run_dir, cache


def _data_intervals(run_dir: Path, record: dict) -> dict[str, list[float] | None]:
    """The intervals as the report computed them before evidence files: from the data set, reopened."""
    from benchsuite.api import Budget
    from benchsuite.data.datasets import open_dataset
    from benchsuite.metrics import bootstrap as bs
    from benchsuite.metrics.detection import match
    from benchsuite.tasks.base import split_cap
    from benchsuite.tasks.per_image import load_ragged

    job = json.loads((run_dir / "jobs" / record["job_id"] / "job.json").read_text())
    ds = open_dataset(job["dataset_spec"], Path(job["data_root"]), Path(job["cache_dir"]), force_synthetic=True)
    data = ds.load("test", split_cap(Budget(**job["budget"]), "test"))
    path = run_dir / "jobs" / record["job_id"] / "predictions-test.npz"
    if record["task"] == "classification":
        with np.load(path) as npz:
            return {"accuracy": list(bs.percentile_interval(bs.accuracy_resamples(npz["labels"] == data.labels)))}
    _, pred = load_ragged(path)
    gt = [s.boxes for s in data], [s.labels for s in data], [s.difficult for s in data]
    if record["task"] == "detection":
        ev = bs.detection_evidence(match(*gt, pred["boxes"], pred["scores"], pred["labels"], data.num_classes))
        return {"map50": list(bs.percentile_interval(bs.map50_resamples(ev)))}
    rec, mabo = bs.proposal_resamples(bs.proposal_evidence(*gt, pred["boxes"], data.num_classes))
    return {"recall_at_1000_iou50": list(bs.percentile_interval(rec)), "mabo": list(bs.percentile_interval(mabo))}


@pytest.mark.slow
def test_a_run_folder_copied_without_its_data_gives_the_same_report_and_compare(smoke_run, tmp_path, monkeypatch):
    run_dir, cache = smoke_run
    in_place = write_report(run_dir)
    html, md = in_place.html.read_text(), in_place.markdown.read_text()
    compared, _ = compare_runs(run_dir, run_dir)
    model = build_model(run_dir)
    for row in model.rows():  # the evidence gives the very intervals the data set gave
        expected = _data_intervals(run_dir, row.record)
        assert {k: [row.estimates[k].lo, row.estimates[k].hi] for k in expected} == expected, row.pipeline

    copy = tmp_path / "elsewhere" / run_dir.name
    shutil.copytree(run_dir, copy)
    for stale in ("report_files", "report.md", "report.html"):  # nothing cached: all from the run folder
        path = copy / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    hidden = cache.with_name("cache-out-of-reach")
    cache.rename(hidden)

    def no_data(*args, **kwargs):
        raise AssertionError("the report reopened a data set")

    monkeypatch.setattr("benchsuite.data.datasets.open_dataset", no_data)
    try:
        elsewhere = write_report(copy)
        compared_copy, _ = compare_runs(copy, copy)
        copy_model = build_model(copy)
    finally:
        hidden.rename(cache)
    assert elsewhere.html.read_text() == html
    assert elsewhere.markdown.read_text() == md
    assert compared_copy.replace(str(copy), "RUN") == compared.replace(str(run_dir), "RUN")
    rows = {r.task: r for r in copy_model.rows()}
    assert set(rows) == set(INTERVALS) and not copy_model.no_evidence
    for task, metric in INTERVALS.items():
        assert rows[task].estimates[metric].has_interval, task
    assert "Gallery: true positives" in md and html.count("<img ") >= 6
    assert "detection-synthetic-voc-test-gallery-mean-box.png" in md


@pytest.mark.slow
def test_a_run_folder_without_evidence_says_its_intervals_are_unavailable(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    shutil.rmtree(old / "report_files", ignore_errors=True)
    for path in old.glob("jobs/*/evidence-*.npz"):
        path.unlink()
    records = [json.loads(x) for x in (old / "records.jsonl").read_text().splitlines()]
    for rec in records:  # as an older version wrote them
        rec["artifacts"].pop("evidence", None)
    (old / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    md = write_report(old).markdown.read_text()
    assert "**Intervals unavailable for 3 record(s)** (`nn-l1`, `mean-box`, `sliding-boxes`)" in md
    assert "Gallery" not in md
    model = build_model(old)
    assert {r.pipeline for r in model.no_evidence} == set(PIPELINES)
    rows = {r.task: r for r in model.rows()}
    assert not rows["detection"].estimates["map50"].has_interval
    assert not rows["proposals"].estimates["recall_at_1000_iou50"].has_interval
    # classification records carry their own (binomial) interval, which the report shows
    assert rows["classification"].estimates["accuracy"].has_interval
    text, changes = compare_runs(old, run_dir)
    assert not any(c.regression for c in changes) and "nothing flagged" in text
