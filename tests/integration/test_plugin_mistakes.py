"""The mistakes a new plugin author made (issue 14), run through the real runner and workers: each fails its
job with a message naming the method, an argument stored under another name still reaches the record, and a
failed job's traceback is in its log.txt and its last lines in the run's console output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchsuite.runner.run import RunConfig, run

#: the pipeline ids of tests/fixtures/kit_mistakes.py, installed by the ``kit_dist`` fixture (conftest.py)
ENTRY_POINTS = ("kit-good", "kit-fit-none", "kit-predict-list", "kit-other-name", "kit-raises")


@pytest.mark.slow
def test_plugin_mistakes_through_the_runner(kit_dist, tmp_path, cache_dir, caplog):
    out = tmp_path / "run"
    config = RunConfig(profile="smoke", tasks=["classification"], pipelines=list(ENTRY_POINTS), out=out,
                       cache_dir=cache_dir, data_root=tmp_path, write_report=False,
                       params={"kit-other-name": {"k": "5"}})
    with caplog.at_level(logging.INFO):
        result = run(config)
    records = {r["pipeline"]: r for r in result.records}
    assert records["kit-good"]["status"] == "ok"
    assert records["kit-good"]["params"] == {"k": 1, "bins": 4}  # its profile_params["smoke"]

    fit_none = records["kit-fit-none"]
    assert fit_none["status"] == "failed" and fit_none["failure"] == "invalid-output"
    assert "FitReturnsNone.fit() returned None" in fit_none["error"] and "return self" in fit_none["error"]

    as_list = records["kit-predict-list"]
    assert as_list["status"] == "failed" and "predict() result: a list" in as_list["error"]

    other = records["kit-other-name"]
    assert other["status"] == "ok" and other["params"]["k"] == 5  # the override does not vanish from the record

    raised = records["kit-raises"]
    assert raised["status"] == "failed" and "bins must be a whole number" in raised["error"]
    log_text = (out / raised["log"]).read_text()
    assert "Traceback (most recent call last)" in log_text and "in _features" in log_text
    console = caplog.text
    assert "kit-raises on" in console and "FAILED" in console
    assert "ValueError: bins must be a whole number" in console.split("kit-raises on", 1)[1]
    assert str(Path("jobs") / raised["job_id"] / "log.txt") in console
