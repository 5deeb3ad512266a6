"""The smoke profile end to end through run_all.py, as a user runs it, on synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchsuite.registry import list_pipelines

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_classification_through_run_all(tmp_path, cache_dir, assert_records_match_schema):
    out = tmp_path / "run"
    env = dict(os.environ, BENCHSUITE_CACHE=str(cache_dir))
    env.pop("BENCHSUITE_DATA", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_all.py"), "--profile", "smoke", "--tasks", "classification",
         "--out", str(out), "--data-root", str(tmp_path), "--exclude", "rf-*"],  # the stacked-kernel study: its
        # six networks have their conformance checks and tests/unit/test_stacked_kernels.py
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {out / 'report.md'}" in proc.stdout

    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    expected = {p.id for p in list_pipelines(task="classification") if not p.id.startswith(("test-", "rf-"))}
    assert {r["pipeline"] for r in records} == expected
    for r in records:
        assert r["status"] == "ok", (r["pipeline"], r["error"])
        assert r["data_origin"] == "synthetic" and r["split"] == "test"
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0
        assert r["metrics"]["num_images"] == 300  # the smoke cap on the test split
        assert r["timing"]["latency_ms_p50"] > 0 and r["timing"]["latency_ms_p95"] >= r["timing"]["latency_ms_p50"]
        assert (out / r["artifacts"]["confusion_matrix"]).is_file()
    by_id = {r["pipeline"]: r for r in records}
    assert "k=1" in by_id["nn-l1"]["metrics"]["variants"]
    # the synthetic classes are shapes: gradient features must beat chance clearly
    assert by_id["hog-svm"]["metrics"]["accuracy"] > 0.4

    report = (out / "report.md").read_text().splitlines()
    head = "\n".join(report[:6])
    assert "SYNTHETIC" in head and "cifar10" in head
    assert any(line.startswith("| hog-svm |") for line in report)
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["datasets"][0]["origin"] == "synthetic"
    assert run_info["machine"]["cores"] >= 1 and run_info["versions"]["torch"]
    assert (out / "splits" / "cifar10.split.json").is_file()
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("run_id,task,dataset,split,pipeline,family,seed,device,status")
    assert len(summary) == 1 + len(expected)
    assert_records_match_schema(out)  # every record of every built-in classifier, and the summary's columns
