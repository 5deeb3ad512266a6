"""A task is one module and one registration (issue 16): a test-only task, installed as a third-party
distribution (tests/fixtures/toy_counting.py, ``task_dist``), runs through the runner, the report and ``compare``
without any file of the framework naming it. Its primary metric is lower-is-better, which every reader must take
from the task."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchsuite.errors import ConfigError
from benchsuite.registry import pipeline_problems
from benchsuite.report.compare import compare_runs
from benchsuite.report.markdown import write_report
from benchsuite.report.model import build_model
from benchsuite.results.evidence import load_evidence, save_evidence
from benchsuite.runner.run import RunConfig, run
from benchsuite.tasks.registry import find_task, get_task, list_tasks, task_names


def test_the_registry_lists_the_suites_tasks_and_a_plugins_and_names_a_broken_one(task_dist):
    assert task_names()[:3] == ("classification", "detection", "proposals")
    assert "counting" in task_names() and "not-a-task" not in task_names()
    broken = {t.name: t for t in list_tasks(include_broken=True) if not t.ok}
    assert set(broken) == {"not-a-task"}
    assert broken["not-a-task"].distribution == "benchsuite-toy-counting"
    assert "lacks" in broken["not-a-task"].error and "benchsuite.tasks.base.Task" in broken["not-a-task"].error
    with pytest.raises(ConfigError, match=r"task 'not-a-task' .* cannot be used: .*lacks"):
        get_task("not-a-task")
    with pytest.raises(ConfigError, match="unknown task 'tracking'; known tasks: classification"):
        get_task("tracking")
    from benchsuite import api

    with pytest.raises(AttributeError, match=r"TASKS was removed.*task_names\(\)"):
        _ = api.TASKS  # the list of tasks is the registry's, above the API
    counting = get_task("counting")
    assert counting.primary.key == "mae" and not counting.primary.higher_is_better
    assert counting.runs_on("synthetic-voc") and counting.runs_on("voc:/anywhere") and not counting.runs_on("cifar10")
    import toy_counting

    assert pipeline_problems(toy_counting.MeanCounter) == []

    class Lazy(toy_counting.Counter):
        id = "lazy"
        family = "classical"

    assert pipeline_problems(Lazy) == ["Lazy does not implement fit()", "Lazy does not implement count()"]


def test_list_names_a_broken_task_plugin(task_dist, capsys):
    from benchsuite.cli import main

    assert main(["list", "--strict"]) == 1
    out, err = capsys.readouterr()
    assert "toy-count-mean" in out and "counting" in out
    assert "broken task plugin not-a-task (toy_counting:NotATask, from benchsuite-toy-counting)" in err


def test_check_passes_for_a_pipeline_of_a_plugin_task(task_dist, capsys):
    """`benchsuite check` on a plugin task's pipeline: the task's own check data and check adapter."""
    from benchsuite.cli import main

    assert main(["check", "toy-count-mean"]) == 0
    out = capsys.readouterr().out
    assert "task counting" in out and "PASS  outputs_valid" in out and "PASS  same_seed_same_output" in out
    assert "FAIL" not in out


def test_a_plugin_task_without_check_data_fails_the_fit_checks_by_name(task_dist, monkeypatch):
    import toy_counting

    from benchsuite.testing import check_pipeline

    monkeypatch.setattr(toy_counting.CountingTask, "check_splits", None)
    monkeypatch.setattr("benchsuite.testing._DATA", {})
    results = {r.name: r for r in check_pipeline(toy_counting.MeanCounter)}
    assert results["declarations"].passed and results["params_round_trip"].passed
    fit = results["fit_returns_self"]
    assert fit.failed and "task 'counting'" in fit.message and "declares no check_splits" in fit.message
    assert results["outputs_valid"].status == "skipped"


def test_without_the_plugin_its_task_is_unknown():
    assert find_task("counting") is None
    assert set(task_names()) == {"classification", "detection", "proposals", "segmentation"}


@pytest.mark.slow
def test_a_plugin_task_runs_through_the_runner_the_report_and_compare(tmp_path, cache_dir, task_dist):
    result = run(RunConfig(profile="smoke", pipelines=["toy-count-*"], out=tmp_path / "run", cache_dir=cache_dir,
                           data_root=tmp_path / "no-data"))
    run_dir = result.run_dir
    recs = {r["pipeline"]: r for r in result.records}
    assert set(recs) == {"toy-count-mean", "toy-count-zero"}
    for rec in recs.values():
        assert rec["status"] == "ok", rec.get("error")
        assert rec["task"] == "counting" and rec["dataset"] == "synthetic-voc"
        assert rec["output"]["objects_counted"] >= 0 and rec["timing"]["images_per_s"] > 0
        assert (run_dir / rec["artifacts"]["evidence"]).is_file()
    mean, zero = recs["toy-count-mean"]["metrics"], recs["toy-count-zero"]["metrics"]
    assert 0 <= mean["mae"] < zero["mae"]  # predicting nothing is worse on images with objects
    info = json.loads((run_dir / "run.json").read_text())
    (voc,) = [d for d in info["datasets"] if d["name"] == "synthetic-voc"]
    assert voc["annotations"] == ["boxes"]  # what the data set provides; the counting task needs no more

    model = build_model(run_dir)
    (group,) = [g for g in model.groups if g.task == "counting"]
    assert (group.metric, group.metric_title, group.higher_is_better) == ("mae", "mean absolute error", False)
    assert [r.pipeline for r in group.rows] == ["toy-count-mean", "toy-count-zero"]  # lower MAE ranks first
    for row in group.rows:
        for key in ("mae", "exact"):
            est = row.estimates[key]
            assert est.has_interval and est.lo <= est.value <= est.hi, (row.pipeline, key, est)
    h = group.headline
    assert (h.classical.pipeline, h.deep.pipeline) == ("toy-count-mean", "toy-count-zero")
    md = (run_dir / "report.md").read_text()
    assert "## counting: synthetic-voc, test split" in md
    assert "| pipeline | family | seed | MAE | 95% CI | exact | exact 95% CI | fit s |" in md
    gap = zero["mae"] - mean["mae"]
    assert f"classical ahead by **{gap:.3g}**" in md  # the direction and the unit are the task's
    assert "counting-synthetic-voc-test-tradeoff.png" in {p.name for p in (run_dir / "report_files").glob("*.png")}
    assert "counting 200 resamples of per-image count errors" in md

    # B: the zero counter gets three times its errors; a higher MAE is a regression, not an improvement
    worse = tmp_path / "worse"
    shutil.copytree(run_dir, worse)
    lines = [json.loads(x) for x in (worse / "records.jsonl").read_text().splitlines()]
    for rec in lines:
        if rec["pipeline"] == "toy-count-zero":
            path = worse / rec["artifacts"]["evidence"]
            ev = load_evidence(path)
            save_evidence(path, ev.task, {**ev.arrays, "abs_error": ev["abs_error"] * 3})
            rec["metrics"]["mae"] *= 3
            rec["finished_at"] = "tripled"
    (worse / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    text, changes = compare_runs(run_dir, worse)
    flags = {c.pipeline: c.flags for c in changes if c.flags}
    assert list(flags) == ["toy-count-zero"] and flags["toy-count-zero"][0].startswith("worse +")
    assert "**REGRESSION** `toy-count-zero` (counting, synthetic-voc, test)" in text
    _, back = compare_runs(worse, run_dir)
    assert [c.flags[0].split()[0] for c in back if c.flags] == ["better"]
    write_report(worse)
    assert np.isfinite(build_model(worse).groups[0].rows[1].estimates["mae"].hi)
