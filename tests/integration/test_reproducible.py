"""A profile fixes the work, not the time: the same run on an idle and on a busy machine gives the same metrics,
and only the busy run's records and report say they were timed under contention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchsuite.measure.conditions import MIN_PHASE_S
from benchsuite.report.compare import compare_runs
from benchsuite.runner.run import RunConfig, run

# classical and deep pipelines of two tasks, with the harness floors: small enough for CI
PIPELINES = ["nn-l1", "cnn", "null-classifier", "mean-box", "faster-rcnn-mbv3-fpn", "null-detector"]
PARAMS = {"cnn": {"epochs": 1}, "faster-rcnn-mbv3-fpn": {"epochs": 1}}


def _run(tmp_path: Path, cache_dir: Path, name: str, **kw) -> Path:
    out = tmp_path / name
    run(RunConfig(profile="smoke", tasks=["classification", "detection"], pipelines=PIPELINES, params=PARAMS,
                  out=out, cache_dir=cache_dir, data_root=tmp_path / "no-data", **kw))
    return out


def _records(out: Path) -> dict[str, dict]:
    return {r["pipeline"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}


def _burn_cores() -> list[subprocess.Popen]:
    """One busy process per core (stopped by the caller)."""
    code = "while True: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]


@pytest.mark.slow
def test_busy_machine_gives_the_same_metrics_and_says_contended(tmp_path, cache_dir, monkeypatch):
    # OpenMP threads that spin-wait beside the burners made faster-rcnn's 3 s smoke fit take 150 s; passive waiting
    # changes the time only, never the arithmetic (the metrics below are compared to the bit)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    idle = _run(tmp_path, cache_dir, "idle")
    burners = _burn_cores()
    try:
        time.sleep(0.5)
        busy = _run(tmp_path, cache_dir, "busy")
    finally:
        for p in burners:
            p.kill()
            p.wait()

    a, b = _records(idle), _records(busy)
    assert set(a) == set(b) == set(PIPELINES)
    for pid in PIPELINES:
        assert a[pid]["status"] == b[pid]["status"] == "ok", (pid, a[pid]["error"], b[pid]["error"])
        # the very same numbers: the work is fixed, whatever the load (deep ones included, on the CPU)
        assert a[pid]["metrics"] == b[pid]["metrics"], pid
        assert a[pid]["shortcuts"] == b[pid]["shortcuts"] == [], pid
        assert a[pid]["fit_info"].get("epochs", 0) == b[pid]["fit_info"].get("epochs", 0)
        timing = b[pid]["timing"]
        for phase in ("fit", "predict"):
            block = timing[phase]
            assert block["threads"] >= 1 and block["cpu_s"] >= 0 and block["wall_s"] > 0
            assert block["others_cpu_cores"] is not None and block["load_start"] is not None
        assert timing["method"]["decode_in_predict_clock"] is False
    # a pipeline that works for seconds was timed while the burners held the cores
    for pid in ("nn-l1", "cnn", "faster-rcnn-mbv3-fpn"):
        assert b[pid]["timing"]["fit"]["others_cpu_cores"] > 0.5, pid
        # a phase shorter than MIN_PHASE_S is never called contended (nn-l1 fits in about 0.5 s at smoke size)
        long_phase = any(b[pid]["timing"][phase]["wall_s"] >= MIN_PHASE_S for phase in ("fit", "predict"))
        assert b[pid]["timing"]["contended"] is long_phase, pid
    assert a["cnn"]["determinism"]["deterministic_algorithms"] is True and a["cnn"]["determinism"]["uses_torch"]
    assert a["cnn"]["fit_info"]["epochs"] == 1

    report = (busy / "report.md").read_text()
    assert "Timings measured under contention" in report
    state = json.loads((busy / "run.json").read_text())["machine_state"]
    assert state["busy_cores"] > 0.5 and "contended when" in state["contention_rule"]

    text, changes = compare_runs(idle, busy)
    assert not [c for c in changes if c.regression], text
    for c in changes:
        assert not any(f.startswith(("better", "worse")) for f in c.flags), (c.pipeline, c.flags)
        # a timing change, if any, is declined: the busy side was contended
        assert not any(f.startswith(("slower", "faster")) for f in c.flags), (c.pipeline, c.flags)
    assert "Contention" in text


@pytest.mark.slow
def test_time_budget_marks_shortened_records_in_the_headline(tmp_path, cache_dir):
    out = tmp_path / "boxed"
    result = run(RunConfig(profile="smoke", tasks=["classification"], pipelines=["cnn", "nn-l1"], out=out,
                           cache_dir=cache_dir, data_root=tmp_path / "no-data", time_budget_s=0.5))
    recs = {r["pipeline"]: r for r in result.records}
    cnn = recs["cnn"]
    assert cnn["status"] == "ok" and cnn["shortened"] is True
    (cut,) = cnn["shortcuts"]
    assert cut["what"] == "epochs" and cut["done"] < cut["asked"] and "--time-budget" in cut["reason"]
    assert cnn["fit_info"]["epochs"] == cut["done"] < cnn["fit_info"]["epochs_planned"]
    assert recs["nn-l1"]["shortened"] is False
    assert json.loads((out / "run.json").read_text())["time_budget_s"] == 0.5
    report = (out / "report.md").read_text()
    head = report[:report.index("## Data and run")]
    assert "TIME-BOXED RUN" in head and "Not comparable: `cnn`" in head
    assert "| cnn (shortened) |" in report
