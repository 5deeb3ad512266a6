"""The runner's isolation, resume and error handling, with misbehaving plugin pipelines."""

from __future__ import annotations

import json

import pytest

from benchsuite.cli import main
from benchsuite.errors import ConfigError
from benchsuite.registry import list_pipelines, resolve
from benchsuite.results.store import RunStore
from benchsuite.runner.run import RunConfig, run

RECORD_KEYS = {"run_id", "task", "dataset", "split", "pipeline", "family", "status", "error", "metrics", "timing",
               "memory", "params", "seed", "device"}


def _config(tmp_path, cache_dir, pipelines, **kw) -> RunConfig:
    return RunConfig(profile="smoke", tasks=["classification"], pipelines=pipelines, out=tmp_path / "run",
                     cache_dir=cache_dir, data_root=tmp_path / "no-data", **kw)


def _by_pipeline(records):
    return {r["pipeline"]: r for r in records}


@pytest.mark.slow
@pytest.mark.fault("plugin raises/hangs/exits/leaks/returns garbage (already handled)")
def test_each_failure_is_recorded_and_the_rest_complete(tmp_path, cache_dir, plugin_dist):
    ids = ["test-majority", "test-raises", "test-sleeps", "test-garbage", "test-out-of-range", "test-crashes",
           "test-memory-hog"]
    result = run(_config(tmp_path, cache_dir, ids, jobs=2, time_limit_s=25, memory_limit_mb=1500))
    recs = _by_pipeline(result.records)
    assert set(recs) == set(ids)
    for rec in recs.values():
        assert rec.keys() >= RECORD_KEYS
        assert rec["timing"]["shared_machine"] is True  # two jobs at a time
    ok = recs["test-majority"]
    assert ok["status"] == "ok" and ok["error"] is None
    assert 0.05 < ok["metrics"]["accuracy"] < 0.3  # one class of ten, on balanced test data
    assert ok["fit_info"] == {"note": "plain", "train_images": 600}  # the smoke cap reached the pipeline
    assert ok["timing"]["fit_s"] >= 0 and ok["timing"]["images_per_s"] > 0
    assert ok["memory"]["peak_rss_mb"] > 0

    def failed(pid, failure, text):
        rec = recs[pid]
        assert (rec["status"], rec["failure"]) == ("failed", failure), rec
        assert text in rec["error"], rec["error"]
        assert rec["metrics"] == {}

    failed("test-raises", "exception", "RuntimeError: this pipeline always fails in fit")
    failed("test-sleeps", "timeout", "25 s limit")
    failed("test-garbage", "invalid-output", "shape (300, 3), expected (300,)")
    failed("test-out-of-range", "invalid-output", "outside 0..9")
    failed("test-crashes", "crash", "exited with status 3")
    failed("test-memory-hog", "memory", "over the 1500 MB limit")
    report = (result.run_dir / "report.md").read_text()
    assert "## Failed jobs" in report and "test-sleeps" in report
    summary = (result.run_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + len(ids)


@pytest.mark.slow
def test_resume_skips_recorded_jobs_and_retries_failed_on_request(tmp_path, cache_dir, plugin_dist):
    ids = ["test-majority", "test-raises"]
    first = run(_config(tmp_path, cache_dir, ids))
    store = RunStore(first.run_dir)
    assert len(store.records(latest_only=False)) == 2
    with pytest.raises(ConfigError, match="already holds records"):
        run(_config(tmp_path, cache_dir, ids))
    run(_config(tmp_path, cache_dir, [*ids, "test-garbage"], resume=True))
    all_records = store.records(latest_only=False)
    assert [r["pipeline"] for r in all_records] == ["test-majority", "test-raises", "test-garbage"]
    run(_config(tmp_path, cache_dir, ids, resume=True, retry_failed=True))
    all_records = store.records(latest_only=False)
    assert [r["pipeline"] for r in all_records][-1] == "test-raises"
    assert len(all_records) == 4
    assert len(store.records()) == 3  # the latest record of each job
    info = json.loads((first.run_dir / "run.json").read_text())
    assert len(info["resumed_at"]) == 2


def test_plugin_discovery_reports_broken_plugins(plugin_dist):
    listed = {p.id: p for p in list_pipelines("test-*", include_broken=True)}
    assert listed["test-majority"].ok and listed["test-majority"].distribution == "benchsuite-test-plugins"
    assert not listed["test-broken"].ok and "not a subclass" in listed["test-broken"].error
    assert "test-broken" not in {p.id for p in list_pipelines("test-*")}
    with pytest.raises(ConfigError, match="cannot be used"):
        resolve(["test-broken"])
    assert {p.id for p in resolve(["test-m*"])} == {"test-majority", "test-memory-hog"}


def test_builtin_pipelines_register_through_entry_points():
    ids = {p.id: p for p in list_pipelines()}
    assert {"nn-l1", "hog-svm", "cnn"} <= ids.keys()
    assert ids["nn-l1"].family == "classical" and ids["cnn"].family == "deep"
    assert ids["cnn"].devices == ("cpu", "cuda")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--pipelines", "no-such-pipeline"], "unknown pipeline 'no-such-pipeline'; known pipelines:"),
        (["run", "--profile", "huge"], "unknown profile 'huge'; expected one of: smoke, quick, full"),
        (["run", "--data-root", "/no/such/folder"], "data root /no/such/folder does not exist"),
        (["run", "--tasks", "pose"], "unknown task 'pose'"),
        (["run", "--datasets", "imagenet"], "unknown data set 'imagenet'"),
        (["run", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "--param", "cnn-epochs=3"], "expected PIPELINE.NAME=VALUE"),
        (["report", "/no/such/run"], "not a run folder"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchsuite: error: ")
    assert message in err[0]


def test_list_prints_every_pipeline(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for pid in ("nn-l1", "hog-svm", "cnn"):
        assert pid in out
    assert "classification" in out and "cpu,cuda" in out


@pytest.mark.slow
def test_val_is_not_scored_for_a_pipeline_that_refit_on_it(tmp_path, cache_dir):
    """nn-l1 refits on train + val by default: a val score would be a training score (k=1 would be perfect)."""
    cfg = _config(tmp_path, cache_dir, ["nn-l1"], eval_splits=["val", "test"])
    records = run(cfg).records
    assert [(r["pipeline"], r["split"]) for r in records] == [("nn-l1", "test")]
    assert "val" in records[0]["fit_info"]["val_not_scored"]

    cfg = _config(tmp_path / "held-out", cache_dir, ["nn-l1"], eval_splits=["val", "test"],
                  params={"nn-l1": {"refit_on_trainval": False}})
    records = run(cfg).records
    assert sorted(r["split"] for r in records) == ["test", "val"]
    val = next(r for r in records if r["split"] == "val")
    assert val["status"] == "ok" and val["metrics"]["variants"]["k=1"]["accuracy"] < 1.0
